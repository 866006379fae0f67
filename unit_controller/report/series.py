"""Trend columns made into what a plot draws: elapsed x, y with NaN where a reading was bad.

A long batch is thinned to at most MAX_POINTS points a series, keeping each bucket's lowest
and highest value (a spike stays visible) and every gap as a gap; setpoints become their
steps. Pure Python; never imports matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from unit_controller.report.times import TimeAxis

MAX_POINTS = 4000
NAN = math.nan


@dataclass(frozen=True)
class Series:
    """Points to draw: x on the report's time axis, y with NaN for a gap."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.x)


def has_values(values: Sequence[float | None] | None) -> bool:
    """Whether a column holds at least one reading."""
    return values is not None and any(v is not None for v in values)


def thinned(
    ts: Sequence[int],
    values: Sequence[float | None],
    *,
    axis: TimeAxis,
    scale: float = 1.0,
    max_points: int = MAX_POINTS,
) -> Series:
    """The column as points, at most max_points of them, each value times scale.

    Up to max_points rows are drawn as they are. Beyond, rows are cut into buckets of equal
    count; a bucket gives its lowest and highest reading in time order, then a gap when any of
    its rows was null, or only a gap when all were.
    """
    if len(ts) <= max_points:
        return Series(
            x=tuple(axis.x(t) for t in ts),
            y=tuple(NAN if v is None else v * scale for v in values),
        )
    buckets = max(1, max_points // 3)  # two extremes and a possible gap each
    size = math.ceil(len(ts) / buckets)
    xs: list[float] = []
    ys: list[float] = []
    for lo in range(0, len(ts), size):
        hi = min(lo + size, len(ts))
        good = [(i, v) for i in range(lo, hi) if (v := values[i]) is not None]
        if good:
            low = min(good, key=lambda p: p[1])
            high = max(good, key=lambda p: p[1])
            for i, v in sorted({low, high}):
                xs.append(axis.x(ts[i]))
                ys.append(v * scale)
        if len(good) < hi - lo:
            gap = next(i for i in range(lo, hi) if values[i] is None)
            xs.append(axis.x(ts[gap]))
            ys.append(NAN)
    return Series(x=tuple(xs), y=tuple(ys))


def steps(ts: Sequence[int], values: Sequence[float | None], *, axis: TimeAxis) -> Series:
    """A setpoint as its steps (draw with `steps-post`): each change, and the last row."""
    xs: list[float] = []
    ys: list[float] = []
    previous: object = object()
    for t, v in zip(ts, values, strict=True):
        if v != previous:
            xs.append(axis.x(t))
            ys.append(NAN if v is None else v)
            previous = v
    if ts and (not xs or xs[-1] != axis.x(ts[-1])):
        xs.append(axis.x(ts[-1]))
        ys.append(ys[-1])
    return Series(x=tuple(xs), y=tuple(ys))
