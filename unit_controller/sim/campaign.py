"""`unit-controller sim --campaign leach,purify,coprecipitation`: one reactor, the streams
carried over. Each recipe's slurry goes to the filter; its filtrate is what the next recipe
starts with (a recipe that starts with a liquor) or feeds (co-precipitation's metal feed).

Mock backend, virtual time; never touches hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hal.clock import VirtualClock
from hal.mock.unit import SimulatedUnit
from hal.sim.chemistry import PCAM_METALS, solve_ph
from hal.sim.filtration import Cake, Filtrate, filter_slurry
from hal.sim.streams import liquor_stream
from unit_controller.config import UnitConfig
from unit_controller.errors import RecipeError
from unit_controller.machine import State
from unit_controller.recipes.loader import RECIPES_DIR, LoadedRecipe, load_recipe
from unit_controller.recipes.model import StartsWith
from unit_controller.sim.mass_balance import METAL_NAMES, MassBalance, Stream
from unit_controller.sim.operating_point import FeedPlan, feed_liquor, feeding_phases, plan_feed
from unit_controller.sim.runner import SharedUnit, SimOptions, SimResult, SimulationRun

# Washing displaces this share of the cake's moisture: leach and purify cakes are washed into
# the filtrate (the metals go on), the product harder (its wash goes to waste).
PROCESS_WASH = 0.9
PRODUCT_WASH = 0.99
_LIQUOR_STARTS = frozenset({StartsWith.LEACH_LIQUOR, StartsWith.PURIFIED_LIQUOR})


@dataclass(slots=True)
class StepRecord:
    """One recipe of the campaign as it ran."""

    recipe: str
    result: SimResult | None = None
    took: str = ""  # what it started from
    cake: Cake | None = None
    filtrate: Filtrate | None = None
    feed: FeedPlan | None = None
    notes: list[str] = field(default_factory=list)


class CampaignError(ValueError):
    """A campaign whose recipes cannot chain; the message says which and why."""


class CampaignRun:
    """Runs the recipes in order on one simulated reactor and balances the metals."""

    def __init__(
        self,
        *,
        config: UnitConfig,
        recipes: list[str],
        seed: int,
        out: TextIO,
        recipes_dir: Path = RECIPES_DIR,
        progress_every_s: float | None = None,
    ) -> None:
        # Bad input is found here, before anything runs (RecipeError / CampaignError).
        if not recipes:
            raise CampaignError("a campaign needs at least one recipe")
        self.config = config
        self.seed = seed
        self.out = out
        self.recipes_dir = recipes_dir
        self.progress_every_s = progress_every_s
        self.loaded = [
            load_recipe(name, config=config, recipes_dir=recipes_dir) for name in recipes
        ]
        self._check_chain()
        self.clock = VirtualClock()
        self.unit = SimulatedUnit(
            wiring=config.wiring, params=config.sim.plant, clock=self.clock, seed=seed
        )
        self.unit.preload(self.loaded[0].recipe.starts_with.value)
        self.steps = [StepRecord(recipe=loaded.recipe.name) for loaded in self.loaded]
        self.balance: MassBalance | None = None
        self._feed_tank: Filtrate | None = None
        self._streams: list[Stream] = []
        self._synthetic_in = dict.fromkeys(METAL_NAMES, 0.0)

    def _check_chain(self) -> None:
        first = self.loaded[0].recipe
        if first.starts_with in _LIQUOR_STARTS:
            raise CampaignError(
                f"campaign: the first recipe '{first.name}' starts with {first.starts_with}, "
                "which no earlier recipe makes; start with one that starts empty (leach)"
            )
        for before, loaded in zip(self.loaded, self.loaded[1:], strict=False):
            recipe = loaded.recipe
            takes_liquor = recipe.starts_with in _LIQUOR_STARTS
            feeds_liquor = bool(feeding_phases(loaded, self.config))
            if not (takes_liquor or feeds_liquor):
                raise CampaignError(
                    f"campaign: '{recipe.name}' neither starts with a liquor nor feeds one, so it "
                    f"cannot take the liquor '{before.recipe.name}' makes"
                )

    async def run(self) -> dict[str, Any]:
        """Every recipe in turn (stopping at the first that does not complete); the summary."""
        for index, (loaded, step) in enumerate(zip(self.loaded, self.steps, strict=True)):
            if index > 0:
                self._take_over(loaded, step)
            adapter = self._adapter(step)
            run = SimulationRun(
                config=self.config,
                options=SimOptions(
                    recipe=str(loaded.path),
                    seed=self.seed,
                    progress_every_s=self.progress_every_s,
                    recipes_dir=self.recipes_dir,
                ),
                out=self.out,
                shared=SharedUnit(unit=self.unit, clock=self.clock),
                recipe_adapter=adapter,
            )
            step.result = await run.run()
            self._synthetic_fed(loaded, step)
            self._filter(step, product=index == len(self.loaded) - 1)
            if step.result.final_state is not State.COMPLETE:
                break
        return self._summary()

    # --- between recipes -----------------------------------------------------------------

    def _take_over(self, loaded: LoadedRecipe, step: StepRecord) -> None:
        """Put the previous filtrate where `loaded` takes it: in the reactor or the feed tank."""
        previous = self.steps[self.steps.index(step) - 1].filtrate
        if previous is None:
            raise CampaignError(f"campaign: nothing to hand to '{step.recipe}'")
        plant = self.unit.plant
        if loaded.recipe.starts_with in _LIQUOR_STARTS:
            # Into the reactor, on top of whatever heel the drain left.
            liquor = plant.liquor.copy()
            liquor.add(previous.liquor)
            volume = plant.volume_l + previous.volume_l
            t_c = (
                plant.temperature_c * plant.volume_l + previous.temperature_c * previous.volume_l
            ) / max(volume, 1e-9)
            plant.load(liquor, volume_l=volume, temperature_c=t_c, residue=plant.residue)
            self.unit.rtd.model.reset(plant.temperature_c)
            self.unit.ph.model.reset(plant.ph)
            step.took = f"{previous.volume_l:.1f} L of liquor in the reactor at {t_c:.0f} °C"
            return
        self._feed_tank = previous
        metal = sum(getattr(previous.liquor, m) for m in PCAM_METALS) / previous.volume_l
        step.feed = plan_feed(
            loaded, config=self.config, volume_l=previous.volume_l, metal_mol_l=metal
        )
        ph = solve_ph(previous.liquor, previous.volume_l, previous.temperature_c)
        plant.set_stream(
            step.feed.pump,
            liquor_stream(
                previous.liquor,
                volume_l=previous.volume_l,
                t_c=previous.temperature_c,
                ph=ph,
            ),
        )
        step.took = (
            f"{previous.volume_l:.1f} L of liquor ({metal:.3f} M Ni+Co+Mn) fed through "
            f"{step.feed.pump} at {step.feed.ml_min:.1f} mL/min for {step.feed.minutes:.0f} min"
        )

    def _adapter(self, step: StepRecord) -> Any:
        plan = step.feed
        if plan is None:
            return lambda loaded: loaded  # as written: the campaign runs it at its own rate
        config = self.config

        def adapt(loaded: LoadedRecipe) -> LoadedRecipe:
            return feed_liquor(loaded, config=config, plan=plan)

        return adapt

    def _synthetic_fed(self, loaded: LoadedRecipe, step: StepRecord) -> None:
        """A first recipe fed from a synthetic metal-sulfate tank brings metal in too."""
        if step.feed is not None:
            return
        plant = self.unit.plant
        for tag in {
            f.pump
            for i in feeding_phases(loaded, self.config)
            for f in loaded.recipe.phases[i].feeds
        }:
            per_l = plant.streams[tag].per_l
            litres = plant.dosed_ml[tag] / 1000.0
            for name in PCAM_METALS:
                self._synthetic_in[name] += getattr(per_l, name) * litres
            plant.dosed_ml[tag] = 0.0

    def _filter(self, step: StepRecord, *, product: bool) -> None:
        """The slurry the recipe drained goes through the filter."""
        plant = self.unit.plant
        receiver = plant.drained
        cake, filtrate = filter_slurry(
            receiver, wash_efficiency=PRODUCT_WASH if product else PROCESS_WASH
        )
        receiver.clear()
        step.cake = cake
        step.filtrate = filtrate
        if step.feed is not None and self._feed_tank is not None:
            fed_l = plant.dosed_ml[step.feed.pump] / 1000.0
            left = max(0.0, self._feed_tank.volume_l - fed_l)
            if left > 1e-6:
                leftover = self._feed_tank.liquor.copy()
                leftover.scale(left / self._feed_tank.volume_l)
                self._streams.append(Stream.of(f"{step.recipe}_feed_left", liquor=leftover))
            plant.dosed_ml[step.feed.pump] = 0.0
        if product:
            self._streams.append(Stream.of(f"{step.recipe}_product", cake=cake))
            self._streams.append(Stream.of(f"{step.recipe}_mother_liquor", liquor=filtrate.liquor))
        else:
            self._streams.append(Stream.of(f"{step.recipe}_cake", cake=cake))

    # --- the summary ---------------------------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        plant = self.unit.plant
        metals_in = {
            name: plant.charged.metal(name) + self._synthetic_in.get(name, 0.0)
            for name in METAL_NAMES
        }
        balance = MassBalance(metals_in=metals_in)
        for stream in self._streams:
            balance.add(stream)
        # Whatever never left: the reactor's heel, reagents in the lines, a filtrate no recipe
        # took (a campaign that stopped early), and anything that overflowed.
        balance.add(Stream.of("in_reactor", liquor=plant.liquor, residue=plant.residue))
        balance.add(
            Stream.of("spilled", liquor=plant.spilled.liquor, residue=plant.spilled.residue)
        )
        last_ran = max(i for i, s in enumerate(self.steps) if s.result is not None)
        last = self.steps[last_ran]
        if last.result is not None and last.filtrate is not None and last_ran < len(self.steps) - 1:
            balance.add(Stream.of("liquor_not_taken", liquor=last.filtrate.liquor))
        product_step = self.steps[-1]
        if product_step.result is not None and product_step.cake is not None:
            balance.product = product_step.cake
        self.balance = balance
        recipes = []
        for step in self.steps:
            summary = step.result.summary if step.result else None
            recipes.append(
                {
                    "recipe": step.recipe,
                    "final_state": summary["final_state"] if summary else "NOT_RUN",
                    "started_with": step.took or "as the recipe says",
                    "reagents_ml": summary["reagents_ml"] if summary else {},
                    "sim_seconds": summary["sim_seconds"] if summary else 0.0,
                    "ph": summary["ph"] if summary else None,
                    "temperature": summary["temperature"] if summary else None,
                    "alarms": sorted({a["id"] for a in summary["alarms"]}) if summary else [],
                    "filtrate_l": round(step.filtrate.volume_l, 2) if step.filtrate else None,
                }
            )
        return {
            "recipes": recipes,
            # True, over the whole campaign: one reactor ran every recipe.
            "hazards": {
                "heater_on_dry_s": round(plant.heater_on_dry_s, 1),
                "max_true_temperature_c": round(plant.max_temperature_c, 2),
                "overflow_l": round(plant.overflow_l, 3),
            },
            "black_mass_kg": round(plant.charged_kg, 3),
            "mass_balance": balance.summary(),
        }


def parse_campaign(text: str) -> list[str]:
    """`leach,purify,coprecipitation` as a list of recipe names; CampaignError if empty."""
    names = [part.strip() for part in text.split(",")]
    if not names or any(not name for name in names):
        raise CampaignError(f"campaign {text!r} is not a comma-separated list of recipe names")
    return names


__all__ = ["CampaignError", "CampaignRun", "RecipeError", "parse_campaign"]
