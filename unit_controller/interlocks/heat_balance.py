"""Detects a welded heater SSR that jacket cooling hides: heat taken out that nothing put in.

With the jacket cooling, a welded SSR need not make the temperature rise: the loop cools it
away. Over a window the jacket must then remove more heat than every source could supply: the
heater as commanded, the agitator, dosed reactions and what the batch gave up by cooling down.
Every term is bounded the safe way (removal at its least, sources at their most), so a reaction
or a hot liquor cooling to its setpoint is never taken for a weld. Never writes outputs.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

# Samples kept over a window, at most: the integrals are exact at every scan whatever is kept,
# so a sparser window only moves its start by up to window_s / this (1 s of 10 minutes). At
# 10 Hz, one sample a scan held 6,000 tuples, ~1 MB of a daemon's ~45.
SAMPLES_PER_WINDOW = 600


class _Sample(NamedTuple):
    at: float
    removed_j: float  # cumulative, at least
    supplied_j: float  # cumulative, at most
    temperature_c: float
    capacity_j_k: float  # of the batch, at most


class HeatBalanceMonitor:
    """Trips when, over `window_s`, the jacket removed `margin_j` more than the sources supplied."""

    def __init__(self, *, window_s: float, margin_j: float) -> None:
        self._window_s = window_s
        self._margin_j = margin_j
        self._keep_every_s = window_s / SAMPLES_PER_WINDOW
        self._removed_j = 0.0
        self._supplied_j = 0.0
        self._at: float | None = None
        self._samples: deque[_Sample] = deque()

    def reset(self) -> None:
        """Forget the window (the contactor opened: no SSR can heat)."""
        self._samples.clear()
        self._at = None

    def update(
        self,
        *,
        now: float,
        temperature_c: float | None,
        removed_w: float,
        supplied_w: float,
        capacity_j_k: float,
    ) -> str | None:
        """Advance one scan; returns the fault message while the imbalance holds, else None.

        `removed_w`: what the jacket takes out now, at least; `supplied_w`: what the heater (as
        commanded), the agitator and reactions put in, at most; `capacity_j_k`: the batch's
        heat capacity, at most.
        """
        if temperature_c is None:
            return None
        dt = 0.0 if self._at is None else max(0.0, now - self._at)
        self._at = now
        self._removed_j += max(0.0, removed_w) * dt
        self._supplied_j += max(0.0, supplied_w) * dt
        samples = self._samples
        if not samples or now - samples[-1].at >= self._keep_every_s:
            samples.append(
                _Sample(now, self._removed_j, self._supplied_j, temperature_c, capacity_j_k)
            )
        while len(samples) > 1 and samples[1].at <= now - self._window_s:
            samples.popleft()
        first = samples[0]
        if now - first.at < self._window_s:
            return None
        removed = self._removed_j - first.removed_j
        # cooling down releases stored heat: count it at its most
        stored = max(first.capacity_j_k, capacity_j_k) * max(
            0.0, first.temperature_c - temperature_c
        )
        supplied = self._supplied_j - first.supplied_j + stored
        excess = removed - supplied
        if excess <= self._margin_j:
            return None
        span = now - first.at
        # Said as what was judged: the jacket's removal is inferred from the valve as commanded,
        # and the trip comes as the excess crosses the margin, so its size is not the weld's
        # (a 6 kW weld and a shut valve both read "1.2 kW" as a rate).
        return (
            f"with the jacket commanded open, the temperature fell by {excess / 1000:.0f} kJ "
            f"less than it should have over {span:.0f} s (limit {self._margin_j / 1000:.0f} "
            "kJ), even counting everything the heater as commanded, the agitator and the "
            "reactions can supply: heat from somewhere (a welded SSR), or a jacket that is not "
            "cooling (check the cooling valve)"
        )
