"""Recipes: the schema (`model`), and finding, loading and checking them for a unit (`loader`).

Pure data and validation; nothing here runs a phase or touches a device.
"""

from unit_controller.recipes.loader import (
    MIN_TEMPERATURE_SETPOINT_C,
    RECIPES_DIR,
    LoadedRecipe,
    check_recipe_for_unit,
    list_recipes,
    load_recipe,
    offered_recipes,
    parse_recipe,
    resolve_recipe,
)
from unit_controller.recipes.model import (
    PH_EFFECT,
    Dose,
    Feed,
    FeedForward,
    Phase,
    PhControl,
    Recipe,
    StartsWith,
    Until,
)

__all__ = [
    "MIN_TEMPERATURE_SETPOINT_C",
    "PH_EFFECT",
    "RECIPES_DIR",
    "Dose",
    "Feed",
    "FeedForward",
    "LoadedRecipe",
    "PhControl",
    "Phase",
    "Recipe",
    "StartsWith",
    "Until",
    "check_recipe_for_unit",
    "list_recipes",
    "load_recipe",
    "offered_recipes",
    "parse_recipe",
    "resolve_recipe",
]
