"""How punctual and how long the scans are: start lateness and duration of the last minutes of
scans in two fixed arrays, plus counts and maxima since start (the `stats` op reads them).

Bounded memory whatever the uptime; recording a scan allocates nothing and never blocks.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

# How much history the percentiles look at.
WINDOW_S = 600.0


class ScanTimes:
    """Scan-start lateness (ms past the time the scan was due) and scan duration (ms)."""

    def __init__(self, *, period_s: float, window_s: float = WINDOW_S) -> None:
        self.period_s = period_s
        # One slot a scan: at 10 Hz, ten minutes is 6,000 samples of 4 bytes each per array.
        self._size = max(1, math.ceil(window_s / period_s))
        self._late = array("f", bytes(4 * self._size))
        self._took = array("f", bytes(4 * self._size))
        self._next = 0  # the slot the next scan goes in
        self.scans = 0
        self.timed = 0  # scans with a lateness (a real clock: not a simulation's)
        self.max_late_ms = 0.0
        self.max_took_ms = 0.0

    def record(self, *, late_s: float | None, took_s: float) -> None:
        """One scan: how late it started (None on simulated time) and how long it took."""
        slot = self._next
        late_ms = 0.0 if late_s is None else max(0.0, late_s * 1000)
        took_ms = took_s * 1000
        self._late[slot] = late_ms
        self._took[slot] = took_ms
        self._next = slot + 1 if slot + 1 < self._size else 0
        self.scans += 1
        if late_s is not None:
            self.timed += 1
            if late_ms > self.max_late_ms:
                self.max_late_ms = late_ms
        if took_ms > self.max_took_ms:
            self.max_took_ms = took_ms

    def summary(self, window_s: float | None = None) -> dict[str, Any]:
        """p50/p99/max of lateness and duration over the last `window_s` (default: all kept),
        and the counts and maxima since start; times in ms."""
        held = min(self.scans, self._size)
        if window_s is not None:
            held = min(held, max(1, math.ceil(window_s / self.period_s)))
        late = _last(self._late, self._next, held)
        took = _last(self._took, self._next, held)
        return {
            "window_scans": held,
            "window_s": round(held * self.period_s, 1),
            "lateness_ms": _order_stats(late if self.timed else []),
            "scan_ms": _order_stats(took),
            "scans": self.scans,
            "max_lateness_ms_since_start": round(self.max_late_ms, 3),
            "max_scan_ms_since_start": round(self.max_took_ms, 3),
        }


def _last(ring: array[float], next_slot: int, count: int) -> list[float]:
    """The `count` newest values of a ring whose next write goes to `next_slot`."""
    if count <= 0:
        return []
    start = next_slot - count
    if start >= 0:
        return list(ring[start:next_slot])
    return list(ring[start:]) + list(ring[:next_slot])


def _order_stats(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return round(ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1], 3)

    return {"p50": rank(50), "p99": rank(99), "max": round(ordered[-1], 3)}
