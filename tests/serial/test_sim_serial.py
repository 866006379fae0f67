"""Whole batches through the real serial drivers against the emulators, compared with the mock.

Real time sped up 30 times: these tests take tens of seconds each, so there are few of them.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hal.sim.faults import parse_fault
from tests.recipe_parts import FILL_TO_LSL
from tests.scenarios.harness import forced_violations
from unit_controller.config import load_config
from unit_controller.controller import Snapshot
from unit_controller.recipes.loader import RECIPES_DIR
from unit_controller.sim.runner import SimOptions, SimResult, SimulationRun

# A short batch that still fills, heats, doses and drains: about 8 simulated minutes.
SHORT = (
    """
name = "short"
"""
    + FILL_TO_LSL
    + """
[[phases]]
name = "heat"
timeout_min = 30.0
temperature_c = 23.0
agitator = true
doses = [{ pump = "P-204", ml = 50.0, over_min = 1.0 }]
until = { temperature_reached = true, doses_done = true }
[[phases]]
name = "drain"
timeout_min = 10.0
drain = true
until = { level_below = "low_low" }
"""
)


async def _run(
    recipe: str,
    *,
    faults: tuple[str, ...] = (),
    recipes_dir: Path | None = None,
    backend: str = "serial",
) -> tuple[SimResult, list[str]]:
    options = SimOptions(
        recipe=recipe,
        seed=1,
        faults=tuple(parse_fault(f) for f in faults),
        backend="serial" if backend == "serial" else "mock",
        recipes_dir=recipes_dir or RECIPES_DIR,
    )
    run = SimulationRun(config=load_config(), options=options, out=io.StringIO())
    violations: list[str] = []

    def check(snapshot: Snapshot) -> None:
        trips = run.controller.alarms.in_effect()
        violations.extend(
            f"t={snapshot.at:.1f}: {p}" for p in forced_violations(snapshot.outputs, trips)
        )

    run.watch(check)
    return await run.run(), violations


@pytest.fixture
def short_recipe(tmp_path: Path) -> Path:
    (tmp_path / "short.toml").write_text(SHORT)
    return tmp_path


async def test_serial_smoke_batch_completes_like_the_mock_backend() -> None:
    serial, violations = await _run("smoke")
    mock, _ = await _run("smoke", backend="mock")
    s, m = serial.summary, mock.summary
    assert s["final_state"] == "COMPLETE", s
    assert violations == []
    assert [p["name"] for p in s["phases"]] == [p["name"] for p in m["phases"]]
    for sp, mp in zip(s["phases"], m["phases"], strict=True):
        # Serial readings arrive on their own schedule: phases take about as long as on the
        # mock. The pH approach decides on the readings it has, so one more dose-and-wait
        # cycle (a couple of minutes) is within what the two backends may differ by.
        slack = 240.0 if sp["name"] == "ph" else 30.0
        assert sp["end_s"] - sp["start_s"] == pytest.approx(mp["end_s"] - mp["start_s"], abs=slack)
    assert s["alarms"] == m["alarms"] == []
    for tag, ml in m["reagents_ml"].items():
        assert s["reagents_ml"][tag] == pytest.approx(ml, rel=0.25)
    assert s["hazards"]["heater_on_dry_s"] == 0
    assert s["hazards"]["overflow_l"] == 0


@pytest.mark.parametrize(
    ("fault", "alarms"),
    [
        ("device_silent:TT-101@4", {"reading_bad", "device_lost"}),
        ("device_unplugged:P-204@4", {"device_lost"}),
    ],
)
async def test_a_lost_device_holds_the_batch_which_finishes_once_it_is_back(
    short_recipe: Path, fault: str, alarms: set[str]
) -> None:
    result, violations = await _run("short", faults=(fault,), recipes_dir=short_recipe)
    summary = result.summary
    assert alarms <= {a["id"] for a in summary["alarms"]}, summary["alarms"]
    assert summary["final_state"] == "COMPLETE"
    assert violations == []
    assert summary["hazards"]["heater_on_dry_s"] == 0


async def test_garbage_on_the_ph_line_holds_with_a_bad_reading_then_finishes(
    short_recipe: Path,
) -> None:
    # As for a silent device: the simulated operator resumes once the replies are sound again.
    result, violations = await _run(
        "short", faults=("serial_garbage:AT-101@4",), recipes_dir=short_recipe
    )
    summary = result.summary
    assert "reading_bad" in {a["id"] for a in summary["alarms"]}
    assert summary["final_state"] == "COMPLETE"
    assert violations == []


async def test_relay_board_unplugged_aborts_with_everything_off(short_recipe: Path) -> None:
    # Without the board the E-stop input is unknown: that is an abort, not a hold.
    result, violations = await _run(
        "short", faults=("device_unplugged:K-101@4",), recipes_dir=short_recipe
    )
    summary = result.summary
    assert summary["final_state"] == "ABORTED"
    assert ("reading_bad", "HS-100") in {(a["id"], a["tag"]) for a in summary["alarms"]}
    assert violations == []
    assert summary["hazards"]["heater_on_dry_s"] == 0


async def test_an_aborted_serial_run_ends_with_the_devices_holding_the_safe_outputs(
    short_recipe: Path,
) -> None:
    # Found by a controls engineer: the run stopped on the abort's scan and took the drivers
    # down before the pump's X went out; its summary showed P-204 still dosing.
    result, _ = await _run("short", faults=("estop@3.8",), recipes_dir=short_recipe)
    summary = result.summary
    assert summary["final_state"] == "ABORTED"
    held = summary["outputs"]
    assert held["pumps"] == dict.fromkeys(held["pumps"], 0.0), held
    assert (held["heater"], held["contactor"], held["agitator"]) == (0.0, False, False)
