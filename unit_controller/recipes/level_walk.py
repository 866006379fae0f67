"""A recipe walked phase by phase with what its level switches can be known to read.

Finds phases that must hold the moment they run (heat on a dry low-low switch, a dose with the
low switch dry) or that must overflow (more liquid than the high-high switch allows), from the
recipe, its `starts_with` and the unit's switch volumes and fill flow. A switch it cannot be
sure of is never held against a phase: only what must happen is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hal.wiring import BoardWiring, CoilFunction, LevelPoint
from unit_controller.recipes.model import Phase, Recipe, StartsWith
from unit_controller.recipes.phase_checks import LEVEL_ORDER


@dataclass(frozen=True, slots=True)
class _Level:
    """What is known of the reactor's contents between two phases."""

    wet: frozenset[LevelPoint]  # surely wet
    dry: frozenset[LevelPoint]  # surely dry
    least_l: float  # at least this many litres


_UNKNOWN = _Level(wet=frozenset(), dry=frozenset(), least_l=0.0)


def level_problems(recipe: Recipe, wiring: BoardWiring) -> list[str]:
    """Each phase that must hold or overflow when it runs, as 'location: message'."""
    volumes = {point: wiring.level_switch(point).at_l for point in LevelPoint}
    fill_l_min = (
        wiring.coil(CoilFunction.FILL_PUMP).flow_l_min
        if wiring.has_coil(CoilFunction.FILL_PUMP)
        else 0.0
    )
    level = (
        _Level(wet=frozenset(), dry=frozenset(LevelPoint), least_l=0.0)
        if recipe.starts_with is StartsWith.EMPTY
        else _UNKNOWN
    )
    problems: list[str] = []
    for i, phase in enumerate(recipe.phases):
        at = f"phases[{i}]"
        before = (
            "the recipe starts on an empty reactor"
            if i == 0
            else "as the phases before it leave the reactor"
        )
        if phase.controls_temperature and LevelPoint.LOW_LOW in level.dry:
            problems.append(
                f"{at}.temperature_c: the low-low switch is dry when the phase starts ({before}): "
                "the heater may not run on a dry element and the batch would hold at once; "
                "fill in a phase before it"
            )
        if phase.pumps and LevelPoint.LOW in level.dry:
            problems.append(
                f"{at}: doses ({', '.join(sorted(phase.pumps))}) with the low switch dry when the "
                f"phase starts ({before}): no reagent goes into a near-empty reactor and the "
                "batch would hold at once; fill to 'low' in a phase before it"
            )
        added_l = _added_at_least_l(phase, fill_l_min)
        full_l = volumes[LevelPoint.HIGH_HIGH]
        if level.least_l + added_l >= full_l:
            problems.append(
                f"{at}: puts in at least {added_l:.4g} L onto at least {level.least_l:.4g} L, "
                f"which reaches the high-high switch ({full_l:g} L) and trips the overflow "
                "interlock"
            )
            level = _UNKNOWN  # the batch holds there: nothing after it is known
            continue
        level = _after(phase, level, volumes, added_l)
    return problems


def _added_at_least_l(phase: Phase, fill_l_min: float) -> float:
    """Litres the phase surely puts in: its doses, and feeds and fill for its least duration."""
    least_min = phase.until.duration_min or 0.0
    if phase.until.doses_done:
        doses_l = sum(dose.ml for dose in phase.doses) / 1000.0
    else:
        # A phase that ends on time has dosed at least what its doses put in by then.
        doses_l = (
            sum(
                min(dose.ml, dose.rate_ml_min * max(0.0, least_min - dose.after_min))
                for dose in phase.doses
            )
            / 1000.0
        )
    feeds_l = sum(feed.ml_min for feed in phase.feeds) * least_min / 1000.0
    fill_l = fill_l_min * least_min if phase.fill else 0.0
    return doses_l + feeds_l + fill_l


def _after(phase: Phase, level: _Level, volumes: dict[LevelPoint, float], added_l: float) -> _Level:
    """What is known once `phase` has ended."""
    u = phase.until
    adds = phase.fill or bool(phase.pumps)
    # Liquid goes in: a dry switch may be wet by now; out: a wet one may be dry.
    wet, dry = set(level.wet), set(level.dry)
    least_l = level.least_l + added_l
    if adds:
        dry.clear()
    if phase.drain:
        wet.clear()
        least_l = 0.0
    if u.level is not None:
        # Ended with this switch wet: it and every one below it are.
        reached = LEVEL_ORDER[: LEVEL_ORDER.index(u.level) + 1]
        wet.update(reached)
        dry.difference_update(reached)
        least_l = max(least_l, volumes[u.level])
        if u.describe() == [f"level {u.level} reached"]:
            # Nothing else kept the phase: it stopped as the switch went wet.
            dry.update(p for p in LEVEL_ORDER if p not in reached and p in level.dry)
    if u.level_below is not None:
        gone = LEVEL_ORDER[LEVEL_ORDER.index(u.level_below) :]
        dry.update(gone)
        wet.difference_update(gone)
        if u.describe() == [f"level below {u.level_below}"]:
            # It stopped as the switch went dry: those below it that were wet still are.
            wet.update(p for p in LEVEL_ORDER if p not in gone and p in level.wet)
    least_l = max([least_l, *(volumes[point] for point in wet)])
    return replace(level, wet=frozenset(wet), dry=frozenset(dry - wet), least_l=least_l)
