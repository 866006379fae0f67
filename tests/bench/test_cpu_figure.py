"""The daemon-CPU figure on a tiny scale, and the per-thread CPU reading it rests on.

A real daemon and broker: one xdist worker with the other real-time tests. Nothing here asserts
a time.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from bench.core import Context, Figure
from bench.figures import cpu


@pytest.mark.xdist_group("real_time")
def test_the_cpu_figure_comes_from_a_tiny_run(tmp_path: Path) -> None:
    figures = cpu.measure(Context(workdir=tmp_path, tiny=True, repeats=1, say=lambda _: None))
    assert set(figures) == set(cpu.KEYS)
    figure = figures["cpu_percent"]
    assert isinstance(figure, Figure)
    assert figure.unit == "%"
    assert math.isfinite(figure.value)
    assert figure.baseline is not None
    assert figure.goal is not None


def test_thread_cpu_counts_every_thread_of_a_process() -> None:
    before = cpu.task_cpu_ns(os.getpid())
    sum(i * i for i in range(200_000))  # some CPU of our own
    assert cpu.task_cpu_ns(os.getpid()) > before
