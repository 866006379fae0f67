"""The start-up figures on a tiny scale, and the bare start they are set beside.

Real processes (daemons, the bare start): one xdist worker with the other real-time tests.
Nothing here asserts a time.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.baselines.bare_start import BareStart
from bench.core import Context, Figure
from bench.figures import startup
from bench.procs import usage
from unit_controller.config import load_config

pytestmark = pytest.mark.xdist_group("real_time")


def test_every_startup_figure_comes_from_a_tiny_run(tmp_path: Path) -> None:
    figures = startup.measure(Context(workdir=tmp_path, tiny=True, repeats=1, say=lambda _: None))
    assert set(figures) == set(startup.KEYS)
    for figure in figures.values():
        assert isinstance(figure, Figure)
        assert figure.unit == "s"
        assert math.isfinite(figure.value)
        assert figure.value > 0
        assert figure.baseline is not None
        assert figure.goal is not None
        assert figure.note
    assert figures["start_to_ready_s"].goal.limit == 0.25  # type: ignore[union-attr]
    assert figures["start_to_ready_1m_backlog_s"].goal.limit == 0.30  # type: ignore[union-attr]


def test_the_bare_start_says_ready_holds_its_database_and_stops_on_sigterm(tmp_path: Path) -> None:
    bare = BareStart(tmp_path)
    took = bare.start()
    try:
        assert took > 0
        assert (tmp_path / "bare.db").is_file()
        assert usage(bare.pid).rss_mb > 0
    finally:
        bare.stop()
    assert bare.proc is not None
    assert bare.proc.returncode == 0


def test_the_backlog_config_holds_a_million_rows_and_never_waits_for_the_broker(
    tmp_path: Path,
) -> None:
    path = startup.backlog_config(tmp_path / "unit.toml")
    config = load_config(path)
    assert config.mqtt.outbox.max_bytes >= startup.BACKLOG_ROWS * 400
    assert config.mqtt.drain_timeout_s == 0
    # Everything else is the example's.
    example = load_config()
    assert (config.unit, config.devices, config.control) == (
        example.unit,
        example.devices,
        example.control,
    )
