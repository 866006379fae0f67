"""Instrument models over the plant's true values: lag, dead time, noise, drift, slope loss, faults.

Deterministic given the `random.Random` handed in; never reads a clock or the plant itself (the
caller passes each true value and the time step).
"""

from __future__ import annotations

import math
import random
from collections import deque

# The glass electrode's isopotential point: slope loss pivots about pH 7.
DEFAULT_SLOPE_REF = 7.0


class SensorModel:
    """One measured signal: delayed by `dead_time_s`, lagged by `tau_s`, with gaussian noise.

    Faults and ageing are plain attributes: `stuck`, `dead`, `drift_per_s`, `slope`, `slope_ref`.
    """

    def __init__(
        self,
        *,
        tau_s: float,
        dead_time_s: float,
        noise: float,
        rng: random.Random,
        initial: float,
    ) -> None:
        if tau_s < 0 or dead_time_s < 0 or noise < 0:
            raise ValueError(
                f"tau_s, dead_time_s and noise must be >= 0, got {tau_s}, {dead_time_s}, {noise}"
            )
        self.tau_s = tau_s
        # May change at run time (slower mixing with the agitator off); see `update`.
        self.dead_time_s = dead_time_s
        self.noise = noise
        self.drift_per_s = 0.0
        self.slope = 1.0
        self.slope_ref = DEFAULT_SLOPE_REF
        self.stuck = False  # fault: the output holds its last value
        self.dead = False  # fault: no reading at all
        self._rng = rng
        self._time_s = 0.0
        self._offset = 0.0
        self._alpha_key = (-1.0, -1.0)
        self._alpha = 1.0
        self._history: deque[tuple[float, float]] = deque()
        self._lagged = initial
        self._output = initial
        self.reset(initial)

    @property
    def value(self) -> float | None:
        """The measured value, or None while the device is dead."""
        return None if self.dead else self._output

    @property
    def offset(self) -> float:
        """Offset accumulated so far by drift."""
        return self._offset

    def reset(self, value: float) -> None:
        """Settle the instrument at `value` (the process was there for a long time); keeps drift."""
        self._history.clear()
        self._history.append((self._time_s, value))
        self._lagged = value
        if not self.stuck:
            self._output = self._calibrated(value)

    def update(self, true_value: float, dt: float) -> None:
        """Advance `dt` seconds with the process at `true_value` (its value at the step's end)."""
        self._time_s = now = self._time_s + dt
        history = self._history
        history.append((now, true_value))
        # The front is the newest sample at least one dead time old. If the dead time has just
        # grown, nothing is old enough yet and the front holds: the transport delay lengthened.
        cutoff = now - self.dead_time_s + 1e-9
        while len(history) > 1 and history[1][0] <= cutoff:
            history.popleft()
        delayed = history[0][1]

        key = (dt, self.tau_s)
        if key != self._alpha_key:
            self._alpha = 1.0 - math.exp(-dt / self.tau_s) if self.tau_s > 0 else 1.0
            self._alpha_key = key
        self._lagged += (delayed - self._lagged) * self._alpha
        self._offset += self.drift_per_s * dt
        if self.stuck:
            return
        out = self._calibrated(self._lagged)
        if self.noise > 0.0:
            out += self._rng.gauss(0.0, self.noise)
        self._output = out

    def _calibrated(self, value: float) -> float:
        ref = self.slope_ref
        return ref + self.slope * (value - ref) + self._offset
