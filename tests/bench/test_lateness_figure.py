"""The scan-lateness figures on a tiny scale, and the bare loop they are set beside.

Real processes (a daemon, a broker, the bare loop): one xdist worker with the other real-time
tests. Nothing here asserts a time.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.baselines import bare_loop
from bench.core import Context, Figure
from bench.figures import lateness

pytestmark = pytest.mark.xdist_group("real_time")


def test_every_lateness_figure_comes_from_a_tiny_run(tmp_path: Path) -> None:
    figures = lateness.measure(Context(workdir=tmp_path, tiny=True, repeats=1, say=lambda _: None))
    assert set(figures) == set(lateness.KEYS)
    for figure in figures.values():
        assert isinstance(figure, Figure)
        assert figure.unit == "ms"
        assert math.isfinite(figure.value)
    for key in ("scan_p99_lateness_ms", "scan_max_lateness_ms"):
        assert figures[key].goal is not None
        assert figures[key].baseline is not None
        assert figures[key].note
    for key in ("bare_loop_p99_lateness_ms", "bare_loop_max_lateness_ms"):
        assert figures[key].goal is None


def test_the_bare_loop_reports_its_lateness_and_cpu_as_one_json_line() -> None:
    result = bare_loop.run_process(0.3, period_s=0.05)
    assert result["samples"] >= 1
    assert 0 <= result["p50_lateness_ms"] <= result["p99_lateness_ms"] <= result["max_lateness_ms"]
    assert result["cpu_s"] >= 0
    assert math.isfinite(result["cpu_percent"])
