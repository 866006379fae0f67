"""Detects a controlled value that reached its band and then stayed out of it: the product goes
off-spec (DESIGN §1: pH 11.00 ± 0.05; a shift of 0.1 visibly changes particle size).

Judges the measured value, smoothed so one noisy reading never alarms; never doses or stops
anything itself. A value still approaching its setpoint is the phase's business, not a
deviation, and so is a stalled or failed loop before it first got there (pH not responding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Deviation:
    """A value out of its band: the smoothed value, the setpoint and the band it was judged on."""

    value: float
    setpoint: float
    band: float


class DeviationMonitor:
    """A Deviation while the smoothed value has stayed out of its band for `persist_s` after having
    settled in it (`settle_s` in a row) at this setpoint; None otherwise. Passing through the
    band on an approach that overshoots does not arm it: the loop is still getting there."""

    def __init__(self, *, smoothing_s: float, persist_s: float, settle_s: float) -> None:
        self._smoothing_s = smoothing_s
        self._persist_s = persist_s
        self._settle_s = settle_s
        self._in_band_since: float | None = None
        self._setpoint: float | None = None
        self._smooth: float | None = None
        self._at: float | None = None
        self._reached = False
        self._since: float | None = None
        self._deviating: Deviation | None = None

    def update(
        self,
        *,
        now: float,
        value: float | None,
        setpoint: float | None,
        band: float,
        below: bool = True,
        above: bool = True,
        hold: bool = False,
    ) -> Deviation | None:
        """Advance with this scan's values; `below`/`above` say which sides count. With `hold`,
        a deviation whose setpoint goes away (the phase ended, the batch is held) is still
        said, as it was: the product made stays off-spec."""
        if setpoint is None:
            if hold and self._deviating is not None:
                return self._deviating
            self._reset(None)
            return None
        if setpoint != self._setpoint:
            self._reset(setpoint)
        if value is None or not math.isfinite(value):
            return None  # a bad reading is the reading interlock's business; keep the state
        dt = 0.0 if self._at is None else max(0.0, now - self._at)
        self._at = now
        if self._smooth is None:
            self._smooth = value
        else:
            self._smooth += (value - self._smooth) * (1.0 - math.exp(-dt / self._smoothing_s))
        off = self._smooth - setpoint
        if abs(off) <= band:
            if self._in_band_since is None:
                self._in_band_since = now
            if now - self._in_band_since >= self._settle_s:
                self._reached = True
            self._since = self._deviating = None
            return None
        self._in_band_since = None
        if not self._reached or not (above if off > 0.0 else below):
            self._since = self._deviating = None
            return None
        if self._since is None:
            self._since = now
        if now - self._since >= self._persist_s:
            self._deviating = Deviation(value=self._smooth, setpoint=setpoint, band=band)
        return self._deviating

    def _reset(self, setpoint: float | None) -> None:
        self._setpoint = setpoint
        self._smooth = None
        self._at = None
        self._reached = False
        self._since = None
        self._in_band_since = None
        self._deviating = None
