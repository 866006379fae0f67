"""Reagent in flight: dosed, but not yet seen by the filtered pH (a dead time, then a lag).

Pure arithmetic on the volumes and times it is given; never reads a clock. The dosing
controller counts what is still coming so it never doses twice for the same error.
"""

from __future__ import annotations

import math
from collections import deque


class DoseResponse:
    """Cumulative dosed volume passed through a delay `delay_s` and a first-order lag `tau_s`."""

    def __init__(self, *, delay_s: float, tau_s: float) -> None:
        self.delay_s = delay_s
        self.tau_s = tau_s
        self._dosed = 0.0
        self._seen = 0.0
        self._arrived = 0.0  # cumulative volume one delay ago
        self._history: deque[tuple[float, float]] = deque()
        self._at: float | None = None

    @property
    def dosed_ml(self) -> float:
        """Everything dosed through this model."""
        return self._dosed

    @property
    def seen_ml(self) -> float:
        """What the reading should show by now."""
        return self._seen

    @property
    def pending_ml(self) -> float:
        """Dosed but not yet seen (negative: less than the load takes, not yet seen either)."""
        return self._dosed - self._seen

    def reset(self) -> None:
        """Nothing in flight."""
        self._dosed = self._seen = self._arrived = 0.0
        self._history.clear()
        self._at = None

    def update(self, *, now: float, dosed_ml: float) -> None:
        """`dosed_ml` more was delivered up to `now` (signed: a correction below the load's
        need is a negative volume)."""
        if self._at is not None and now < self._at:
            return
        dt = 0.0 if self._at is None else now - self._at
        self._at = now
        self._dosed += dosed_ml
        history = self._history
        history.append((now, self._dosed))
        cutoff = now - self.delay_s
        while history and history[0][0] <= cutoff:
            self._arrived = history.popleft()[1]
        if dt > 0.0:
            alpha = 1.0 - math.exp(-dt / self.tau_s) if self.tau_s > 0 else 1.0
            self._seen += (self._arrived - self._seen) * alpha
