"""Detects a pH past its setpoint the way the only reagent pushes, with nothing to bring it back.

Watches the measured pH (smoothed, so one noisy reading never alarms) against the setpoint;
never doses or stops anything itself. A counter-reagent makes an overshoot the loop's business,
not an alarm.
"""

from __future__ import annotations

import math

# The reading is smoothed with this time constant (s) before it is judged.
SMOOTHING_S = 30.0
# Past the setpoint by this many tolerances (and at least MIN_EXCESS pH) counts as overshoot...
TOLERANCES = 2.0
MIN_EXCESS = 0.08
# ...once it has lasted this long (s): longer than a lagging probe's own transient.
PERSIST_S = 120.0


class PhOvershootMonitor:
    """True while the smoothed pH has stayed past the setpoint (reagent's way) for PERSIST_S."""

    def __init__(self) -> None:
        self._smooth: float | None = None
        self._at: float | None = None
        self._since: float | None = None
        self._control: tuple[str | None, float, bool] | None = None

    def update(
        self,
        *,
        now: float,
        phase: str | None = None,
        ph: float | None,
        setpoint: float | None,
        raises: bool,
        tolerance: float,
        counter: bool,
    ) -> str | None:
        """Advance with this scan's values; returns the alarm message while it holds. A new
        phase (or setpoint) starts afresh: an overshoot the last phase gave up on is this
        one's only once it has lasted PERSIST_S here too."""
        if setpoint is None or counter:
            self._reset(None)
            return None
        if (phase, setpoint, raises) != self._control:
            self._reset((phase, setpoint, raises))
        if ph is None or not math.isfinite(ph):
            return None  # a bad reading is the reading interlock's business; keep the state
        dt = 0.0 if self._at is None else max(0.0, now - self._at)
        self._at = now
        if self._smooth is None:
            self._smooth = ph
        else:
            self._smooth += (ph - self._smooth) * (1.0 - math.exp(-dt / SMOOTHING_S))
        past = (self._smooth - setpoint) if raises else (setpoint - self._smooth)
        if past <= max(TOLERANCES * tolerance, MIN_EXCESS):
            self._since = None
            return None
        if self._since is None:
            self._since = now
        if now - self._since < PERSIST_S:
            return None
        way = "above" if raises else "below"
        return (
            f"pH {self._smooth:.2f} is {way} the setpoint {setpoint:g} and this phase has no "
            "reagent to bring it back"
        )

    def _reset(self, control: tuple[str | None, float, bool] | None) -> None:
        self._control = control
        self._smooth = None
        self._at = None
        self._since = None
