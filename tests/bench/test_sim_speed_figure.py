"""The `sim --fast` speed figure on a tiny scale: the keys and types it reports, and that its
baseline steps the plant it says. Nothing here asserts a time."""

from __future__ import annotations

import math
from pathlib import Path

from bench.baselines import bare_plant
from bench.core import Context, Figure
from bench.figures import sim_speed


def test_the_figure_and_its_baseline_come_from_a_tiny_run(tmp_path: Path) -> None:
    figures = sim_speed.measure(Context(workdir=tmp_path, tiny=True, repeats=1, say=lambda _: None))
    assert set(figures) == set(sim_speed.KEYS)
    figure = figures["sim_speedup"]
    assert isinstance(figure, Figure)
    assert figure.unit == "× real time"
    assert math.isfinite(figure.value)
    assert figure.value > 0
    assert figure.baseline is not None
    assert figure.baseline > 0
    assert figure.goal is not None
    assert figure.goal.better == "higher"
    assert len(figure.runs) == 1
    assert figure.note


def test_a_tiny_batch_stops_after_the_simulated_time_it_was_given() -> None:
    speed, scans, simulated_s = sim_speed.batch_speed(stop_after_s=30.0)
    assert speed > 0
    assert 30.0 <= simulated_s < 31.0
    assert scans > 0


def test_the_bare_plant_steps_simulated_time_at_the_scan_period() -> None:
    report = bare_plant.run(50)
    assert report["steps"] == 50
    assert math.isclose(report["simulated_s"], 50 * bare_plant.DT_S)
    assert report["x_real_time"] > 0
