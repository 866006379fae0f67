"""Where the phase and alarm labels go above a plot: rows of flags that never overlap.

Each label hangs like a flag on a pole (its line's x) from the axes' top up to its row; a
label takes the lowest row where neither its text nor its pole crosses another's. Pure
arithmetic in pixels; never imports matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PAD_PX = 6.0  # between two labels in a row
GIVE_UP_AFTER = 20  # alarms in a row that found no room: the strip is full


@dataclass(frozen=True)
class Flag:
    """A label to place: its pole's x and its text's width, in pixels."""

    pole: float
    width: float


@dataclass(frozen=True)
class Placed:
    """Where a flag went: its row (0 nearest the axes; None: left off for want of room), and
    whether its text runs left of the pole (near the right end) instead of right."""

    row: int | None
    leftward: bool


def arrange(
    flags: Sequence[Flag],
    *,
    right_edge: float,
    rows: int,
    first: Sequence[bool],
    gap: float = 2.0,
) -> list[Placed]:
    """Place each flag, in the order given, within `rows` rows and left of `right_edge`.

    A text runs right of its pole unless it would pass the right edge or a leftward flag's
    pole; then left. The flags marked `first` (phases) are placed, then the others (alarms)
    one by one in time order, each kept only if every flag kept so far still finds a row: in
    a flood of alarms the first ones keep their labels.
    """
    leftward = [False] * len(flags)
    poles: list[float] = []
    for i in sorted(range(len(flags)), key=lambda i: -flags[i].pole):
        end = flags[i].pole + gap + flags[i].width
        if end > right_edge or any(flags[i].pole < p <= end + PAD_PX for p in poles):
            leftward[i] = True
            poles.append(flags[i].pole)
    boxes = [_box(f, left, gap) for f, left in zip(flags, leftward, strict=True)]
    kept = [i for i in range(len(flags)) if first[i]]
    placed = _staircase(boxes, kept, rows=rows)
    misses = 0
    for i in sorted((i for i in range(len(flags)) if not first[i]), key=lambda i: flags[i].pole):
        if misses >= GIVE_UP_AFTER:
            break
        trial = _staircase(boxes, [*kept, i], rows=rows)
        if (
            all(trial[j] is not None for j in kept if placed[j] is not None)
            and trial[i] is not None
        ):
            kept.append(i)
            placed = trial
            misses = 0
        else:
            misses += 1
    return [
        Placed(row=placed[i] if i in kept else None, leftward=leftward[i])
        for i in range(len(flags))
    ]


def _staircase(boxes: Sequence[_Box], which: Sequence[int], *, rows: int) -> list[int | None]:
    """Rows for some of the boxes (None for the others). Rightward texts are placed from right
    to left, so that a crowded label climbs above its right neighbours and its pole passes
    left of their texts; leftward ones (at the right end) first, the other way round."""
    order = sorted((i for i in which if boxes[i].x1 <= boxes[i].pole), key=lambda i: boxes[i].pole)
    order += sorted((i for i in which if boxes[i].x1 > boxes[i].pole), key=lambda i: -boxes[i].pole)
    placed: list[tuple[_Box, int]] = []
    out: list[int | None] = [None] * len(boxes)
    for i in order:
        row = next((r for r in range(rows) if _fits(boxes[i], r, placed)), None)
        if row is not None:
            placed.append((boxes[i], row))
        out[i] = row
    return out


@dataclass(frozen=True)
class _Box:
    pole: float
    x0: float
    x1: float


def _box(flag: Flag, leftward: bool, gap: float) -> _Box:
    if leftward:
        return _Box(flag.pole, flag.pole - gap - flag.width, flag.pole - gap)
    return _Box(flag.pole, flag.pole + gap, flag.pole + gap + flag.width)


def _fits(box: _Box, row: int, placed: Sequence[tuple[_Box, int]]) -> bool:
    for other, other_row in placed:
        if other_row == row and box.x0 < other.x1 + PAD_PX and other.x0 < box.x1 + PAD_PX:
            return False  # the texts would overlap
        # A pole may run along a text's end (two flags on one pole) but not through it.
        if other_row < row and other.x0 < box.pole < other.x1:
            return False  # this pole would cross a lower text
        if other_row > row and box.x0 < other.pole < box.x1:
            return False  # this text would sit on a higher label's pole
    return True
