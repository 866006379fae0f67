"""The co-precipitation recipe at another operating point: its metal fed faster, or a campaign's
own liquor fed, with the same product made and a recipe the unit still accepts."""

from __future__ import annotations

import dataclasses
import math
from functools import cache

import pytest

from unit_controller.config import UnitConfig, load_config
from unit_controller.errors import RecipeError
from unit_controller.recipes.loader import LoadedRecipe, check_recipe_for_unit, load_recipe
from unit_controller.recipes.model import Phase
from unit_controller.sim.operating_point import (
    MAX_FEED_SCALE,
    MIN_TIMEOUT_MARGIN_MIN,
    PUMP_HEADROOM,
    FeedPlan,
    feed_liquor,
    feeding_phases,
    plan_feed,
    scale_feed,
)

METAL_PUMP = "P-205"  # 2 M Ni/Mn/Co sulfate
AMMONIA_PUMP = "P-204"  # 6 M NH4OH
BASE_PUMP = "P-203"  # 4 M NaOH
# The shipped recipe's feeding phase: 10 mL/min of 2 M metal and 2.7 mL/min of NH4OH for
# 120 min (timeout 180 min): 20 mmol/min of metal, 2.4 mol in all.
FEED_ML_MIN = 10.0
NH4OH_ML_MIN = 2.7
DURATION_MIN = 120.0
TIMEOUT_MIN = 180.0


@cache
def _config() -> UnitConfig:
    return load_config()


@cache
def _recipe() -> LoadedRecipe:
    return load_recipe("coprecipitation", config=_config())


def _phase(loaded: LoadedRecipe, name: str = "co_precipitate") -> Phase:
    return next(p for p in loaded.recipe.phases if p.name == name)


def _rate(phase: Phase, pump: str) -> float:
    return next(f.ml_min for f in phase.feeds if f.pump == pump)


def _mol_l(pump: str) -> float:
    return _config().wiring.pumps()[pump].concentration_mol_l


def _duration(phase: Phase) -> float:
    assert phase.until.duration_min is not None
    return phase.until.duration_min


def test_the_shipped_recipe_is_what_these_tests_assume() -> None:
    phase = _phase(_recipe())
    assert feeding_phases(_recipe(), _config()) == [3]
    assert _rate(phase, METAL_PUMP) == FEED_ML_MIN
    assert _rate(phase, AMMONIA_PUMP) == NH4OH_ML_MIN
    assert _duration(phase) == DURATION_MIN
    assert phase.timeout_min == TIMEOUT_MIN
    assert _mol_l(METAL_PUMP) == 2.0
    max_ml_min = _config().wiring.pumps()[METAL_PUMP].max_ml_min
    assert max_ml_min == 105.0


# --- scale_feed -----------------------------------------------------------------------------


def test_scaling_by_one_returns_the_recipe_itself() -> None:
    assert scale_feed(_recipe(), factor=1.0, config=_config()) is _recipe()


def test_scaling_by_three_triples_both_feeds_and_shortens_the_phase_threefold() -> None:
    scaled = scale_feed(_recipe(), factor=3.0, config=_config())
    phase = _phase(scaled)
    assert _rate(phase, METAL_PUMP) == pytest.approx(3 * FEED_ML_MIN)
    assert _rate(phase, AMMONIA_PUMP) == pytest.approx(3 * NH4OH_ML_MIN)
    assert _duration(phase) == pytest.approx(DURATION_MIN / 3)
    # the timeout shrinks with it, keeping at least 10 min past the end
    assert phase.timeout_min == pytest.approx(TIMEOUT_MIN / 3)


def test_a_feed_too_slow_for_the_longest_phase_is_refused_saying_the_slowest_it_runs_at() -> None:
    # A valid plant's feed_scale stretched the feed past a phase's 1440 min, and the error
    # blamed a timeout no recipe file holds.
    with pytest.raises(RecipeError) as refused:
        scale_feed(_recipe(), factor=0.08, config=_config())
    assert refused.value.problems == [
        f"feed_scale 0.08: phase '{_phase(_recipe()).name}' would feed for 1500 min, past the "
        "1440 min a phase may last; this recipe runs at feed_scale 0.0839 or more"
    ]


@pytest.mark.parametrize("factor", [0.5, 2.0, 3.0, 5.0])
def test_scaling_keeps_the_metal_and_ammonia_fed(factor: float) -> None:
    before = _phase(_recipe())
    after = _phase(scale_feed(_recipe(), factor=factor, config=_config()))
    for pump in (METAL_PUMP, AMMONIA_PUMP):
        fed_before = _rate(before, pump) * _duration(before) * _mol_l(pump)
        fed_after = _rate(after, pump) * _duration(after) * _mol_l(pump)
        assert fed_after == pytest.approx(fed_before)
    # 2.4 mol of metal either way
    assert _rate(after, METAL_PUMP) * _duration(after) * _mol_l(METAL_PUMP) / 1000.0 == (
        pytest.approx(2.4)
    )


def test_scaling_leaves_every_other_phase_and_the_ph_control_alone() -> None:
    original = _recipe()
    scaled = scale_feed(original, factor=3.0, config=_config())
    assert [p.name for p in scaled.recipe.phases] == [p.name for p in original.recipe.phases]
    for before, after in zip(original.recipe.phases, scaled.recipe.phases, strict=True):
        if before.name != "co_precipitate":
            assert after == before
    assert _phase(scaled).ph == _phase(original).ph
    assert _phase(scaled).temperature_c == _phase(original).temperature_c
    assert scaled.path == original.path
    assert scaled.sha256 == original.sha256


def test_scaling_never_touches_the_recipe_it_was_given() -> None:
    before = _recipe().recipe.model_dump()
    scale_feed(_recipe(), factor=3.0, config=_config())
    assert _recipe().recipe.model_dump() == before


def test_a_scaled_phase_keeps_ten_minutes_between_its_end_and_its_timeout() -> None:
    # 8×: 180/8 = 22.5 min of timeout would leave 7.5 min past the 15 min phase
    phase = _phase(scale_feed(_recipe(), factor=8.0, config=_config()))
    assert _duration(phase) == pytest.approx(15.0)
    assert phase.timeout_min == pytest.approx(15.0 + MIN_TIMEOUT_MARGIN_MIN)


def test_a_scaled_recipe_still_fits_the_unit() -> None:
    for factor in (0.5, 2.0, 5.0, 10.0):
        scaled = scale_feed(_recipe(), factor=factor, config=_config())
        assert check_recipe_for_unit(scaled.recipe, _config()) == []


@pytest.mark.parametrize("factor", [11.0, 20.0])
def test_a_factor_beyond_the_feed_pumps_range_is_refused_naming_the_range(factor: float) -> None:
    with pytest.raises(RecipeError) as err:
        scale_feed(_recipe(), factor=factor, config=_config())
    assert f"feed_scale {factor:g}" in err.value.source
    assert any(
        problem.startswith("phases[3].feeds[0].ml_min: ")
        and f"{factor * FEED_ML_MIN:g} mL/min is outside P-205's range 0.5–105 mL/min" in problem
        for problem in err.value.problems
    ), err.value.problems


def test_a_refused_factor_names_why_it_was_scaled() -> None:
    with pytest.raises(RecipeError, match="campaign feed 12"):
        scale_feed(_recipe(), factor=12.0, config=_config(), why="campaign feed")


def test_a_factor_that_slows_the_ammonia_below_its_pump_is_refused() -> None:
    # 0.15×: 0.405 mL/min of NH4OH is below P-204's 0.5 mL/min (the metal's 1.5 mL/min is fine)
    with pytest.raises(RecipeError) as err:
        scale_feed(_recipe(), factor=0.15, config=_config())
    assert err.value.problems == [
        "phases[3].feeds[1].ml_min: 0.405 mL/min is outside P-204's range 0.5–105 mL/min"
    ]


def test_a_slow_feed_that_fits_a_phase_gets_the_longest_timeout_not_one_past_it() -> None:
    # 0.1×: 1200 min of feeding; its timeout was stretched to 1800 min (past the 1440 min any
    # phase may take) and that was the error. Capped, what is left is the real reason.
    with pytest.raises(RecipeError) as err:
        scale_feed(_recipe(), factor=0.1, config=_config())
    assert not any("timeout_min" in p for p in err.value.problems)
    assert any("outside P-204's range" in p for p in err.value.problems)


@pytest.mark.parametrize("factor", [0.0, -2.0, math.nan])
def test_a_factor_that_is_not_positive_is_refused(factor: float) -> None:
    with pytest.raises(RecipeError, match="the factor must be > 0"):
        scale_feed(_recipe(), factor=factor, config=_config())


# --- plan_feed ------------------------------------------------------------------------------


def test_plan_for_50_l_of_0_4_m_feeds_as_fast_as_the_pump_allows() -> None:
    plan = plan_feed(_recipe(), config=_config(), volume_l=50.0, metal_mol_l=0.4)
    assert plan.pump == METAL_PUMP
    assert plan.volume_l == 50.0
    assert plan.metal_mol_l == 0.4
    # 5× the recipe's 20 mmol/min at 0.4 M would be 250 mL/min: the pump (95 % of 105) limits
    assert plan.ml_min == pytest.approx(PUMP_HEADROOM * 105.0)
    assert plan.ml_min <= 0.95 * 105.0
    assert plan.ml_min * 0.4 <= MAX_FEED_SCALE * FEED_ML_MIN * 2.0
    assert plan.minutes == pytest.approx(50_000.0 / plan.ml_min)  # ≈ 501 min


def test_plan_for_a_strong_liquor_is_limited_to_five_times_the_recipes_metal_rate() -> None:
    plan = plan_feed(_recipe(), config=_config(), volume_l=20.0, metal_mol_l=2.0)
    # 5 × 20 mmol/min = 100 mmol/min of 2 M: 50 mL/min, well below the pump's maximum
    assert plan.ml_min == pytest.approx(50.0)
    assert plan.minutes == pytest.approx(400.0)


@pytest.mark.parametrize("metal_mol_l", [0.05, 0.2, 0.4, 0.8, 1.2, 2.0, 3.0])
def test_plan_respects_both_limits_and_feeds_the_whole_volume(metal_mol_l: float) -> None:
    plan = plan_feed(_recipe(), config=_config(), volume_l=50.0, metal_mol_l=metal_mol_l)
    recipe_mmol_min = FEED_ML_MIN * 2.0
    assert plan.ml_min <= PUMP_HEADROOM * 105.0 + 1e-9
    assert plan.ml_min * metal_mol_l <= MAX_FEED_SCALE * recipe_mmol_min + 1e-9
    # one of the two limits is what it runs at
    assert math.isclose(plan.ml_min, PUMP_HEADROOM * 105.0) or math.isclose(
        plan.ml_min * metal_mol_l, MAX_FEED_SCALE * recipe_mmol_min
    )
    assert plan.ml_min * plan.minutes == pytest.approx(50_000.0)


def test_a_plan_is_immutable() -> None:
    plan = plan_feed(_recipe(), config=_config(), volume_l=50.0, metal_mol_l=0.4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.ml_min = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("volume_l", "metal_mol_l"), [(0.0, 0.4), (50.0, 0.0), (-1.0, 0.4), (50.0, -0.1)]
)
def test_a_liquor_without_metal_cannot_be_planned(volume_l: float, metal_mol_l: float) -> None:
    with pytest.raises(RecipeError, match="holds no metal"):
        plan_feed(_recipe(), config=_config(), volume_l=volume_l, metal_mol_l=metal_mol_l)


def test_a_recipe_without_a_metal_feed_cannot_be_planned() -> None:
    leach = load_recipe("leach", config=_config())
    with pytest.raises(RecipeError, match="no phase feeds metal sulfate"):
        plan_feed(leach, config=_config(), volume_l=50.0, metal_mol_l=0.4)


# --- feed_liquor ----------------------------------------------------------------------------


def _plan(volume_l: float = 50.0, metal_mol_l: float = 0.4) -> FeedPlan:
    return plan_feed(_recipe(), config=_config(), volume_l=volume_l, metal_mol_l=metal_mol_l)


def test_feeding_a_liquor_sets_the_feed_rate_and_duration_of_the_plan() -> None:
    plan = _plan()
    phase = _phase(feed_liquor(_recipe(), config=_config(), plan=plan))
    assert _rate(phase, METAL_PUMP) == plan.ml_min
    assert _duration(phase) == pytest.approx(plan.minutes)
    # the recipe's 60 min between the end and the timeout stays
    assert phase.timeout_min == pytest.approx(plan.minutes + (TIMEOUT_MIN - DURATION_MIN))


def test_feeding_a_liquor_keeps_the_ammonia_to_metal_ratio() -> None:
    plan = _plan()
    phase = _phase(feed_liquor(_recipe(), config=_config(), plan=plan))
    metal_mmol_min = plan.ml_min * plan.metal_mol_l
    ammonia_mmol_min = _rate(phase, AMMONIA_PUMP) * _mol_l(AMMONIA_PUMP)
    # NH3/M = 16.2 / 20 = 0.81, as the recipe has it
    assert ammonia_mmol_min / metal_mmol_min == pytest.approx(NH4OH_ML_MIN * 6.0 / 20.0)
    # by hand: 99.75 mL/min × 0.4 M = 39.9 mmol/min of metal, 1.995× the recipe's
    assert _rate(phase, AMMONIA_PUMP) == pytest.approx(2.7 * 1.995)


@pytest.mark.parametrize("metal_mol_l", [0.2, 0.4, 1.0, 2.0])
def test_feeding_a_liquor_scales_the_feed_forward_by_its_assay(metal_mol_l: float) -> None:
    phase = _phase(feed_liquor(_recipe(), config=_config(), plan=_plan(metal_mol_l=metal_mol_l)))
    assert phase.ph is not None
    assert phase.ph.feed_forward is not None
    assert phase.ph.feed_forward.pump == METAL_PUMP
    # 2 OH⁻ per metal, but the controller counts the pump's mL at the config's 2.0 M
    assert phase.ph.feed_forward.equivalents == pytest.approx(2.0 * metal_mol_l / 2.0)


def test_feeding_a_liquor_caps_the_base_by_the_metal_it_brings() -> None:
    # 10 L of 0.4 M is 4 mol of metal against the recipe's 2.4: the 3 L cap grows 5/3×
    phase = _phase(feed_liquor(_recipe(), config=_config(), plan=_plan(volume_l=10.0)))
    assert phase.ph is not None
    assert phase.ph.cap_ml == pytest.approx(3000.0 * 4.0 / 2.4)


def test_feeding_a_large_liquor_caps_the_base_at_the_units_limit() -> None:
    phase = _phase(feed_liquor(_recipe(), config=_config(), plan=_plan(volume_l=50.0)))
    assert phase.ph is not None
    assert phase.ph.cap_ml == _config().reagent_cap_ml(BASE_PUMP)


def test_feeding_a_liquor_keeps_the_recipe_valid_and_the_rest_alone() -> None:
    original = _recipe()
    fed = feed_liquor(original, config=_config(), plan=_plan())
    assert check_recipe_for_unit(fed.recipe, _config()) == []
    for before, after in zip(original.recipe.phases, fed.recipe.phases, strict=True):
        if before.name != "co_precipitate":
            assert after == before
    before_ph, after_ph = _phase(original).ph, _phase(fed).ph
    assert before_ph is not None
    assert after_ph is not None
    assert (after_ph.setpoint, after_ph.pump, after_ph.tolerance, after_ph.on_overshoot) == (
        before_ph.setpoint,
        before_ph.pump,
        before_ph.tolerance,
        before_ph.on_overshoot,
    )


def test_feeding_the_recipes_own_feed_changes_nothing_that_matters() -> None:
    # 2.4 mol at the recipe's 2 M and 10 mL/min for 120 min: the plan the recipe already is
    plan = FeedPlan(pump=METAL_PUMP, volume_l=1.2, metal_mol_l=2.0, ml_min=10.0, minutes=120.0)
    fed = _phase(feed_liquor(_recipe(), config=_config(), plan=plan))
    original = _phase(_recipe())
    assert fed.feeds == original.feeds
    assert fed.until == original.until
    assert fed.timeout_min == original.timeout_min
    assert fed.ph == original.ph
