"""Detects a pH probe (or pump) that does not respond to dosing: runaway-dosing protection.

Watches pH against the mL commanded through the pH pump; never doses or stops anything itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The reading is smoothed with this time constant (s) before it is judged: a noisy sample that
# looks 0.05 better is not a response.
SMOOTHING_S = 30.0
# At the limit dosing stops, and the reagent dosed last is given this long (s) to show through
# the mixing dead time, the probe and the smoothing before it counts as no response.
GRACE_S = 90.0


@dataclass(frozen=True, slots=True)
class NoResponse:
    """The limit is reached: `waiting` while the last dose may still show (dosing stops, no
    alarm), then not (the fault)."""

    waiting: bool
    message: str


class PhResponseMonitor:
    """Counts mL dosed while pH stays short of the setpoint and does not move toward it.

    Dosing only counts while pH is beyond `tolerance` on the side the pump corrects (below the
    setpoint for a base pump): that is when the controller is trying to move pH. At steady state
    (co-precipitation) the feed-forward doses steadily with pH flat *at* the setpoint, which is
    inside the band and never counts. The count restarts when pH enters the band or moves toward
    the setpoint by `response` from the worst value since the count began (a lagging but live
    probe). Counting uses commanded mL, so a stalled pump trips too. The count reaching the
    limit while a pump is commanded starts a wait of GRACE_S with dosing stopped (no more than
    the limit goes in); a response within it ends the wait, none is the fault. It starts
    afresh when the setpoint, pump or direction changes. A bad pH reading is not judged (the
    reading-bad interlock acts).
    """

    def __init__(self, *, response: float, tolerance: float) -> None:
        self._response = response
        self._tolerance = tolerance
        self._control: tuple[float, str, bool] | None = None
        self._last_dosed: float | None = None
        self._worst: float | None = None
        self._counted_ml = 0.0
        self._smooth: float | None = None
        self._at: float | None = None
        self._over_since: float | None = None
        self._faulted = False

    @property
    def counted_ml(self) -> float:
        """mL dosed without response so far."""
        return self._counted_ml

    def update(
        self,
        *,
        ph: float | None,
        setpoint: float | None,
        pump: str | None,
        raises: bool,
        dosed_ml: float,
        limit_ml: float,
        dosing: bool,
        now: float | None = None,
    ) -> NoResponse | None:
        """Advance with this scan's values; the wait or the fault while the limit holds.

        `dosed_ml` is the cumulative mL commanded through `pump` this phase.
        """
        if setpoint is None or pump is None:
            self._restart(None)
            return None
        control = (setpoint, pump, raises)
        if control != self._control:
            self._restart(control)
        delta = 0.0 if self._last_dosed is None else dosed_ml - self._last_dosed
        self._last_dosed = dosed_ml
        delta = max(delta, 0.0)  # a new phase restarts its counter from zero
        ph = self._smoothed(ph, now)
        if ph is not None:
            # > 0: short of the setpoint on the side this pump corrects
            shortfall = setpoint - ph if raises else ph - setpoint
            if shortfall <= self._tolerance:
                self._counted_ml = 0.0
                self._worst = None
            else:
                if self._worst is None or shortfall > self._worst:
                    self._worst = shortfall
                elif self._worst - shortfall >= self._response:
                    self._counted_ml = 0.0
                    self._worst = shortfall
                self._counted_ml += delta
        if self._counted_ml < limit_ml:
            self._over_since = None
            self._faulted = False
            return None
        if self._over_since is None:
            if not dosing:
                return None  # at the limit with nothing commanded: nothing is being dosed
            self._over_since = -math.inf if now is None else now
        direction = "raise" if raises else "lower"
        said = (
            f"{self._counted_ml:.0f} mL dosed through {pump} to {direction} pH toward "
            f"{setpoint:g} with no response of {self._response:g} (limit {limit_ml:g} mL)"
        )
        if now is not None and now - self._over_since < GRACE_S:
            return NoResponse(
                waiting=True,
                message=f"{said}: dosing stopped while the last of it shows "
                f"({now - self._over_since:.0f} of {GRACE_S:g} s)",
            )
        # Said once the wait is over (dosing stopped by it); after that, while a pump is
        # commanded: a batch held on it lets the condition return, and dosing again with no
        # response since trips at once.
        if self._faulted and not dosing:
            return None
        self._faulted = True
        return NoResponse(waiting=False, message=said)

    def _smoothed(self, ph: float | None, now: float | None) -> float | None:
        if ph is None or not math.isfinite(ph) or now is None:
            return ph
        dt = 0.0 if self._at is None else max(0.0, now - self._at)
        self._at = now
        if self._smooth is None:
            self._smooth = ph
        else:
            self._smooth += (ph - self._smooth) * (1.0 - math.exp(-dt / SMOOTHING_S))
        return self._smooth

    def _restart(self, control: tuple[float, str, bool] | None) -> None:
        self._control = control
        self._last_dosed = None
        self._worst = None
        self._counted_ml = 0.0
        self._smooth = None
        self._at = None
        self._over_since = None
        self._faulted = False
