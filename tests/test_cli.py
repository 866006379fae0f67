"""The command line as a new user tries it: a smoke batch, faults that trip, and bad input.

In-process through `main(argv)` for speed; one subprocess run proves `python -m` works and that a
seed reproduces a batch exactly. Only smoke batches run, and as few as possible.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import importlib
import io
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.recipe_parts import FILL_TO_LSL
from unit_controller.cli import main
from unit_controller.config import DEFAULT_CONFIG, load_config
from unit_controller.sim.runner import SimOptions, SimulationRun

EXAMPLE = DEFAULT_CONFIG.read_text(encoding="utf-8")
cli_site = importlib.import_module("unit_controller.cli.site")
SMOKE = ["sim", "--recipe", "smoke", "--fast", "--json", "--seed", "1"]

# The smoke recipe's pH step without its heating and drain: a third of its simulated time, for
# tests of the CLI around a batch, not of the batch (the envelope's run it four times).
QUICK_PH = (
    """
name = "quick_ph"
starts_with = "empty"
"""
    + FILL_TO_LSL
    + """
[[phases]]
name = "buffer"
timeout_min = 10.0
agitator = true
doses = [{ pump = "P-204", ml = 300.0, over_min = 3.0 }]
until = { doses_done = true }
[[phases]]
name = "ph"
timeout_min = 25.0
temperature_c = 20.0
agitator = true
cooling = true
ph = { setpoint = 9.5, pump = "P-201", tolerance = 0.1, cap_ml = 60.0, kp_ml = 4.0, ki_ml = 0.4, \
max_dose_ml = 3.0 }
until = { at_setpoint_min = 2.0 }
"""
)


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def summary(self) -> dict[str, Any]:
        """The --json line: the last line of stdout."""
        last = self.out.rstrip("\n").splitlines()[-1]
        summary: dict[str, Any] = json.loads(last)
        return summary


def _cli(*argv: str) -> Outcome:
    """Run `unit-controller ARGV` in-process; argparse's exits count as exit codes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Outcome(code=code, out=out.getvalue(), err=err.getvalue())


@pytest.fixture(scope="module")
def smoke() -> Outcome:
    return _cli(*SMOKE)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _assert_bad_input(outcome: Outcome, *says: str) -> None:
    assert outcome.code == 2, outcome
    assert "Traceback" not in outcome.err
    for text in says:
        assert text in outcome.err, outcome.err


# --- a whole smoke batch ----------------------------------------------------------------------


def test_smoke_batch_completes_with_exit_0(smoke: Outcome) -> None:
    assert smoke.code == 0
    assert smoke.summary["final_state"] == "COMPLETE"
    assert "batch ended COMPLETE" in smoke.out


def test_json_summary_has_every_documented_field(smoke: Outcome) -> None:
    summary = smoke.summary
    assert summary["recipe"] == "smoke"
    assert summary["seed"] == 1
    assert summary["sim_seconds"] > 0
    # The batch's times count from its own start, a scan or two into the run (a fault's
    # minutes count from the run's): found by a control engineer reading "detected 0.2 s
    # before it happened".
    assert 0 < summary["batch_start_s"] < 5
    assert summary["wall_seconds"] >= 0
    assert [p["name"] for p in summary["phases"]] == ["fill", "heat", "ph", "drain", "drain_heel"]
    for phase in summary["phases"]:
        assert set(phase) == {"name", "start_s", "end_s"}
        assert phase["start_s"] <= phase["end_s"] <= summary["sim_seconds"]
    assert summary["alarms"] == []
    assert summary["faults_not_injected"] == []
    assert set(summary["reagents_ml"]) == {"P-201", "P-204"}
    assert summary["reagents_ml"]["P-204"] == pytest.approx(300.0, abs=1.0)
    assert 0 <= summary["ph"]["in_band_fraction"]["ph"] <= 1
    assert summary["temperature"]["max_c"] == pytest.approx(30.0, abs=2.0)
    assert summary["temperature"]["overshoot_c"] >= 0
    hazards = summary["hazards"]
    assert hazards["heater_on_dry_s"] == 0.0
    assert hazards["max_true_temperature_c"] < 35.0
    assert hazards["overflow_l"] == 0.0


def test_progress_names_the_recipe_phases_and_auto_confirmation(smoke: Outcome) -> None:
    first = smoke.out.splitlines()[0]
    assert first.startswith("simulating recipe 'smoke' on unit sim-unit-01, seed 1")
    assert "phase fill" in smoke.out
    assert "STOPPED -> RESETTING" in smoke.out


def test_python_m_entry_point_reproduces_the_batch_for_the_same_seed(smoke: Outcome) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "unit_controller.cli", *SMOKE],
        capture_output=True,
        text=True,
        check=False,
        cwd=DEFAULT_CONFIG.parent.parent.parent,
    )
    assert proc.returncode == 0, proc.stderr
    again: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    mine = dict(smoke.summary)
    # The same batch, journaled again as the unit's next one.
    del again["wall_seconds"], mine["wall_seconds"], again["journal"], mine["journal"]
    assert again == mine


# --- faults that end the batch ----------------------------------------------------------------


def test_estop_aborts_the_batch_with_exit_3() -> None:
    outcome = _cli("sim", "--recipe", "smoke", "--json", "--fault", "estop@5")
    assert outcome.code == 3
    summary = outcome.summary
    assert summary["final_state"] == "ABORTED"
    assert summary["faults"] == ["estop@5"]
    (alarm,) = summary["alarms"]
    # raised_s counts from the batch start, which is a scan or two after the simulation starts
    assert alarm == {
        "id": "estop",
        "tag": "HS-100",
        "priority": "critical",
        "raised_s": 299.9,
        "message": "E-stop pressed",
    }
    assert "fault injected: estop@5" in outcome.out


def test_dead_rtd_holds_the_batch_with_exit_3() -> None:
    outcome = _cli("sim", "--recipe", "smoke", "--json", "--fault", "rtd_dead@5")
    assert outcome.code == 3
    summary = outcome.summary
    assert summary["final_state"] == "HELD"
    assert [(a["id"], a["tag"]) for a in summary["alarms"]] == [("reading_bad", "TT-101")]


def test_a_fault_before_the_start_ends_with_exit_3_and_no_traceback() -> None:
    outcome = _cli("sim", "--recipe", "smoke", "--fault", "estop@0", "--json")
    assert outcome.code == 3
    assert "Traceback" not in outcome.err
    # The E-stop is pressed while the unit resets, before the start: it aborts, as from Idle,
    # and the start is refused saying why.
    assert "start refused: cannot start in ABORTED" in outcome.out
    assert "no batch ran (why: above): the unit stayed ABORTED" in outcome.out
    [alarm] = outcome.summary["alarms"]
    assert (alarm["id"], alarm["tag"]) == ("estop", "HS-100")
    assert alarm["message"]  # as a batch's alarms carry theirs


def test_a_fault_scheduled_past_the_end_is_said_never_injected(tmp_path: Path) -> None:
    recipe = str(_write(tmp_path, "quick_ph.toml", QUICK_PH))
    outcome = _cli("sim", "--recipe", recipe, "--fault", "estop@500", "--json")
    assert outcome.code == 0
    assert "fault estop@500 never injected" in outcome.out
    assert outcome.summary["faults_not_injected"] == ["estop@500"]


# --- bad input: exit 2, the reason on stderr --------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--recipe", "nosuch"], "no recipe named 'nosuch'"),
        (["--recipe", "nosuch"], "available: coprecipitation, leach, purify, smoke"),
        (["--recipe", "/nonexistent/r.toml"], "/nonexistent/r.toml: no such file"),
        (["--fault", "ph_probe_melted@5"], "unknown fault 'ph_probe_melted'"),
        (["--fault", "ph_probe_melted@5"], "dosing_pump_stall, estop, heater_open"),
        (["--fault", "estop@"], "fault 'estop@' is not NAME[:TAG]@MINUTES"),
        (["--fault", "estop@-1"], "minutes must be a finite number >= 0"),
        (["--fault", "estop@abc"], "minutes 'abc' is not a number"),
        (["--fault", "estop"], "fault 'estop' is not NAME[:TAG]@MINUTES"),
        (["--fault", "estop:HS-100@5"], "fault 'estop' takes no :TAG"),
        (["--fault", "dosing_pump_stall:P-999@5"], "no pump 'P-999' (pumps: P-201"),
        (["--speed", "0"], "speed must be > 0"),
        (["--speed", "-1"], "speed must be > 0"),
        (["--speed", "1e-300"], "speed must be > 0: from 0.01 to 1000000"),
        (["--speed", "abc"], "speed 'abc' is not a number"),
        (["--speed", "2", "--fast"], "--fast: not allowed with argument --speed"),
        (["--seed", "-1"], "seed must be >= 0"),
        (["--seed", "1.5"], "seed '1.5' is not a whole number"),
        (["--progress-every", "-5"], "progress interval must be a number of simulated seconds"),
        (["--progress-every", "nan"], "progress interval must be a number of simulated seconds"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--config", "/nonexistent/unit.toml"], "/nonexistent/unit.toml: no such file"),
    ],
)
def test_bad_sim_input_exits_2_saying_why(argv: list[str], says: str) -> None:
    outcome = _cli("sim", "--recipe", "smoke", *argv)
    _assert_bad_input(outcome, says)
    assert "simulating recipe" not in outcome.out  # refused before anything ran


def test_recipe_file_with_bad_toml_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.toml", 'name = "x"\n[[phases]\n')
    _assert_bad_input(_cli("sim", "--recipe", str(path)), f"{path}: not valid TOML")


def test_recipe_naming_a_pump_the_unit_lacks_exits_2(tmp_path: Path) -> None:
    smoke = (DEFAULT_CONFIG.parent.parent.parent / "recipes" / "smoke.toml").read_text("utf-8")
    path = _write(tmp_path, "r.toml", smoke.replace('pump = "P-204"', 'pump = "P-299"'))
    _assert_bad_input(
        _cli("sim", "--recipe", str(path)),
        f"error: recipe {path}:",
        "phases[1].doses[0].pump: pump 'P-299' is not on this unit",
    )


def test_config_with_bad_toml_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path, "unit.toml", "[unit\n")
    _assert_bad_input(
        _cli("sim", "--recipe", "smoke", "--config", str(path)), f"{path}: not valid TOML"
    )


def test_config_with_serial_backend_is_refused_for_sim(tmp_path: Path) -> None:
    text = EXAMPLE.replace(
        'backend = "mock"', 'backend = "serial"\n[hal.serial]\nrelay_board_port = "/dev/null"'
    )
    for tag in ("TT-101", "AT-101", "P-201", "P-202", "P-203", "P-204", "P-205"):
        text = text.replace(f"[devices.{tag}]\n", f'[devices.{tag}]\nport = "/dev/{tag}"\n')
    path = _write(tmp_path, "unit.toml", text)
    _assert_bad_input(
        _cli("sim", "--recipe", "smoke", "--config", str(path)),
        "sim needs the mock backend",
        "backend 'serial'",
    )


def test_no_command_exits_2_with_usage() -> None:
    _assert_bad_input(_cli(), "the following arguments are required: COMMAND")


# --- check-config and recipes -----------------------------------------------------------------


def test_check_config_prints_ok_for_the_example() -> None:
    outcome = _cli("check-config", str(DEFAULT_CONFIG))
    assert (outcome.code, outcome.out) == (0, "ok\n")


def test_check_config_names_the_toml_location_of_each_problem(tmp_path: Path) -> None:
    text = (
        EXAMPLE.replace('id = "sim-unit-01"\n', "")
        .replace("scan_period_s = 0.1", "scan_period_s = 0.1\nscan_hz = 10")
        .replace("max_temperature_setpoint_c = 85.0", "max_temperature_setpoint_c = 95.0")
    )
    path = _write(tmp_path, "unit.toml", text + '\n[devices.TT-102]\nkind = "rtd"\n')
    outcome = _cli("check-config", str(path))
    assert outcome.code == 2
    assert outcome.out.splitlines() == [
        f"{path}: 4 problem(s)",
        "  unit.id: Field required",
        "  unit.scan_hz: Extra inputs are not permitted (got 10)",
        "  devices: exactly one device of kind 'rtd' is needed, found ['TT-101', 'TT-102']",
        "  interlocks: max_temperature_setpoint_c (95.0) must be below "
        "temperature_high_high_c (90.0)",
    ]


def test_check_config_locates_a_bad_device_value_and_level_order(tmp_path: Path) -> None:
    stale = _write(tmp_path, "a.toml", EXAMPLE.replace("stale_s = 5.0", "stale_s = -1.0"))
    outcome = _cli("check-config", str(stale))
    assert outcome.code == 2
    stale_problem = "  devices.TT-101.stale_s: Input should be greater than or equal to 2 (got -1."
    assert stale_problem in outcome.out
    order = _write(tmp_path, "b.toml", EXAMPLE.replace("at_l = 100.0", "at_l = 10.0"))
    outcome = _cli("check-config", str(order))
    assert outcome.code == 2
    assert "  devices: level switches must rise low_low < low < high < high_high" in outcome.out


def test_check_config_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    outcome = _cli("check-config", str(path))
    assert outcome.code == 2
    assert f"{path}: no such file" in outcome.out


def test_check_config_of_a_non_toml_file_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path, "README.md", "# unit-controller\n\nSome *prose*.\n")
    outcome = _cli("check-config", str(path))
    assert outcome.code == 2
    assert f"{path}: not valid TOML" in outcome.out
    assert "Traceback" not in outcome.err


def test_recipes_lists_the_shipped_recipes() -> None:
    outcome = _cli("recipes")
    assert outcome.code == 0
    assert outcome.out.split() == ["coprecipitation", "leach", "purify", "smoke"]


def test_recipes_lists_what_the_daemon_offers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "etc"
    (site / "recipes").mkdir(parents=True)
    (site / "recipes" / "ours.toml").write_text(_SMOKE_TEXT.replace('"smoke"', '"ours"'))
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(site))
    assert _cli("recipes").out.split() == ["ours"]
    # A tech's shell on the unit has no $CONFIGURATION_DIRECTORY: where the installer put them.
    monkeypatch.delenv("CONFIGURATION_DIRECTORY")
    monkeypatch.setattr(cli_site, "INSTALLED_CONFIG_DIR", site)
    assert _cli("recipes").out.split() == ["ours"]
    (site / "unit.toml").write_text(EXAMPLE)
    outcome = _cli("check-recipe", "ours")
    assert outcome.code == 0
    assert f"on {site / 'unit.toml'}" in outcome.out  # the unit's config, not the simulator's
    assert _cli("recipes", "--recipes-dir", str(tmp_path / "none")).code == 2
    (tmp_path / "empty").mkdir()
    outcome = _cli("recipes", "--recipes-dir", str(tmp_path / "empty"))
    assert (outcome.code, outcome.out) == (0, "")
    assert f"no recipes in {tmp_path / 'empty'}" in outcome.err
    # A file the daemon would refuse is not offered: named on stderr, with why.
    (site / "recipes" / "broken.toml").write_text("not = [toml")
    outcome = _cli("recipes")
    assert outcome.code == 0
    assert outcome.out.split() == ["ours"]
    assert "broken: not offered:" in outcome.err
    assert "not valid TOML" in outcome.err
    # So is a file whose name no recipe can have (it was left out without a word).
    (site / "recipes" / "My Leach.toml").write_text(_SMOKE_TEXT)
    outcome = _cli("recipes")
    assert outcome.out.split() == ["ours"]
    assert (
        "My Leach.toml: not offered: a recipe's file name is its name, 1-40 of a-z, 0-9, '_' "
        "and '-' (e.g. my_leach.toml)"
    ) in outcome.err


_SMOKE_TEXT = (DEFAULT_CONFIG.parent.parent.parent / "recipes" / "smoke.toml").read_text("utf-8")


def test_the_units_files_unreadable_to_this_user_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # /etc/unit-controller is root:unit-controller 0750: another user's shell may not look in.
    def denied(*, installed: bool = False) -> Path:
        raise PermissionError(13, "Permission denied", "/etc/unit-controller/recipes")

    monkeypatch.setattr(cli_site, "site_recipes", denied)
    for argv in (["recipes"], ["check-recipe", "smoke"]):
        _assert_bad_input(_cli(*argv), "/etc/unit-controller/recipes: permission denied")


def test_check_recipe_says_ok_or_every_problem_on_the_unit(tmp_path: Path) -> None:
    outcome = _cli("check-recipe", "smoke")
    assert (outcome.code, outcome.out.split(":")[0]) == (0, "ok")
    # Checked as the daemon takes it from its recipes directory: named as its file.
    renamed = _write(tmp_path, "mine.toml", _SMOKE_TEXT)
    outcome = _cli("check-recipe", str(renamed))
    assert outcome.code == 2
    assert "name: 'smoke' differs from the file name 'mine.toml'" in outcome.out
    bad = _write(tmp_path, "smoke.toml", _SMOKE_TEXT.replace('pump = "P-204"', 'pump = "P-299"'))
    outcome = _cli("check-recipe", str(bad), "--config", str(DEFAULT_CONFIG))
    assert outcome.code == 2
    assert "phases[1].doses[0].pump: pump 'P-299' is not on this unit" in outcome.out
    _assert_bad_input(
        _cli("check-recipe", "smoke", "--config", str(tmp_path / "none.toml")), "no such file"
    )


def test_a_recipe_nested_deeply_huge_or_of_too_many_phases_is_refused(tmp_path: Path) -> None:
    deep = _write(tmp_path, "deep.toml", 'name = "deep"\nx = ' + "[" * 5000 + "]" * 5000)
    huge = _write(tmp_path, "huge.toml", _SMOKE_TEXT + "#" * (1024 * 1024))
    phase = '[[phases]]\nname = "p{}"\ntimeout_min = 1.0\nuntil = {{ duration_min = 0.01 }}\n'
    many = _write(tmp_path, "many.toml", 'name = "many"\n' + "".join(map(phase.format, range(101))))
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # no end to read to
    for path, says in (
        (deep, "nested too deeply"),
        (huge, "too large"),
        (many, "phases: 101 phases; at most 100"),
        (tmp_path, "is a directory"),
        (fifo, "not a regular file"),
        (Path("/dev/null"), "/dev/null is not a regular file"),  # a path, not a recipe's name
    ):
        _assert_bad_input(_cli("sim", "--recipe", str(path), "--state-dir", str(tmp_path)), says)


# --- honest figures, plant parameters, the envelope and the campaign -------------------------


def test_json_summary_puts_true_figures_beside_the_measured_ones(smoke: Outcome) -> None:
    summary = smoke.summary
    ph = summary["ph"]
    assert set(ph["true_in_band_fraction"]) == set(ph["in_band_fraction"]) == {"ph"}
    assert summary["temperature"]["true_overshoot_c"] >= 0.0
    assert set(summary["iae"]) == {"ph_true", "ph_control", "ph_probe_floor", "temperature_true"}
    plant = summary["plant"]
    # every plant parameter the run used, flat, under its config name
    assert plant["ph_noise"] == 0.015
    assert plant["mixing_dead_time_s"] == 10.0
    assert plant["black_mass.ni_pct"] == 17.5
    assert all(isinstance(value, float) for value in plant.values())


def test_plant_parameters_can_be_set_for_one_run(tmp_path: Path) -> None:
    recipe = str(_write(tmp_path, "quick_ph.toml", QUICK_PH))
    quick = ["sim", "--recipe", recipe, "--fast", "--json"]
    outcome = _cli(*quick, "--plant", "ph_noise=0.03", "--plant", "black_mass.cu_pct=2")
    assert outcome.code == 0, outcome.err
    assert outcome.summary["plant"]["ph_noise"] == 0.03
    assert outcome.summary["plant"]["black_mass.cu_pct"] == 2.0


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("nope=1", "sim.plant.nope: not a plant parameter (known: "),
        ("ph_noise=abc", "'abc' is not a number"),
        ("ph_noise", "is not NAME=VALUE"),
        ("ph_noise=nan", "must be a finite number"),
        ("ph_noise=0.9", "sim.plant.ph_noise: Input should be less than or equal to 0.5"),
        ("black_mass.ni_pct=55", "add up to"),
    ],
)
def test_a_bad_plant_parameter_exits_2_saying_why(value: str, says: str) -> None:
    outcome = _cli("sim", "--recipe", "smoke", "--plant", value)
    _assert_bad_input(outcome, says)
    assert "simulating recipe" not in outcome.out


def test_envelope_runs_each_plant_under_both_controllers_and_summarises(tmp_path: Path) -> None:
    recipe = str(_write(tmp_path, "quick_ph.toml", QUICK_PH))
    outcome = _cli(
        "envelope", "--recipe", recipe, "--runs", "2", "--seed", "3", "--jobs", "1", "--json"
    )
    assert outcome.code == 0, outcome.err
    report = outcome.summary
    assert report["recipe"] == recipe
    assert len(report["runs"]) == 2
    for run in report["runs"]:
        assert run["final_state"] == "COMPLETE"
        for name, (low, high) in report["ranges"].items():
            assert low <= run["plant"][name] <= high
        assert set(run["iae"]) == {"ph_true", "ph_control", "ph_probe_floor", "temperature_true"}
        assert run["baseline"]["final_state"] in ("COMPLETE", "HELD")
        assert set(run["ph"]) >= {"true_in_band_fraction", "in_band_fraction"}
    summary = report["summary"]
    assert summary["runs"] == summary["complete"] == 2
    assert 0.0 <= summary["worst_true_in_band"] <= summary["median_true_in_band"] <= 1.0
    for key in ("worst_iae_ratio_ph", "worst_iae_ratio_ph_control", "worst_iae_ratio_temperature"):
        assert key in summary
    assert "plant 2 on/off baseline" in outcome.out  # progress, a line per batch


def test_envelope_claims_no_ph_figure_for_a_recipe_that_holds_no_ph(tmp_path: Path) -> None:
    # It printed "true pH in band: median 0.0%" for runs that all completed.
    text = 'name = "fill_only"\nstarts_with = "empty"\n' + FILL_TO_LSL
    recipe = str(_write(tmp_path, "fill_only.toml", text))
    outcome = _cli("envelope", "--recipe", recipe, "--runs", "1", "--jobs", "1", "--json")
    assert outcome.code == 0, outcome.err
    summary = outcome.summary["summary"]
    assert summary["median_true_in_band"] is None
    assert summary["worst_true_in_band"] is None
    assert "true pH in band: n/a (no phase holds a pH)" in outcome.out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--runs", "0"], "runs must be 1..10000"),
        (["--jobs", "0"], "jobs must be 1..1024"),
        (["--runs", "x"], "runs 'x' is not a whole number"),
        (["--plant", "nope=1"], "sim.plant.nope: not a plant parameter (known: "),
        (["--recipe", "nosuch"], "no recipe named 'nosuch'"),
        (["--config", "/nonexistent/unit.toml"], "/nonexistent/unit.toml: no such file"),
        (["--corners"], "not allowed with argument --runs"),
    ],
)
def test_bad_envelope_input_exits_2_saying_why(argv: list[str], says: str) -> None:
    outcome = _cli("envelope", "--runs", "1", *argv)
    _assert_bad_input(outcome, says)
    assert "envelope: recipe" not in outcome.out  # no progress header before the error


def test_envelope_corners_runs_every_corner_of_what_is_left_ranged(tmp_path: Path) -> None:
    held = ["ph_tau_s=20", "mixing_dead_time_s=10", "ph_noise=0.02", "ph_offset=0", "feed_scale=1"]
    plants = [arg for value in held for arg in ("--plant", value)]
    recipe = str(_write(tmp_path, "quick_ph.toml", QUICK_PH))
    outcome = _cli("envelope", "--recipe", recipe, "--corners", "--jobs", "1", "--json", *plants)
    assert outcome.code == 0, outcome.err
    report = outcome.summary
    assert report["sampling"] == "corners"
    assert report["ranges"] == {"hydroxide_per_metal": [1.9, 2.05]}
    assert [run["plant"] for run in report["runs"]] == [
        {"hydroxide_per_metal": 1.9},
        {"hydroxide_per_metal": 2.05},
    ]
    assert "every corner" in outcome.out


def test_an_envelope_with_too_many_corners_is_refused_before_any_batch(tmp_path: Path) -> None:
    ranges = (
        "ph_spikes_per_h = [0.0, 12.0]\nph_spike_size = [0.05, 0.3]\nph_drift_per_h = [0.0, 0.01]\n"
        "pump_error = [0.0, 0.05]\nprecipitation_tau_s = [10.0, 60.0]\n"
    )
    config = _write(tmp_path, "unit.toml", EXAMPLE + "\n[sim.envelope]\n" + ranges)
    outcome = _cli("envelope", "--corners", "--config", str(config))
    _assert_bad_input(outcome, "11 ranged parameters make 2048 corners")
    assert "plant 1" not in outcome.out
    assert "envelope: recipe" not in outcome.out


def test_an_envelope_range_out_of_bounds_is_a_config_error(tmp_path: Path) -> None:
    config = _write(tmp_path, "unit.toml", EXAMPLE + "\n[sim.envelope]\nph_noise = [0.0, 0.9]\n")
    outcome = _cli("check-config", str(config))
    assert outcome.code == 2
    assert "sim.envelope" in outcome.out
    assert "ph_noise" in outcome.out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--campaign", "purify,coprecipitation"], "which no earlier recipe makes"),
        (["--campaign", "leach,smoke"], "cannot take the liquor 'leach' makes"),
        (["--campaign", "leach,,purify"], "is not a comma-separated list"),
        (["--campaign", "leach,nosuch"], "no recipe named 'nosuch'"),
        (["--campaign", "leach", "--fault", "estop@1"], "drop --fault"),
        (["--campaign", "leach", "--backend", "serial"], "drop --backend serial"),
        (["--campaign", "leach", "--recipe", "smoke"], "not allowed with argument"),
    ],
)
def test_bad_campaign_input_exits_2_saying_why(argv: list[str], says: str) -> None:
    outcome = _cli("sim", *argv)
    _assert_bad_input(outcome, says)
    assert "simulating the campaign" not in outcome.out


def test_a_campaign_that_charges_no_black_mass_says_there_is_no_balance() -> None:
    # Found by a recipe author: a one-recipe smoke campaign ended "closure None %, recovery {} %".
    outcome = _cli("sim", "--campaign", "smoke")
    assert outcome.code == 0, outcome.err
    assert "mass balance: none (no metal went in" in outcome.out
    assert "None %" not in outcome.out


def test_status_lines_are_paced_as_the_readme_says(smoke: Outcome) -> None:
    # As fast as possible: every 5 simulated minutes; at --speed X: every 2·X simulated seconds
    # (2 real seconds).
    stamps = []
    for line in smoke.out.splitlines():
        if "alarms:" in line and line.startswith("["):
            h, m, s = line[1 : line.index("]")].split(":")
            stamps.append(int(h) * 3600 + int(m) * 60 + float(s))
    stamps = sorted(set(stamps))  # the wait for IDLE and the batch each start with one
    assert len(stamps) >= 5
    assert {round(b - a) for a, b in itertools.pairwise(stamps)} == {300}
    config = load_config(DEFAULT_CONFIG)
    paced = SimulationRun(
        config=config, options=SimOptions(recipe="smoke", seed=1, speed=60.0), out=io.StringIO()
    )
    assert paced._default_progress_s() == 120.0


def test_run_help_offers_only_its_own_options() -> None:
    outcome = _cli("run", "--help")
    assert outcome.code == 0
    assert "--fast" not in outcome.out
    assert "--speed" in outcome.out


def test_run_with_a_runtime_dir_too_long_for_a_socket_names_it_and_makes_nothing(
    tmp_path: Path,
) -> None:
    runtime = tmp_path / ("r" * 120)
    outcome = _cli("run", "--state-dir", str(tmp_path / "state"), "--runtime-dir", str(runtime))
    _assert_bad_input(outcome, f"the control socket {runtime / 'control.sock'} would be")
    assert "at most 107: choose a shorter --runtime-dir" in outcome.err
    assert not (tmp_path / "state").exists()
    assert not runtime.exists()


def test_run_with_a_bad_config_names_each_problem_and_leaves_the_collector_on(
    tmp_path: Path,
) -> None:
    # The daemon's start-up pauses garbage collection while it imports; a start that stops
    # early must not leave it off for whoever called main().
    bad = _write(tmp_path, "unit.toml", EXAMPLE.replace("scan_period_s = 0.1", "scan_period_s = 5"))
    outcome = _cli(
        "run", "--config", str(bad), "--state-dir", str(tmp_path / "state"),
        "--runtime-dir", str(tmp_path / "run"),
    )  # fmt: skip
    _assert_bad_input(outcome, "unit.scan_period_s")
    assert gc.isenabled()


def test_keygen_refuses_an_operator_name_the_config_would_refuse(tmp_path: Path) -> None:
    key = tmp_path / "ops.key"
    outcome = _cli("keygen", str(key), "--name", "a b/c")
    assert outcome.code == 2, outcome
    assert "operator name 'a b/c': 1 to 64 of letters, digits and _ . @ -" in outcome.err
    assert not key.exists()
    signed = _cli("sign", "hold", "--unit", "u1", "--key", str(key), "--by", "x" * 65)
    assert signed.code == 2, signed
    assert "operator name" in signed.err


def test_sign_and_send_refuse_a_unit_id_or_root_that_is_no_topic_level(tmp_path: Path) -> None:
    key = tmp_path / "ops.key"
    for args in (
        ("sign", "hold", "--unit", "a/b"),
        ("send", "hold", "--unit", "+", "--url", "mqtt://127.0.0.1:9"),
        ("send", "hold", "--unit", "u1", "--root", "fleet/#", "--url", "mqtt://127.0.0.1:9"),
    ):
        outcome = _cli(*args, "--key", str(key), "--by", "ops")
        _assert_bad_input(outcome, "must be")


def test_send_refuses_a_wait_it_could_not_keep_rather_than_blame_the_broker(
    tmp_path: Path,
) -> None:
    key = tmp_path / "ops.key"
    assert _cli("keygen", str(key), "--name", "ops").code == 0
    for wait in ("0", "-1", "nan", "inf"):
        outcome = _cli(
            "send", "hold", "--unit", "u1", "--url", "mqtt://127.0.0.1:9", "--key", str(key),
            "--by", "ops", "--timeout-s", wait,
        )  # fmt: skip
        _assert_bad_input(outcome, "--timeout-s must be more than 0 and at most 3600")


def test_journal_report_and_commission_on_the_unit_find_its_installed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A root shell on the unit has neither $CONFIGURATION_DIRECTORY nor $STATE_DIRECTORY: the
    # tools look where the installer and the service put them, as `recipes` does.
    etc, var = tmp_path / "etc", tmp_path / "var"
    etc.mkdir()
    (etc / "unit.toml").write_text(EXAMPLE.replace('id = "sim-unit-01"', 'id = "north-3"'))
    monkeypatch.setattr(cli_site, "INSTALLED_CONFIG_DIR", etc)
    monkeypatch.setattr(cli_site, "INSTALLED_STATE_DIR", var)
    for name in ("CONFIGURATION_DIRECTORY", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    for argv in (["journal", "list"], ["report", "last", "--out", str(tmp_path / "r.html")]):
        _assert_bad_input(_cli(*argv), f"no journal at {var / 'journal.sqlite3'}")
    # The installed config's own state_dir is not where the service keeps its state
    # (StateDirectory= wins): nor do the tools look there, and check-config says so.
    mine = tmp_path / "mine"
    (etc / "unit.toml").write_text(EXAMPLE.replace("[unit]\n", f'[unit]\nstate_dir = "{mine}"\n'))
    _assert_bad_input(_cli("journal", "list"), f"no journal at {var / 'journal.sqlite3'}")
    checked = _cli("check-config", str(etc / "unit.toml"))
    assert checked.code == 0
    assert checked.out == "ok\n"
    assert f"[unit] state_dir = '{mine}' is not used on an installed unit" in checked.err
    assert f"keeps its journal and outbox in {var} (StateDirectory=)" in checked.err
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "svc"))
    elsewhere = tmp_path / "unit.toml"
    elsewhere.write_text((etc / "unit.toml").read_text())
    assert f"in {tmp_path / 'svc'} (StateDirectory=)" in _cli("check-config", str(elsewhere)).err
    monkeypatch.delenv("STATE_DIRECTORY")
    assert _cli("check-config", str(elsewhere)).err == ""  # not installed, not under systemd
    flag = tmp_path / "flag"
    outcome = _cli("journal", "list", "--state-dir", str(flag))
    _assert_bad_input(outcome, f"no journal at {flag / 'journal.sqlite3'}")
    # commission takes the installed config too (this one is the simulator's: refused, named).
    _assert_bad_input(_cli("commission"), f"{etc / 'unit.toml'} runs the mock backend")
    monkeypatch.setattr(cli_site, "INSTALLED_CONFIG_DIR", tmp_path / "none")
    _assert_bad_input(_cli("commission"), "no config: name the unit's with --config")


def test_the_ph_calibrations_age_is_read_from_the_journal_in_the_state_dir_given(
    tmp_path: Path,
) -> None:
    from unit_controller.commissioning.survey import last_ph_calibration_days
    from unit_controller.journal.store import JOURNAL_FILE

    assert last_ph_calibration_days(tmp_path) is None  # no journal
    with contextlib.closing(sqlite3.connect(tmp_path / JOURNAL_FILE)) as conn:
        conn.execute("CREATE TABLE calibrations (ts_ms INTEGER, kind TEXT, action TEXT)")
        two_days_ago = int(time.time() * 1000) - 2 * 86_400_000
        conn.execute("INSERT INTO calibrations VALUES (?, 'ph', 'mid')", (two_days_ago,))
        conn.commit()
    age = last_ph_calibration_days(tmp_path)
    assert age is not None
    assert 1.99 < age < 2.01


def test_check_config_notes_a_client_certificate_issued_to_another_unit(tmp_path: Path) -> None:
    # Found by an installer: the site broker takes a certificate's CN as the client id, so a
    # unit given unit-01's certificate threw unit-01 off the broker at each connect.
    from tests.mqtt.broker import Mosquitto

    broker = Mosquitto(workdir=tmp_path / "broker", tls=True)
    for cn, noted in (("unit-01", True), ("sim-unit-01", False)):
        tls = broker.client_tls(cn)
        text = EXAMPLE.replace(
            "[mqtt]\n",
            f'[mqtt]\nurl = "mqtts://broker"\nca_file = "{tls.ca_file}"\n'
            f'cert_file = "{tls.cert_file}"\nkey_file = "{tls.key_file}"\n',
            1,
        )
        outcome = _cli("check-config", str(_write(tmp_path, f"{cn}.toml", text)))
        assert (outcome.code, outcome.out) == (0, "ok\n")
        assert ("is issued to 'unit-01', not to this unit ('sim-unit-01')" in outcome.err) is noted


def test_check_config_notes_a_tls_link_with_no_client_certificate(tmp_path: Path) -> None:
    # Found by a fleet tester: the shipped broker refuses it, and the daemon said only
    # "Operation timed out" at every retry while check-config said ok.
    text = EXAMPLE.replace("[mqtt]\n", '[mqtt]\nurl = "mqtts://broker"\n', 1)
    outcome = _cli("check-config", str(_write(tmp_path, "nocert.toml", text)))
    assert (outcome.code, outcome.out) == (0, "ok\n")
    assert "TLS (mqtts) but no cert_file/key_file is set" in outcome.err
    plain = EXAMPLE.replace("[mqtt]\n", '[mqtt]\nurl = "mqtt://broker"\n', 1)
    outcome = _cli("check-config", str(_write(tmp_path, "plain.toml", plain)))
    assert "cert_file" not in outcome.err


def test_check_config_notes_ports_the_simulator_leaves_and_console_users_unknown_here(
    tmp_path: Path,
) -> None:
    # Found by an installer: a real unit's config left at backend = "mock" passed, and would
    # have run the simulator; a typo in [console] users passed, locking the tech out.
    text = EXAMPLE.replace("[devices.TT-101]\n", '[devices.TT-101]\nport = "/dev/unit/TT-101"\n')
    text = text.replace("[console]\n", '[console]\nusers = ["root", "fieldtehc"]\n', 1)
    outcome = _cli("check-config", str(_write(tmp_path, "unit.toml", text)))
    assert (outcome.code, outcome.out) == (0, "ok\n")
    assert 'backend = "mock" runs the simulated plant: the ports set for TT-101 are not' in (
        outcome.err
    )
    assert "[console] users: no such user on this machine: 'fieldtehc'" in outcome.err


def test_run_by_hand_on_the_units_installed_config_takes_the_services_state_and_recipes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by an installer: with the service stopped, `run --config /etc/unit-controller/
    # unit.toml` kept a journal of its own under $XDG_STATE_HOME, so it came up Stopped over
    # a latched trip, an interrupted batch and a charged reactor, offering the shipped recipes.
    from unit_controller.cli.arguments import build_parser
    from unit_controller.cli.main import _daemon_options

    etc, var = tmp_path / "etc", tmp_path / "var"
    (etc / "recipes").mkdir(parents=True)
    (etc / "unit.toml").write_text(EXAMPLE)
    monkeypatch.setattr(cli_site, "INSTALLED_CONFIG_DIR", etc)
    monkeypatch.setattr(cli_site, "INSTALLED_STATE_DIR", var)
    for name in ("CONFIGURATION_DIRECTORY", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    argv = ["run", "--config", str(etc / "unit.toml"), "--runtime-dir", str(tmp_path)]
    options = _daemon_options(build_parser().parse_args(argv))
    assert not isinstance(options, int)
    assert (options[1].dirs.state, options[1].recipes_dir) == (var, etc / "recipes")
    # A flag still wins.
    flagged = _daemon_options(build_parser().parse_args([*argv, "--state-dir", str(tmp_path)]))
    assert not isinstance(flagged, int)
    assert flagged[1].dirs.state == tmp_path
    # Root on a state directory the service's user owns would leave files it cannot open.
    var.mkdir()
    if os.geteuid() != 0:
        return  # only root may give it away
    os.chown(var, 65534, 65534)
    assert _daemon_options(build_parser().parse_args(argv)) == 2
    assert f"this run would leave files in {var}" in capsys.readouterr().err


def test_run_says_speed_is_for_the_simulator_when_the_config_is_a_real_units(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from unit_controller.cli.arguments import build_parser
    from unit_controller.cli.main import _daemon_options

    text = EXAMPLE.replace(
        'backend = "mock"', 'backend = "serial"\n[hal.serial]\nrelay_board_port = "/dev/relay"'
    )
    for tag in ("TT-101", "AT-101", "P-201", "P-202", "P-203", "P-204", "P-205"):
        text = text.replace(f"[devices.{tag}]\n", f'[devices.{tag}]\nport = "/dev/{tag}"\n')
    config = _write(tmp_path, "unit.toml", text)
    args = build_parser().parse_args(
        ["run", "--config", str(config), "--speed", "10", "--runtime-dir", str(tmp_path)]
    )
    assert not isinstance(_daemon_options(args), int)
    assert "--speed 10 is for the simulator (mock backend); the serial backend runs in real " \
        "time" in capsys.readouterr().err  # fmt: skip


def test_run_on_a_disk_that_takes_not_even_its_lock_exits_1_for_a_restart_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full or failing card is not a bad input: exit 2 would stop systemd from ever retrying
    # (RestartPreventExitStatus=2), even once space is freed. (A journal or outbox the disk
    # refuses does not stop the start: tests/daemon/test_full_disk_start.py.)
    lock = tmp_path / "state" / "lock"

    @contextlib.contextmanager
    def full(state_dir: Path) -> Iterator[None]:
        raise OSError(errno.ENOSPC, "No space left on device", str(lock))
        yield

    monkeypatch.setattr("unit_controller.daemon.daemon.hold_state_dir", full)
    outcome = _cli(
        "run", "--state-dir", str(tmp_path / "state"), "--runtime-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert outcome.code == 1, outcome
    assert str(lock) in outcome.err
    assert "disk is full or failing" in outcome.err
    assert "Traceback" not in outcome.err


def test_run_on_a_read_only_state_directory_says_so_not_that_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "state" / "lock"

    @contextlib.contextmanager
    def read_only(state_dir: Path) -> Iterator[None]:
        raise OSError(errno.EROFS, "Read-only file system", str(lock))
        yield

    monkeypatch.setattr("unit_controller.daemon.daemon.hold_state_dir", read_only)
    outcome = _cli(
        "run", "--state-dir", str(tmp_path / "state"), "--runtime-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert outcome.code == 1, outcome
    assert "file system is read-only" in outcome.err
    assert "full" not in outcome.err


def test_a_lock_file_another_user_left_is_named_with_the_fix(tmp_path: Path) -> None:
    # Found by an installer: "cannot use the state directory: Permission denied" named neither
    # the file nor why (a run as root had left the lock).
    from unit_controller.state_lock import _owned_by_another

    lock = tmp_path / "lock"
    lock.write_text("")
    assert _owned_by_another(lock, tmp_path) == ""
    if os.geteuid() != 0:
        return  # only root may give it away
    os.chown(lock, 65534, 65534)
    said = _owned_by_another(lock, tmp_path)
    assert "it belongs to uid 65534, the folder to uid 0" in said
    assert f"chown -R 0 {tmp_path}" in said


@pytest.mark.parametrize(
    ("exc", "mendable"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EROFS, "Read-only file system"), True),
        (OSError(errno.EIO, "Input/output error"), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (ValueError("bad config"), False),
        (sqlite3.OperationalError("disk I/O error"), True),
        (sqlite3.DatabaseError("file is not a database"), False),
    ],
)
def test_only_a_full_or_failing_disk_counts_as_mendable_by_a_restart(
    exc: BaseException, mendable: bool
) -> None:
    from unit_controller.sqlite_worker import storage_may_recover

    assert storage_may_recover(exc) is mendable
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = exc
    assert storage_may_recover(wrapped) is mendable


def test_the_log_level_is_taken_before_or_after_the_command() -> None:
    from unit_controller.cli.arguments import build_parser

    parser = build_parser()
    assert parser.parse_args(["run", "--log-level", "info"]).log_level == "info"
    assert parser.parse_args(["--log-level", "error", "run"]).log_level == "error"
    assert parser.parse_args(["check-config", "x.toml"]).log_level == "warning"


def test_console_takes_a_script_as_unit_console_does(tmp_path: Path) -> None:
    # `unit-controller console -c status` was "unrecognized arguments" though its help says
    # "same as unit-console".
    outcome = _cli("console", "--socket", str(tmp_path / "none.sock"), "-c", "status")
    assert "unrecognized arguments" not in outcome.err
    assert "none.sock" in outcome.err + outcome.out
    assert outcome.code == 1  # unreachable, as unit-console says it
