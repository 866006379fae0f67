"""The arithmetic under the plots: thinning a long trend, and placing labels that never overlap."""

from __future__ import annotations

import math

from unit_controller.report.labels import Flag, arrange
from unit_controller.report.series import steps, thinned
from unit_controller.report.times import TimeAxis, duration

AXIS = TimeAxis(start_ts=0, unit="s", tz=None, one_day=True)


def test_a_short_trend_is_drawn_as_it_is_with_gaps_as_nan() -> None:
    s = thinned([0, 1000, 2000], [1.0, None, 3.0], axis=AXIS)
    assert s.x == (0.0, 1.0, 2.0)
    assert s.y[0] == 1.0
    assert math.isnan(s.y[1])
    assert s.y[2] == 3.0


def test_a_long_trend_keeps_at_most_the_limit_its_spike_and_its_gap() -> None:
    n = 36_000
    values: list[float | None] = [20.0 + (i % 7) * 0.01 for i in range(n)]
    values[12_345] = 95.0  # one spike
    values[20_000] = None  # one bad reading
    s = thinned([i * 1000 for i in range(n)], values, axis=AXIS, max_points=4000)
    assert len(s) <= 4000
    assert max(y for y in s.y if not math.isnan(y)) == 95.0
    assert sum(math.isnan(y) for y in s.y) == 1
    assert list(s.x) == sorted(s.x)


def test_a_setpoint_becomes_its_steps_and_keeps_its_gaps() -> None:
    ts = [i * 1000 for i in range(6)]
    s = steps(ts, [None, 58.0, 58.0, 58.0, 11.0, 11.0], axis=AXIS)
    assert s.x == (0.0, 1.0, 4.0, 5.0)
    assert math.isnan(s.y[0])
    assert s.y[1:] == (58.0, 11.0, 11.0)


def test_durations_read_as_people_say_them() -> None:
    assert duration(4_000) == "4 s"
    assert duration(750_000) == "12 min 30 s"
    assert duration(7_500_000) == "2 h 05 min"


def _boxes(flags: list[Flag], rows: list[int | None], lefts: list[bool]) -> list[tuple]:  # type: ignore[type-arg]
    out = []
    for f, r, left in zip(flags, rows, lefts, strict=True):
        if r is not None:
            x0, x1 = (
                (f.pole - 2 - f.width, f.pole - 2) if left else (f.pole + 2, f.pole + 2 + f.width)
            )
            out.append((r, x0, x1, f.pole))
    return out


def test_crowded_labels_climb_rows_without_overlapping_texts_or_crossing_poles() -> None:
    flags = [Flag(pole=x, width=60.0) for x in (100.0, 110.0, 120.0, 300.0, 985.0, 995.0)]
    placed = arrange(flags, right_edge=1000.0, rows=5, first=[True] * 6)
    rows = [p.row for p in placed]
    lefts = [p.leftward for p in placed]
    assert None not in rows
    assert lefts == [False, False, False, False, True, True]  # the two at the right end
    boxes = _boxes(flags, rows, lefts)
    for r, x0, x1, _ in boxes:
        for r2, a0, a1, pole2 in boxes:
            if (r, x0, x1) == (r2, a0, a1):
                continue
            assert not (r == r2 and x0 < a1 and a0 < x1)  # texts in one row never overlap
            if r2 > r:
                assert not x0 < pole2 < x1  # no pole through a lower text


def test_labels_beyond_the_rows_are_left_off_alarms_before_phases() -> None:
    flags = [Flag(pole=100.0 + i, width=80.0) for i in range(4)]
    placed = arrange(flags, right_edge=1000.0, rows=2, first=[False, True, False, True])
    rows = [p.row for p in placed]
    assert rows.count(None) == 2
    assert rows[1] is not None
    assert rows[3] is not None


def test_in_a_flood_of_alarms_the_first_ones_keep_their_labels() -> None:
    flags = [Flag(pole=100.0 + 5 * i, width=90.0) for i in range(12)]
    placed = arrange(flags, right_edge=1000.0, rows=3, first=[False] * 12)
    labelled = [i for i, p in enumerate(placed) if p.row is not None]
    assert labelled == [0, 1, 2]
