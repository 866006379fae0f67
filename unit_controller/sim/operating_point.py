"""A recipe at another operating point: its metal feed faster or slower, the same product made.

The simulator's `feed_scale` and a campaign's feed plan run the shipped recipes at the rate their
feed calls for; the result is checked like any recipe. Never runs anything.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hal.wiring import Reagent
from unit_controller.config import UnitConfig
from unit_controller.errors import RecipeError
from unit_controller.recipes.loader import LoadedRecipe, check_recipe_for_unit, parse_recipe

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
            until["duration_min"] = duration / factor
            phase["timeout_min"] = max(
                phase["timeout_min"] / factor, duration / factor + MIN_TIMEOUT_MARGIN_MIN
            )
    return _checked(loaded, document, config=config, why=f"{why} {factor:g}")


def _checked(
    loaded: LoadedRecipe, document: dict[str, Any], *, config: UnitConfig, why: str
) -> LoadedRecipe:
    source = f"{loaded.path} at {why}"
    recipe = parse_recipe(document, source=source)
    problems = check_recipe_for_unit(recipe, config)
    if problems:
        raise RecipeError(source, problems)
    return dataclasses.replace(loaded, recipe=recipe)
