"""The whole process on one reactor: leach, purify, co-precipitation, the streams carried over,
and the metals balanced. One campaign, shared by the tests that judge it (runs are seeded)."""

from __future__ import annotations

import asyncio
import io
from functools import cache
from typing import Any

import pytest

from unit_controller.config import load_config
from unit_controller.sim.campaign import CampaignRun

RECIPES = ["leach", "purify", "coprecipitation"]
# One worker runs every test here, so the campaign (≈75 s) is simulated once, not once per worker.
pytestmark = pytest.mark.xdist_group("campaign")


@cache
def campaign() -> dict[str, Any]:
    run = CampaignRun(config=load_config(), recipes=RECIPES, seed=1, out=io.StringIO())
    return asyncio.run(run.run())


def test_every_recipe_of_the_campaign_completes_without_alarms() -> None:
    recipes = campaign()["recipes"]
    assert [r["recipe"] for r in recipes] == RECIPES
    for recipe in recipes:
        assert recipe["final_state"] == "COMPLETE", recipe
        assert recipe["alarms"] == []
    hazards = campaign()["hazards"]  # true, over the whole campaign on one reactor
    assert (hazards["heater_on_dry_s"], hazards["overflow_l"]) == (0.0, 0.0)
    assert hazards["max_true_temperature_c"] < 90.0


def test_each_recipe_takes_what_the_one_before_made() -> None:
    leach, purify, copre = campaign()["recipes"]
    assert leach["started_with"] == "as the recipe says"
    assert purify["started_with"].startswith(f"{leach['filtrate_l']:.1f} L of liquor")
    assert copre["started_with"].startswith(f"{purify['filtrate_l']:.1f} L of liquor")
    assert "fed through P-205" in copre["started_with"]
    # ≈5 L of NaOH neutralise the leach liquor, not 30
    assert 3000 < purify["reagents_ml"]["P-203"] < 7000


def test_the_metals_balance_within_one_percent() -> None:
    balance = campaign()["mass_balance"]
    assert balance["closure_pct"] == pytest.approx(100.0, abs=1.0)
    for metal, closure in balance["closure_pct_by_metal"].items():
        assert closure == pytest.approx(100.0, abs=1.0), metal
    for metal in ("ni", "co", "mn"):
        assert balance["metals_in_mol"][metal] > 0
        assert 90.0 < balance["recovery_pct"][metal] < 100.0


def test_the_product_is_clean_of_iron_and_aluminium() -> None:
    balance = campaign()["mass_balance"]
    ppm = balance["impurities_ppm"]
    assert set(ppm) >= {"fe", "al", "cu", "li"}
    assert ppm["fe"] < 10
    assert ppm["al"] < 10
    assert ppm["cu"] < 1000  # most of it, at pH 5.5; the rest is reported as it is
    assert 1.5 < balance["product_kg"] < 2.2  # ≈4 kg of black mass at 30 % Ni+Co+Mn


def test_the_leach_holds_its_temperature_within_two_degrees() -> None:
    leach = campaign()["recipes"][0]
    assert leach["temperature"]["true_overshoot_c"] <= 2.0
