"""check-recipe walks the phases with what the level switches must read: a phase that must hold
the moment it runs, or must overflow, is refused; one it cannot be sure of never is."""

from __future__ import annotations

from typing import Any

import pytest

from unit_controller.config import UnitConfig, load_config
from unit_controller.recipes import Recipe
from unit_controller.recipes.level_walk import level_problems

FILL_LOW: dict[str, Any] = {
    "name": "fill", "timeout_min": 10.0, "fill": True, "until": {"level": "low"}
}  # fmt: skip
HEAT: dict[str, Any] = {
    "name": "heat", "timeout_min": 60.0, "temperature_c": 40.0, "agitator": True,
    "until": {"temperature_reached": True},
}  # fmt: skip
DOSE: dict[str, Any] = {
    "name": "dose", "timeout_min": 30.0, "agitator": True,
    "doses": [{"pump": "P-204", "ml": 300.0, "over_min": 5.0}], "until": {"doses_done": True},
}  # fmt: skip
DRAIN: dict[str, Any] = {
    "name": "drain", "timeout_min": 10.0, "drain": True, "until": {"level_below": "low_low"}
}  # fmt: skip


@pytest.fixture(scope="module")
def config() -> UnitConfig:
    return load_config()


def _problems(config: UnitConfig, *phases: dict[str, Any], starts_with: str = "empty") -> list[str]:
    recipe = Recipe.model_validate(
        {"name": "x", "starts_with": starts_with, "phases": list(phases)}
    )
    return level_problems(recipe, config.wiring)


def test_heat_or_a_dose_on_an_empty_reactor_is_refused(config: UnitConfig) -> None:
    # Each held 0.4 s into the batch (level_low_low, dosing_not_permitted).
    heat = _problems(config, HEAT)
    assert len(heat) == 1
    assert heat[0].startswith("phases[0].temperature_c: the low-low switch is dry when the phase")
    assert "the recipe starts on an empty reactor" in heat[0]
    dose = _problems(config, DOSE)
    assert len(dose) == 1
    assert dose[0].startswith("phases[0]: doses (P-204) with the low switch dry")
    # Heating while filling (from empty) holds just the same.
    assert len(_problems(config, {**FILL_LOW, "temperature_c": 30.0})) == 1


def test_a_fill_first_makes_them_good_and_a_drain_past_low_low_bad_again(
    config: UnitConfig,
) -> None:
    assert _problems(config, FILL_LOW, HEAT, DOSE) == []
    after_drain = _problems(config, FILL_LOW, HEAT, DRAIN, {**HEAT, "name": "reheat"})
    assert len(after_drain) == 1
    assert after_drain[0].startswith("phases[3].temperature_c:")
    assert "as the phases before it leave the reactor" in after_drain[0]


def test_what_it_cannot_be_sure_of_is_never_refused(config: UnitConfig) -> None:
    # A start on liquor, a fill by time, a drain with a duration beside its level: unknown.
    assert _problems(config, HEAT, DOSE, starts_with="water") == []
    by_time = {**FILL_LOW, "until": {"duration_min": 2.0}}
    assert _problems(config, by_time, HEAT) == []
    drain_for = {**DRAIN, "until": {"level_below": "high", "duration_min": 3.0}}
    assert _problems(config, FILL_LOW, drain_for, HEAT, starts_with="water") == []


def test_a_phase_sure_to_reach_high_high_is_refused_once(config: UnitConfig) -> None:
    # 12 min at 12 L/min is 144 L: the overflow trip, not a fill.
    long_fill = {**FILL_LOW, "timeout_min": 20.0, "until": {"duration_min": 12.0}}
    problems = _problems(config, long_fill, HEAT)
    assert problems == [
        "phases[0]: puts in at least 144 L onto at least 0 L, which reaches the high-high "
        "switch (112 L) and trips the overflow interlock"
    ]
    # Filled to high (100 L), then 19 L of dose.
    to_high = {**FILL_LOW, "until": {"level": "high"}}
    big_dose = {**DOSE, "doses": [{"pump": "P-203", "ml": 19_000.0, "over_min": 25.0}]}
    assert _problems(config, to_high, big_dose)[0].startswith(
        "phases[1]: puts in at least 19 L onto at least 100 L"
    )
    # The same dose bound by the phase's time, not doses_done: all in by 26 min of 25.
    timed = {**big_dose, "until": {"duration_min": 26.0}}
    assert _problems(config, to_high, timed)[0].startswith(
        "phases[1]: puts in at least 19 L onto at least 100 L"
    )
