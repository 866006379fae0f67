"""The period grid telemetry and the trend keep."""

from __future__ import annotations

import pytest

from unit_controller.cadence import Cadence


def test_due_once_a_period_on_the_grid_and_after_a_stall_from_then() -> None:
    cadence = Cadence(1.0)
    scans = [round(0.1 * i, 10) for i in range(25)]
    # 0.1 s steps summed in floats: still due at every whole second, never at 1.1.
    at = 0.0
    due = []
    for _ in scans:
        if cadence.due(at):
            due.append(round(at, 1))
        at += 0.1
    assert due == [0.0, 1.0, 2.0]
    assert cadence.due(10.05)  # a stall: due at once, then a period from then
    assert not cadence.due(10.9)
    assert cadence.due(11.05)


def test_a_grid_can_start_where_it_is_told() -> None:
    cadence = Cadence(1.0)
    assert not cadence.started
    cadence.start_at(5.0)
    assert cadence.started
    assert not cadence.due(4.9)
    assert cadence.due(5.0)
    with pytest.raises(ValueError, match="period_s must be > 0"):
        Cadence(0.0)
