"""Plain on/off control with hysteresis: the baseline the real controllers are judged against.

What a simple thermostat and a simple pH dosing relay do, as working code (the envelope runs the
same plants under it). Pure arithmetic on the values it is given; never reads a clock.
"""

from __future__ import annotations

import math


class OnOff:
    """On below `setpoint - band`, off above `setpoint + band`, unchanged in between.

    `rising`: the output pushes the value up (heater, base); False for one that pushes it down.
    """

    def __init__(self, *, band: float, rising: bool = True) -> None:
        if not band > 0.0:
            raise ValueError(f"band must be > 0, got {band}")
        self._band = band
        self._rising = rising
        self.on = False

    def reset(self) -> None:
        """Off, and forget."""
        self.on = False

    def update(self, *, setpoint: float, measured: float) -> bool:
        """Whether the output is on now; a bad number switches it off."""
        if not (math.isfinite(setpoint) and math.isfinite(measured)):
            self.on = False
            return False
        error = setpoint - measured if self._rising else measured - setpoint
        if error > self._band:
            self.on = True
        elif error < -self._band:
            self.on = False
        return self.on
