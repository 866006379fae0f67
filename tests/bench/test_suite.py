"""The benchmark suite's own code on a tiny scale: its results files and verdicts (no timing)."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest

from bench import suite
from bench.core import Context, Figure, Goal, interleaved, percentile
from bench.figures import control, scale
from bench.obstacles import OBSTACLES


def test_a_goal_on_the_ratio_judges_the_value_against_its_baseline() -> None:
    figure = Figure(1.5, "ms", goal=Goal(1.2, on="ratio"), baseline=1.0)
    assert figure.ratio == pytest.approx(1.5)
    assert figure.passed is False
    assert Figure(1.1, "ms", goal=Goal(1.2, on="ratio"), baseline=1.0).passed is True
    faster = Figure(950.0, "msg/s", goal=Goal(0.9, better="higher", on="ratio"), baseline=1000.0)
    assert faster.passed is True


def test_a_figure_that_could_not_be_measured_fails_its_goal() -> None:
    assert Figure(math.nan, "×", goal=Goal(0.5)).passed is False
    assert Figure(2.0, "ms", goal=Goal(1.2, on="ratio")).passed is False  # no baseline


def test_results_json_holds_value_baseline_ratio_goal_and_pass_for_every_key() -> None:
    figures: dict[str, Figure | float] = {
        "rss_mb": Figure(38.0, "MB", goal=Goal(40, unit="MB"), baseline=20.0, runs=(38.0,)),
        "plain": 3.0,
    }
    document = suite.results_json(figures, {}, {"memory": 1.0}, about={"date": "d"})
    assert document["rss_mb"] == {
        "value": 38.0,
        "baseline": 20.0,
        "ratio": 1.9,
        "goal": "≤ 40 MB",
        "pass": True,
        "unit": "MB",
        "runs": [38.0],
    }
    assert document["plain"] == 3.0
    json.dumps(document)


def test_results_markdown_names_every_missed_goal_and_broken_group() -> None:
    figures: dict[str, Figure | float] = {
        "a": Figure(2.0, "s", goal=Goal(1.0, unit="s")),
        "b": Figure(1.0, "s", goal=Goal(1.0, unit="s")),
    }
    about = {
        "date": "today",
        "scale": "full",
        "repeats": 3,
        "wall_s": 1.0,
        "machine": suite.machine(),
    }
    text = suite.results_markdown(figures, {"cpu": "RuntimeError: no READY"}, about=about)
    assert "| `a` | 2 s |" in text
    assert "**FAIL**" in text
    assert "1 goal(s) missed: `a`" in text
    assert "group `cpu` failed: RuntimeError: no READY" in text


def test_interleaving_alternates_the_figure_and_its_baseline() -> None:
    order: list[str] = []

    def figure() -> float:
        order.append("figure")
        return 1.0

    def baseline() -> float:
        order.append("baseline")
        return 2.0

    assert interleaved(2, figure, baseline) == [[1.0, 1.0], [2.0, 2.0]]
    assert order == ["figure", "baseline", "figure", "baseline"]
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 99) == 5.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0


def test_the_seq_counter_counts_gaps_per_unit_and_session() -> None:
    counter = scale.SeqCounter()
    for unit, sess, seq in [("a", 1, 1), ("a", 1, 2), ("a", 1, 5), ("b", 1, 7), ("a", 2, 1)]:
        counter.seen(unit, {"sess": sess, "seq": seq})
    assert (counter.received, counter.lost, counter.units) == (5, 2, 2)


def test_the_control_figures_come_from_a_tiny_envelope_run(tmp_path: Path) -> None:
    figures = control.measure(Context(workdir=tmp_path, tiny=True, repeats=1, say=lambda _: None))
    assert set(figures) == set(control.KEYS)
    assert all(isinstance(f, Figure) for f in figures.values())


@pytest.mark.xdist_group("bench")
def test_the_suite_writes_both_files_for_a_tiny_fleet(tmp_path: Path) -> None:
    code = suite.main(["--tiny", "--only", "scale", "--out", str(tmp_path)])
    document = json.loads((tmp_path / "results.json").read_text())
    assert set(scale.KEYS) <= set(document)
    assert document["scale_messages_lost"]["pass"] is True
    assert document["_about"]["errors"] == {}
    assert "| `scale_units` |" in (tmp_path / "RESULTS.md").read_text()
    assert code in (0, 1)  # tiny figures may miss their goals; the code ran


def test_a_missed_goal_is_shown_with_its_shortfall_and_what_stands_in_its_way() -> None:
    figures: dict[str, Figure | float] = {
        "cpu_percent": Figure(0.8, "%", goal=Goal(0.4, unit="%")),
        "sim_speedup": Figure(750.0, "×", goal=Goal(3000, better="higher")),
        "unknown_key": Figure(2.0, "s", goal=Goal(1.0, unit="s")),
    }
    about = {"date": "d", "scale": "full", "repeats": 1, "wall_s": 1.0, "machine": suite.machine()}
    text = suite.results_markdown(figures, {}, about=about)
    assert "- `cpu_percent`: 0.8 % against ≤ 0.4 %: 2.00× the limit. " in text
    assert OBSTACLES["cpu_percent"] in text
    assert "- `sim_speedup`: 750 × against ≥ 3000: 25% of it. " in text
    assert "`unknown_key`: 2 s against ≤ 1 s: 2.00× the limit. not yet profiled" in text


def test_every_obstacle_is_about_a_key_the_suite_measures() -> None:
    keys = {
        key
        for group in suite.GROUPS
        for key in importlib.import_module(f"bench.figures.{group}").KEYS
    }
    assert set(OBSTACLES) <= keys
