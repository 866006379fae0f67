"""Finding, reading and checking recipes against the unit they will run on.

Reports every problem at once with its TOML location; never starts a batch or touches a device.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from hal.schema import ValidationError
from hal.wiring import CoilFunction, DosingPumpWiring, Reagent
from unit_controller.config import UnitConfig
from unit_controller.errors import RecipeError
from unit_controller.recipes.level_walk import level_problems
from unit_controller.recipes.model import MAX_PHASES, PH_EFFECT, Overshoot, Recipe
from unit_controller.shipped import SHIPPED_RECIPES
from unit_controller.tomlfile import file_problem, read_bounded, read_toml, validation_problems

RECIPES_DIR = SHIPPED_RECIPES
# even a jacket cannot cool below its water: a setpoint below this is a typo, not a process
MIN_TEMPERATURE_SETPOINT_C = 5.0
_NAME = re.compile(r"^[a-z0-9_-]{1,40}$")
# Reagents whose heat (dilution, decomposition, neutralising acid) the controller slows only to
# hold a temperature setpoint (DESIGN §4): with none, a phase would dose them at full rate.
EXOTHERMIC_REAGENTS = frozenset({Reagent.H2SO4, Reagent.H2O2, Reagent.NAOH})


@dataclass(frozen=True)
class LoadedRecipe:
    """A recipe checked against this unit, with the file it came from and that file's SHA-256."""

    recipe: Recipe
    path: Path
    sha256: str


def list_recipes(recipes_dir: Path = RECIPES_DIR) -> list[str]:
    """Names of the recipes in `recipes_dir`, sorted."""
    if not recipes_dir.is_dir():
        return []
    # Only what `resolve_recipe` would find: a FIFO, a directory or a dangling link is no recipe.
    return sorted(p.stem for p in recipes_dir.glob("*.toml") if _NAME.match(p.stem) and p.is_file())


def offered_recipes(config: UnitConfig, recipes_dir: Path = RECIPES_DIR) -> list[str]:
    """Names of the recipes in `recipes_dir` this unit would run (each loads and checks), sorted:
    what the unit tells the fleet it offers."""
    offered = []
    for name in list_recipes(recipes_dir):
        try:
            load_recipe(name, config=config, recipes_dir=recipes_dir, names_only=True)
        except (RecipeError, OSError):
            continue
        offered.append(name)
    return offered


def recipes_signature(recipes_dir: Path = RECIPES_DIR) -> tuple[tuple[str, int, int, int], ...]:
    """What changes when a recipe file is added, removed, replaced or edited (name, inode, size,
    mtime of each `.toml`): cheap to take, so a unit can look often and read recipes only then."""
    try:
        entries = sorted(recipes_dir.glob("*.toml"))
    except OSError:
        return ()
    signature = []
    for path in entries:
        try:
            stat = path.stat()
        except OSError:
            continue  # gone between the listing and the look, or a dangling link: no recipe
        signature.append((path.name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(signature)


def misnamed_recipes(recipes_dir: Path = RECIPES_DIR) -> list[Path]:
    """The `.toml` files in `recipes_dir` whose names no recipe can have (never offered), sorted."""
    if not recipes_dir.is_dir():
        return []
    return sorted(p for p in recipes_dir.glob("*.toml") if not _NAME.match(p.stem))


def resolve_recipe(ref: str, *, recipes_dir: Path = RECIPES_DIR, names_only: bool = False) -> Path:
    """The file `ref` means: an existing file or `.toml` path as is, else a name in recipes_dir.

    With `names_only` (commands from afar) only a name in recipes_dir is looked up.
    """
    if not ref.strip():
        raise RecipeError(ref, ["recipe: empty: give a recipe's name or its file"])
    as_path = Path(ref)
    if not names_only and (as_path.is_file() or ref.endswith(".toml")):
        return as_path
    if not names_only and not _NAME.match(ref) and as_path.is_dir():
        raise RecipeError(ref, [f"recipe: {ref} is a directory; give a recipe file or a name"])
    if not names_only and not _NAME.match(ref) and as_path.exists():
        raise RecipeError(ref, [f"recipe: {ref} is not a regular file; give a recipe file"])
    candidate = recipes_dir / f"{ref}.toml"
    if _NAME.match(ref) and candidate.is_file():
        return candidate
    available = ", ".join(list_recipes(recipes_dir)) or "none"
    raise RecipeError(
        ref, [f"recipe: no recipe named '{ref}' in {recipes_dir} (available: {available})"]
    )


def parse_recipe(document: dict[str, object], *, source: str) -> Recipe:
    """Validate a parsed TOML document as a recipe (structure only); RecipeError lists problems."""
    phases = document.get("phases")
    if isinstance(phases, list) and len(phases) > MAX_PHASES:
        # Before validating each: thousands of phases would take seconds and list each problem.
        raise RecipeError(source, [f"phases: {len(phases)} phases; at most {MAX_PHASES}"])
    try:
        return Recipe.model_validate(document)
    except ValidationError as exc:
        raise RecipeError(source, validation_problems(exc)) from None


def load_recipe(
    ref: str, *, config: UnitConfig, recipes_dir: Path = RECIPES_DIR, names_only: bool = False
) -> LoadedRecipe:
    """Resolve, read, validate and check a recipe for this unit; RecipeError lists every problem."""
    path = resolve_recipe(ref, recipes_dir=recipes_dir, names_only=names_only)
    source = str(path)
    problem = file_problem(path)
    if problem is not None:  # before any read: a FIFO would block it, a huge file fill memory
        raise RecipeError(source, [problem])
    try:
        data = read_bounded(path)
    except OSError:
        data = b""  # read_toml below reports why, in its own words
    document, problems = read_toml(path)
    if document is None:
        raise RecipeError(source, problems)
    try:
        if read_bounded(path) != data:
            raise RecipeError(source, [f"{path}: changed while it was being read; load it again"])
    except OSError as exc:
        raise RecipeError(source, [f"{path}: cannot read ({exc})"]) from None
    # The name an operator picks from the list must be the name the batch records. Judged on
    # the document, so it is listed beside the other problems even when the recipe is invalid.
    name = document.get("name")
    misnamed = (
        [f"name: '{name}' differs from the file name '{path.name}'"]
        if isinstance(name, str)
        and name != path.stem
        and path.parent.resolve() == recipes_dir.resolve()
        else []
    )
    try:
        recipe = parse_recipe(document, source=source)
    except RecipeError as exc:
        raise RecipeError(exc.source, [*misnamed, *exc.problems]) from None
    problems = [*misnamed, *check_recipe_for_unit(recipe, config)]
    if problems:
        raise RecipeError(source, problems)
    return LoadedRecipe(recipe=recipe, path=path, sha256=hashlib.sha256(data).hexdigest())


def check_recipe_for_unit(recipe: Recipe, config: UnitConfig) -> list[str]:
    """Every reason `recipe` cannot run on the unit `config` describes, as 'location: message'."""
    pumps = config.wiring.pumps()
    limits = config.interlocks
    have = ", ".join(sorted(pumps)) or "no dosing pumps"
    problems: list[str] = []

    def pump(where: str, tag: str) -> DosingPumpWiring | None:
        if tag not in pumps:
            problems.append(f"{where}: pump '{tag}' is not on this unit (it has {have})")
            return None
        return pumps[tag]

    def rate(where: str, tag: str, ml_min: float) -> None:
        wiring = pump(f"{where}.pump", tag)
        if wiring is not None and not wiring.min_ml_min <= ml_min <= wiring.max_ml_min:
            problems.append(
                f"{where}.ml_min: {ml_min:g} mL/min is outside {tag}'s range "
                f"{wiring.min_ml_min:g}–{wiring.max_ml_min:g} mL/min"
            )

    cooling = config.wiring.has_coil(CoilFunction.COOLING_VALVE)
    for i, phase in enumerate(recipe.phases):
        at = f"phases[{i}]"
        if phase.cooling and not cooling:
            problems.append(
                f"{at}.cooling: this unit has no jacket cooling valve (a coil with function "
                "'cooling_valve')"
            )
        dosed_tags = set(phase.pumps)
        if phase.ph is not None and phase.ph.counter_pump is not None:
            dosed_tags.add(phase.ph.counter_pump)
        if phase.temperature_c is None:
            hot = sorted(
                tag
                for tag in dosed_tags
                if tag in pumps and pumps[tag].reagent in EXOTHERMIC_REAGENTS
            )
            if hot:
                dosed = ", ".join(f"{tag} ({pumps[tag].reagent})" for tag in hot)
                problems.append(
                    f"{at}.temperature_c: the phase doses {dosed}, whose heat the controller "
                    "slows only to hold a temperature setpoint; with none it would go in at full "
                    "rate: give the phase a temperature_c"
                )
        else:
            if phase.temperature_c > limits.max_temperature_setpoint_c:
                problems.append(
                    f"{at}.temperature_c: {phase.temperature_c:g} °C is above the unit's max "
                    f"temperature setpoint {limits.max_temperature_setpoint_c:g} °C"
                )
            if phase.temperature_c < MIN_TEMPERATURE_SETPOINT_C:
                problems.append(
                    f"{at}.temperature_c: {phase.temperature_c:g} °C is below "
                    f"{MIN_TEMPERATURE_SETPOINT_C:g} °C (the unit only heats)"
                )
        below = phase.until.temperature_below_c
        if below is not None and below <= MIN_TEMPERATURE_SETPOINT_C:
            # Nothing here cools the liquor below its cooling water: a phase that waits for it
            # waits until its timeout holds the batch.
            problems.append(
                f"{at}.until.temperature_below_c: {below:g} °C is not above "
                f"{MIN_TEMPERATURE_SETPOINT_C:g} °C: no jacket or room cools the reactor so far"
            )
        ph = phase.ph
        if (
            ph is not None
            and ph.counter_pump is None
            and ph.on_overshoot is Overshoot.NEXT_PHASE
            and i + 1 < len(recipe.phases)
            and ph.pump in pumps
        ):
            # The next phase must push the pH back: a reagent the other way, or (past a base's
            # setpoint) a metal feed that takes hydroxide up.
            after = recipe.phases[i + 1]
            way = PH_EFFECT.get(pumps[ph.pump].reagent, 0)
            tags = set(after.pumps)
            if after.ph is not None and after.ph.counter_pump is not None:
                tags.add(after.ph.counter_pump)
            back = [
                tag
                for tag in tags
                if tag in pumps
                and (
                    PH_EFFECT.get(pumps[tag].reagent, 0) == -way
                    or (way > 0 and pumps[tag].reagent is Reagent.METAL_SULFATE)
                )
            ]
            # A pump not on this unit is said already; what it would dose is not known.
            if way and not back and tags <= set(pumps):
                problems.append(
                    f"{at}.ph.on_overshoot: 'next_phase', but the next phase ('{after.name}') "
                    f"doses nothing that brings the pH back the other way from "
                    f"{pumps[ph.pump].reagent}: use 'hold'"
                )
        if ph is not None:
            if not limits.min_ph_setpoint <= ph.setpoint <= limits.max_ph_setpoint:
                problems.append(
                    f"{at}.ph.setpoint: pH {ph.setpoint:g} is outside the unit's setpoint limits "
                    f"{limits.min_ph_setpoint:g}–{limits.max_ph_setpoint:g}"
                )
            wiring = pump(f"{at}.ph.pump", ph.pump)
            if wiring is not None and wiring.reagent not in PH_EFFECT:
                problems.append(
                    f"{at}.ph.pump: {ph.pump} delivers {wiring.reagent}, which is not a pH reagent "
                    f"(use one delivering {', '.join(PH_EFFECT)})"
                )
            cap = config.reagent_cap_ml(ph.pump)
            if wiring is not None and ph.cap_ml is not None and ph.cap_ml > cap:
                problems.append(
                    f"{at}.ph.cap_ml: {ph.cap_ml:g} mL is above the unit's cap for {ph.pump} "
                    f"({cap:g} mL per phase)"
                )
            if ph.feed_forward is not None:
                pump(f"{at}.ph.feed_forward.pump", ph.feed_forward.pump)
            if ph.counter_pump is not None:
                counter = pump(f"{at}.ph.counter_pump", ph.counter_pump)
                if (
                    counter is not None
                    and wiring is not None
                    and (PH_EFFECT.get(counter.reagent, 0) != -PH_EFFECT.get(wiring.reagent, 0))
                ):
                    problems.append(
                        f"{at}.ph.counter_pump: {ph.counter_pump} delivers {counter.reagent}, "
                        f"which does not push pH the other way from {wiring.reagent}"
                    )
        for j, feed in enumerate(phase.feeds):
            rate(f"{at}.feeds[{j}]", feed.pump, feed.ml_min)
        for j, dose in enumerate(phase.doses):
            where = f"{at}.doses[{j}]"
            if dose.pump not in pumps:
                pump(f"{where}.pump", dose.pump)
                continue
            wiring = pumps[dose.pump]
            if not wiring.min_ml_min <= dose.rate_ml_min <= wiring.max_ml_min:
                problems.append(
                    f"{where}: {dose.ml:g} mL over {dose.over_min:g} min is "
                    f"{dose.rate_ml_min:.3g} mL/min, outside {dose.pump}'s range "
                    f"{wiring.min_ml_min:g}–{wiring.max_ml_min:g} mL/min"
                )
        for tag in sorted({d.pump for d in phase.doses} & set(pumps)):
            cap = config.reagent_cap_ml(tag)
            # The cap trips once reached, and a dose's last scan may run a scan's worth over
            # it: a dose needs that much room below the cap, or it holds as it ends.
            room = pumps[tag].max_ml_min * config.unit.scan_period_s / 60.0
            if phase.dose_ml(tag) + room >= cap:
                problems.append(
                    f"{at}.doses: {phase.dose_ml(tag):g} mL through {tag} reaches the unit's cap "
                    f"({cap:g} mL per phase), which trips when reached: raise the cap above "
                    "the dose"
                )
        # A feed runs until the phase ends, which is not before `until.duration_min` (the
        # conditions hold together): a phase sure to take more than the cap would hold partway.
        least_min = phase.until.duration_min or 0.0
        for tag in sorted({f.pump for f in phase.feeds} & set(pumps)):
            cap = config.reagent_cap_ml(tag)
            feed_ml = sum(f.ml_min for f in phase.feeds if f.pump == tag) * least_min
            if feed_ml > cap:  # (a feed's pump doses nothing else in its phase)
                problems.append(
                    f"{at}.feeds: {tag} feeds at least {feed_ml:g} mL (its rate for the "
                    f"{least_min:g} min until.duration_min), above the unit's cap "
                    f"({cap:g} mL per phase)"
                )
    problems += level_problems(recipe, config.wiring)
    return problems
