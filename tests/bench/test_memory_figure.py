"""The memory figures on a tiny scale: a daemon running a batch, one draining a backlog to a
Mosquitto of its own, and the bare process they are set beside.

Real processes: one xdist worker with the other real-time tests. Nothing here asserts a size or
a time.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.backlog import fill_outbox, outbox_path
from bench.core import Context, Figure
from bench.figures import memory

pytestmark = pytest.mark.xdist_group("real_time")


def test_every_memory_figure_comes_from_a_tiny_run(tmp_path: Path) -> None:
    figures = memory.measure(Context(workdir=tmp_path, tiny=True, repeats=1, say=lambda _: None))
    assert set(figures) == set(memory.KEYS)
    for figure in figures.values():
        assert isinstance(figure, Figure)
        assert figure.unit == "MB"
        assert math.isfinite(figure.value)
        assert figure.value > 0
        assert figure.baseline is not None
        assert figure.goal is not None
        assert (figure.goal.limit, figure.goal.unit) == (40, "MB")
        assert figure.note


def test_the_backlog_is_counted_from_the_outbox_file(tmp_path: Path) -> None:
    path = outbox_path(tmp_path)
    fill_outbox(path, 25)
    assert memory.pending_rows(path) == 25
