"""Whole batches of every shipped recipe on the simulator, as an operator would judge them."""

from __future__ import annotations

import pytest

from hal.outputs import Outputs
from tests.scenarios.harness import run_batch, run_batch_and_faults
from tests.scenarios.schedule import RECIPES, completed, on_recipes_worker
from unit_controller.machine import State


@pytest.mark.parametrize("recipe", [pytest.param(r, marks=on_recipes_worker(r)) for r in RECIPES])
def test_shipped_recipe_completes_without_alarms_or_hazards(recipe: str) -> None:
    trace = completed(recipe)
    summary = trace.result.summary
    assert summary["final_state"] == "COMPLETE", trace.output[-2000:]
    assert trace.result.exit_code == 0
    assert summary["alarms"] == []
    assert summary["hazards"]["heater_on_dry_s"] == 0
    assert summary["hazards"]["overflow_l"] == 0
    assert summary["hazards"]["max_true_temperature_c"] < 90
    assert [p["name"] for p in summary["phases"]] == [
        p["name"] for p in summary["phases"] if p["end_s"] is not None
    ]
    assert trace.violations == []
    assert trace.last is not None
    assert trace.last.state is State.COMPLETE
    assert trace.last.outputs == Outputs.safe()
    if recipe == "leach":
        # The simulator answers the operator's prompt and says so.
        assert "waiting for confirmation: Black mass charged" in trace.output
        assert "auto-confirmed by the simulator: Black mass charged" in trace.output


@on_recipes_worker("coprecipitation")
def test_coprecipitation_holds_true_ph_within_005_for_95_percent_of_the_phase() -> None:
    summary = completed("coprecipitation").result.summary
    # judged on the plant's true pH, with the measured figure beside it
    assert summary["ph"]["true_in_band_fraction"]["co_precipitate"] >= 0.95
    assert summary["ph"]["in_band_fraction"]["co_precipitate"] >= 0.95
    assert summary["temperature"]["true_overshoot_c"] < 1.0
    # Steady NaOH demand is ≈2 mol OH- per mol of metal fed (DESIGN §1): 1.2 L of 2 M feed
    # takes ≈1.2 L of 4 M NaOH (the pumps' own errors and the feed's acid on top), plus what
    # the pH adjustment took.
    assert summary["reagents_ml"]["P-205"] == pytest.approx(1200, rel=0.01)
    assert 1100 <= summary["reagents_ml"]["P-203"] <= 1600


@on_recipes_worker("leach")
def test_leach_stays_within_two_degrees_of_its_setpoint() -> None:
    summary = completed("leach").result.summary
    assert summary["temperature"]["true_overshoot_c"] <= 2.0
    assert summary["hazards"]["max_true_temperature_c"] < 77.0


@on_recipes_worker("smoke")
def test_same_seed_gives_the_same_batch() -> None:
    # Against the shared run: a second run of the same seed, in the same process after others.
    first = dict(completed("smoke").result.summary)
    second = dict(run_batch("smoke", seed=1).result.summary)
    first.pop("wall_seconds")
    second.pop("wall_seconds")
    assert first == second


def test_another_seed_still_completes_the_smoke_batch() -> None:
    assert run_batch("smoke", seed=11).result.summary["final_state"] == "COMPLETE"


def test_a_forked_faulted_batch_is_the_batch_a_direct_run_gives() -> None:
    # The fault tests take their batches forked from the fault-free run (harness): each must be
    # the very batch `sim --fault` runs, scan for scan.
    faults = ("ph_probe_dead@16", "relay_refused@8")
    _, forked = run_batch_and_faults("smoke", faults)
    for fault in faults:
        direct = run_batch("smoke", faults=(fault,))
        fork = forked[fault]
        assert fork.result.final_state is direct.result.final_state
        assert {**fork.result.summary, "wall_seconds": 0} == {
            **direct.result.summary,
            "wall_seconds": 0,
        }
        assert (fork.scans, fork.first_raised_scan, fork.violations, fork.output) == (
            direct.scans,
            direct.first_raised_scan,
            direct.violations,
            direct.output,
        )
