"""The measured pH as the dosing decides on it: each new sample once, spikes replaced, smoothed.

Pure arithmetic on the samples it is given (value and the time the instrument took it); never
reads a clock. No dosing decision rests on one raw reading (DESIGN §4).
"""

from __future__ import annotations

import math
from collections import deque
from statistics import median

# A Hampel window of this many samples removes spikes of up to (WINDOW - 1) // 2 samples.
WINDOW = 7
# The spread of the median's neighbours (MAD) in σ for gaussian noise.
_MAD_TO_SIGMA = 1.4826


class PhFilter:
    """Hampel spike filter, then an exponential average with time constant `filter_s`.

    A sample further from the median of the last `WINDOW` samples than `spike_limit` (or five
    robust standard deviations, whichever is larger) is replaced by that median; a genuine step
    passes once it holds for half the window. `sigma` tracks the noise of the raw samples.
    """

    def __init__(self, *, filter_s: float, spike_limit: float) -> None:
        self._filter_s = filter_s
        self._spike_limit = spike_limit
        self._raw: deque[float] = deque(maxlen=WINDOW)
        self._last_at: float | None = None
        self._value: float | None = None
        self._sigma = 0.0
        self.samples = 0
        self.rejected = 0

    @property
    def value(self) -> float | None:
        """The filtered pH (None before the first sample)."""
        return self._value

    @property
    def sigma(self) -> float:
        """Robust estimate of the raw samples' noise (σ, pH)."""
        return self._sigma

    @property
    def last_at(self) -> float | None:
        """When the newest sample was taken."""
        return self._last_at

    def reset(self) -> None:
        """Forget every sample."""
        self._raw.clear()
        self._last_at = None
        self._value = None
        self._sigma = 0.0

    def update(self, value: float, at: float) -> float | None:
        """Take the sample `value` taken at `at` (repeats of the same sample are ignored)."""
        if not (math.isfinite(value) and math.isfinite(at)):
            return self._value
        if self._last_at is not None and at <= self._last_at:
            return self._value
        dt = 0.0 if self._last_at is None else at - self._last_at
        self._last_at = at
        self.samples += 1
        raw = self._raw
        raw.append(value)
        accepted = value
        if len(raw) >= 3:
            centre = median(raw)
            spread = median(abs(x - centre) for x in raw) * _MAD_TO_SIGMA
            deviation = abs(value - centre)
            # the noise estimate follows the ordinary deviations (a half-normal's mean is 0.8 σ),
            # not the spikes
            ordinary = min(deviation, 3.0 * max(spread, 1e-3))
            self._sigma += (1.25 * ordinary - self._sigma) * 0.05
            if deviation > max(self._spike_limit, 5.0 * spread):
                accepted = centre
                self.rejected += 1
        if self._value is None or self._filter_s <= 0.0:
            self._value = accepted
        else:
            alpha = 1.0 - math.exp(-dt / self._filter_s) if dt > 0 else 0.0
            self._value += (accepted - self._value) * alpha
        return self._value
