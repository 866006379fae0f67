"""Something done once a period of controller time, on a fixed grid (telemetry, the trend).

Pure arithmetic on the times it is given; never reads a clock.
"""

from __future__ import annotations


class Cadence:
    """Due once a period on the grid from the first time it is asked; after a stall it goes on
    a period from then rather than bursting to catch up."""

    def __init__(self, period_s: float) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self._period_s = period_s
        self._next: float | None = None

    @property
    def started(self) -> bool:
        """True once it has been asked (or told where to start)."""
        return self._next is not None

    def start_at(self, at: float) -> None:
        """The grid begins at `at` (due then)."""
        self._next = at

    def due(self, at: float) -> bool:
        """Whether it is due at `at`; when it is, the next time moves one period on."""
        if self._next is None:
            self._next = at
        # The tolerance absorbs float error in the clock's sums (ten 0.1 s scans never add to 1.0).
        if at + 1e-6 < self._next:
            return False
        self._next += self._period_s
        if self._next <= at:
            self._next = at + self._period_s
        return True
