"""A recipe at another operating point: its metal feed faster or slower, the same product made.

The simulator's `feed_scale` and a campaign's feed plan run the shipped recipes at the rate their
feed calls for; the result is checked like any recipe. Never runs anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hal.wiring import Reagent
from unit_controller.config import UnitConfig
from unit_controller.errors import RecipeError
from unit_controller.recipes.loader import LoadedRecipe, check_recipe_for_unit, parse_recipe
from unit_controller.recipes.model import MAX_TIMEOUT_MIN

# A scaled feeding phase keeps at least this much time (min) between its end and its timeout.
MIN_TIMEOUT_MARGIN_MIN = 10.0


def feeding_phases(loaded: LoadedRecipe, config: UnitConfig) -> list[int]:
    """Indexes of the phases that feed metal sulfate (co-precipitation)."""
    pumps = config.wiring.pumps()
    return [
        i
        for i, phase in enumerate(loaded.recipe.phases)
        if any(
            f.pump in pumps and pumps[f.pump].reagent is Reagent.METAL_SULFATE for f in phase.feeds
        )
    ]


def scale_feed(
    loaded: LoadedRecipe, *, factor: float, config: UnitConfig, why: str = "feed_scale"
) -> LoadedRecipe:
    """`loaded` with every feed of its metal-feeding phases `factor` times faster and those
    phases' durations (and timeouts) `factor` times shorter: the same metal, fed faster.

    Raises RecipeError naming `why` when the scaled recipe does not fit the unit (a pump
    beyond its range).
    """
    if factor == 1.0:
        return loaded
    if not factor > 0.0:
        raise RecipeError(why, [f"{why}: the factor must be > 0, got {factor}"])
    document: dict[str, Any] = loaded.recipe.model_dump(mode="json")
    for index in feeding_phases(loaded, config):
        phase = document["phases"][index]
        for feed in phase["feeds"]:
            feed["ml_min"] *= factor
        until = phase["until"]
        duration = until.get("duration_min")
        if duration is not None:
            longest = MAX_TIMEOUT_MIN - MIN_TIMEOUT_MARGIN_MIN
            if duration / factor > longest:
                raise RecipeError(
                    why,
                    [
                        f"{why} {factor:g}: phase '{phase['name']}' would feed for "
                        f"{duration / factor:g} min, past the {MAX_TIMEOUT_MIN:g} min a phase "
                        f"may last; this recipe runs at {why} {duration / longest:.3g} or more"
                    ],
                )
            until["duration_min"] = duration / factor
            phase["timeout_min"] = min(
                MAX_TIMEOUT_MIN,
                max(phase["timeout_min"] / factor, duration / factor + MIN_TIMEOUT_MARGIN_MIN),
            )
    return _checked(loaded, document, config=config, why=f"{why} {factor:g}")


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """How a campaign feeds the liquor it made: which pump, how fast, for how long."""

    pump: str
    volume_l: float  # of the liquor fed (the rest, if any, stays in the feed tank)
    metal_mol_l: float  # Ni + Co + Mn in it, as assayed
    ml_min: float
    minutes: float


# A campaign feeds at most this many times the recipe's metal rate (the envelope's upper end)
# and leaves the pump this much headroom below its maximum.
MAX_FEED_SCALE = 5.0
PUMP_HEADROOM = 0.95


def plan_feed(
    loaded: LoadedRecipe, *, config: UnitConfig, volume_l: float, metal_mol_l: float
) -> FeedPlan:
    """The feed plan for a liquor of `volume_l` at `metal_mol_l`: as fast as the feed pump and
    five times the recipe's metal rate allow, for as long as it takes to feed it all."""
    phases = feeding_phases(loaded, config)
    if not phases:
        raise RecipeError(str(loaded.path), [f"{loaded.recipe.name}: no phase feeds metal sulfate"])
    if not (volume_l > 0.0 and metal_mol_l > 0.0):
        raise RecipeError(
            str(loaded.path), [f"the liquor to feed holds no metal ({volume_l:.1f} L)"]
        )
    pumps = config.wiring.pumps()
    phase = loaded.recipe.phases[phases[0]]
    feed = next(f for f in phase.feeds if pumps[f.pump].reagent is Reagent.METAL_SULFATE)
    nominal_mol_min = feed.ml_min * pumps[feed.pump].concentration_mol_l / 1000.0
    pump = pumps[feed.pump]
    ml_min = min(
        PUMP_HEADROOM * pump.max_ml_min, MAX_FEED_SCALE * nominal_mol_min * 1000.0 / metal_mol_l
    )
    ml_min = max(ml_min, pump.min_ml_min)
    return FeedPlan(
        pump=feed.pump,
        volume_l=volume_l,
        metal_mol_l=metal_mol_l,
        ml_min=ml_min,
        minutes=volume_l * 1000.0 / ml_min,
    )


def feed_liquor(loaded: LoadedRecipe, *, config: UnitConfig, plan: FeedPlan) -> LoadedRecipe:
    """`loaded` feeding the planned liquor in its first metal-feeding phase: the feed at the
    plan's rate for the plan's time, its other feeds (NH4OH) scaled to the same metal rate, the
    feed-forward by the liquor's assay, the pH cap by the metal it brings."""
    index = feeding_phases(loaded, config)[0]
    pumps = config.wiring.pumps()
    nominal_mol_l = pumps[plan.pump].concentration_mol_l
    document: dict[str, Any] = loaded.recipe.model_dump(mode="json")
    phase = document["phases"][index]
    feed = next(f for f in phase["feeds"] if f["pump"] == plan.pump)
    metal_ratio = plan.ml_min * plan.metal_mol_l / (feed["ml_min"] * nominal_mol_l)
    duration = phase["until"].get("duration_min") or plan.minutes
    metal_total_ratio = (
        plan.ml_min * plan.minutes * plan.metal_mol_l / (feed["ml_min"] * duration * nominal_mol_l)
    )
    for other in phase["feeds"]:
        other["ml_min"] = plan.ml_min if other is feed else other["ml_min"] * metal_ratio
    margin = max(MIN_TIMEOUT_MARGIN_MIN, phase["timeout_min"] - duration)
    phase["until"]["duration_min"] = plan.minutes
    phase["timeout_min"] = plan.minutes + margin
    ph = phase.get("ph")
    if ph is not None:
        ff = ph.get("feed_forward")
        if ff is not None and ff["pump"] == plan.pump:
            # The unit's config names the synthetic feed's strength; this liquor is weaker.
            ff["equivalents"] *= plan.metal_mol_l / nominal_mol_l
        if ph.get("cap_ml") is not None:
            ph["cap_ml"] = min(ph["cap_ml"] * metal_total_ratio, config.reagent_cap_ml(ph["pump"]))
    return _checked(loaded, document, config=config, why="the campaign's feed plan")


def _checked(
    loaded: LoadedRecipe, document: dict[str, Any], *, config: UnitConfig, why: str
) -> LoadedRecipe:
    source = f"{loaded.path} at {why}"
    recipe = parse_recipe(document, source=source)
    problems = check_recipe_for_unit(recipe, config)
    if problems:
        raise RecipeError(source, problems)
    return dataclasses.replace(loaded, recipe=recipe)
