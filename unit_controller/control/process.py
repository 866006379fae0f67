"""Step 4 of the scan: turn the phase's targets and the process image into desired outputs.

Only computes; the safety filter decides what is allowed and the board writes it. The
temperature loop and exothermic dosing coordinate: the heat doses are expected to release comes
off the heater before the probe sees it, and doses go no faster than the unit can take the heat.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hal.outputs import Outputs
from hal.wiring import CoilFunction, DosingPumpWiring, Reagent
from unit_controller.batch.phase_runner import PhaseTargets, PhTarget
from unit_controller.config import PhTuning, UnitConfig
from unit_controller.control.exotherm_limit import ExothermicDoseLimit
from unit_controller.control.heater_pid import HeaterPid
from unit_controller.control.on_off import OnOff
from unit_controller.control.ph_dosing import Learned, PhDose, PhDosingController
from unit_controller.control.reaction_heat import ReactionHeat
from unit_controller.control.time_proportioning import TimeProportioner
from unit_controller.process_image import ProcessImage

# Equivalents of acid or base per mol of each pH reagent.
EQUIVALENTS = {Reagent.NAOH: 1.0, Reagent.NH4OH: 1.0, Reagent.H2SO4: 2.0}
WATER_CP_J_KG_K = 4186.0
# On/off cooling (the baseline) opens this many bands above the setpoint and closes at two.
_ON_OFF_COOL_BANDS = 3.0


def neutralising_rate_ml_min(
    *, feed_ml_min: float, feed_mol_l: float, equivalents: float, reagent_mol_l: float
) -> float:
    """Reagent rate (mL/min) that neutralises a feed: equivalents·feed·c_feed / c_reagent."""
    if reagent_mol_l <= 0.0:
        raise ValueError(f"reagent_mol_l must be > 0, got {reagent_mol_l}")
    return max(0.0, equivalents * feed_ml_min * feed_mol_l / reagent_mol_l)


def counter_ratio(reagent: DosingPumpWiring, counter: DosingPumpWiring) -> float:
    """mL of `counter` that undo one mL of `reagent` (acid and base equivalents)."""
    given = reagent.concentration_mol_l * EQUIVALENTS.get(reagent.reagent, 1.0)
    taken = counter.concentration_mol_l * EQUIVALENTS.get(counter.reagent, 1.0)
    return given / taken


@dataclass(frozen=True, slots=True)
class TemperatureOutputs:
    """What the temperature loop wants this scan."""

    heater_on_s: float = 0.0
    cooling: bool = False


class ProcessControllers:
    """The temperature loop, exothermic dose limits and the pH loop, fed by the phase's targets."""

    def __init__(self, *, config: UnitConfig) -> None:
        tuning = config.control.heater
        self._config = config
        self._tuning = tuning
        self._pumps = config.wiring.pumps()
        self._heater_w = config.wiring.heater().power_w
        self._pid = HeaterPid(tuning=tuning)
        self._proportioner = TimeProportioner(
            cycle_s=tuning.cycle_s, min_pulse_s=tuning.min_pulse_s
        )
        self._cooling_proportioner = TimeProportioner(
            cycle_s=tuning.cooling_cycle_s, min_pulse_s=tuning.cooling_min_pulse_s
        )
        self._thermostat = OnOff(band=tuning.on_off_band_c)
        self._cool_thermostat = OnOff(band=tuning.on_off_band_c, rising=False)
        self._cool_w_k = 0.0
        if config.wiring.has_coil(CoilFunction.COOLING_VALVE):
            jacket = config.wiring.coil(CoilFunction.COOLING_VALVE)
            water_w_k = jacket.flow_l_min / 60.0 * WATER_CP_J_KG_K
            self._cool_w_k = water_w_k * (1.0 - math.exp(-jacket.ua_w_k / water_w_k))
        release_s = config.interlocks.peroxide_release_s
        self._reaction = ReactionHeat(pumps=self._pumps, release_s=release_s)
        self._exotherm = ExothermicDoseLimit(
            heater_w=self._heater_w, share=tuning.exotherm_share, release_s=release_s
        )
        self._ph: PhDosingController | None = None
        self._ph_for: PhTarget | None = None
        self._ph_switch: OnOff | None = None
        self._learned: dict[tuple[str, float], Learned] = {}
        self._tuned: dict[tuple[tuple[str, float], ...], PhTuning] = {}
        self._tuned_from: PhTuning | None = None
        self._heating = False
        self.duty = 0.0
        self.cooling_duty = 0.0

    @property
    def ph_controller(self) -> PhDosingController | None:
        """The pH loop running now (None when the phase controls no pH, or on on/off)."""
        return self._ph

    @property
    def exotherm_budget_w(self) -> float:
        """Heat exothermic doses may release now (inf while nothing limits them)."""
        return self._exotherm.budget_w

    def begin_batch(self) -> None:
        """A new batch: what the loops learned about the last liquor no longer holds."""
        self._learned.clear()
        self._reaction.reset()
        self._exotherm.reset()

    def compute(self, targets: PhaseTargets, image: ProcessImage) -> Outputs:
        """Desired outputs for this scan."""
        ph_now = image.ph.value if image.ph.good else None
        released_w = self._reaction.update(now=image.now, ml_min=image.applied.pumps, ph=ph_now)
        temperature = self._temperature(targets, image, released_w)
        pumps = self._limit_exothermic(dict(targets.pumps), targets, ph_now)
        if targets.ph is not None and targets.holding:
            # Held: dose nothing, but keep what the loop learned for the unhold.
            if self._ph is not None and self._ph_for == targets.ph:
                self._ph.pause()
            if self._ph_switch is not None:
                self._ph_switch.reset()
        elif targets.ph is not None:
            dose = self._ph_dose(targets, image, ph_now)
            target = targets.ph
            pumps[target.pump] = pumps.get(target.pump, 0.0) + dose.ml_min
            if target.counter_pump is not None and dose.counter_ml_min > 0.0:
                pumps[target.counter_pump] = pumps.get(target.counter_pump, 0.0) + (
                    dose.counter_ml_min
                )
        else:
            self._ph = None
            self._ph_for = None
            self._ph_switch = None
        return Outputs(
            heater_on_s=temperature.heater_on_s,
            contactor=targets.temperature_c is not None,
            agitator=targets.agitator,
            fill_pump=targets.fill,
            drain_valve=targets.drain,
            purge_valve=targets.purge,
            cooling_valve=temperature.cooling,
            # as `with_pumps` makes it, without a second Outputs
            pumps=MappingProxyType({tag: rate for tag, rate in pumps.items() if rate > 0.0}),
        )

    def compute_manual(
        self,
        *,
        heater_duty: float,
        pumps: Mapping[str, float],
        now: float,
        temperature_c: float | None = None,
        agitator: bool = False,
        drain: bool = False,
    ) -> Outputs:
        """Desired outputs in manual mode: a fixed heater duty (no PID), the jogged pumps, the
        agitator a jog into the reactor or a heater run runs, and the drain valve.

        The duty goes through the same time proportioner, with the contactor closed while it
        runs; no pH loop runs and every other output is off.
        """
        self._ph = None
        self._ph_for = None
        self._ph_switch = None
        self.cooling_duty = 0.0
        # A manual run stops at the highest setpoint a recipe may ask for, long before the
        # high-high trip; an unknown temperature heats nothing.
        limit = self._config.interlocks.max_temperature_setpoint_c
        if temperature_c is None or temperature_c >= limit:
            heater_duty = 0.0
        if heater_duty > 0.0:
            self._heating = True  # so that the end of the run resets the proportioner
            self.duty = min(heater_duty, 1.0)
            heater_on_s = self._proportioner.on_time_remaining(duty=self.duty, now=now)
        else:
            heater_on_s = self._heater_off()
        return Outputs(
            heater_on_s=heater_on_s, contactor=heater_duty > 0.0, agitator=agitator,
            drain_valve=drain,
        ).with_pumps({tag: rate for tag, rate in pumps.items() if rate > 0.0})

    # --- temperature ---------------------------------------------------------------------

    def _heater_off(self) -> float:
        if self._heating:
            self._pid.reset()
            self._proportioner.reset()
            self._cooling_proportioner.reset()
            self._thermostat.reset()
            self._cool_thermostat.reset()
            self._exotherm.reset()
        self._heating = False
        self.duty = 0.0
        self.cooling_duty = 0.0
        return 0.0

    def _cooling_capacity_w(self, targets: PhaseTargets, temperature_c: float) -> float:
        if not targets.cooling or self._cool_w_k <= 0.0:
            return 0.0
        return max(0.0, self._cool_w_k * (temperature_c - self._tuning.cooling_water_c))

    def _temperature(
        self, targets: PhaseTargets, image: ProcessImage, released_w: float
    ) -> TemperatureOutputs:
        reading = image.temperature
        sp = targets.temperature_c
        if not reading.good or reading.value is None:
            self._heater_off()
            return TemperatureOutputs()
        t = reading.value
        if sp is None:
            self._heater_off()
            if targets.cooling and self._cool_w_k > 0.0:
                # A phase that cools toward `temperature_below_c` with no setpoint: jacket open.
                self.cooling_duty = 1.0
                return TemperatureOutputs(cooling=True)
            return TemperatureOutputs()
        self._heating = True
        now = image.now
        tuning = self._tuning
        cool_max_w = self._cooling_capacity_w(targets, t)
        if tuning.mode == "on_off":
            heat = self._thermostat.update(setpoint=sp, measured=t)
            self.duty = targets.max_heater_duty if heat else 0.0
            cool = cool_max_w > 0.0 and self._cool_thermostat.update(
                setpoint=sp + _ON_OFF_COOL_BANDS * tuning.on_off_band_c, measured=t
            )
            self.cooling_duty = 1.0 if cool else 0.0
        else:
            ff = -released_w / self._heater_w if tuning.exotherm_feed_forward else 0.0
            duty = self._pid.update(
                setpoint_c=sp,
                measured_c=t,
                now=now,
                max_duty=targets.max_heater_duty,
                min_duty=-cool_max_w / self._heater_w,
                feed_forward=ff,
            )
            self.duty = max(0.0, duty)
            self.cooling_duty = (
                min(1.0, -duty * self._heater_w / cool_max_w) if duty < 0.0 and cool_max_w else 0.0
            )
        heater_on_s = self._proportioner.on_time_remaining(duty=self.duty, now=now)
        cooling = (
            self._cooling_proportioner.on_time_remaining(duty=self.cooling_duty, now=now) > 0.0
        )
        self._exotherm.update(
            now=now,
            temperature_c=t,
            setpoint_c=sp,
            heater_duty=self.duty,
            cooling_w=self.cooling_duty * cool_max_w,
            cooling_spare_w=(1.0 - self.cooling_duty) * cool_max_w,
            released_w=released_w,
            pending_j=self._reaction.pending_j,
        )
        return TemperatureOutputs(heater_on_s=heater_on_s, cooling=cooling)

    def _limit_exothermic(
        self, pumps: dict[str, float], targets: PhaseTargets, ph_now: float | None
    ) -> dict[str, float]:
        """Recipe doses and feeds slowed to what the unit can take of their heat."""
        if targets.temperature_c is None or self._tuning.mode == "on_off":
            return pumps
        for tag, rate in list(pumps.items()):
            limit = self._heat_limit(tag, ph_now)
            if rate > limit:
                pump = self._pumps[tag]
                pumps[tag] = limit if limit >= pump.min_ml_min else 0.0
        return pumps

    def _heat_limit(self, tag: str, ph_now: float | None) -> float:
        immediate, delayed = self._reaction.heat_per_ml(tag, ph=ph_now)
        return self._exotherm.limit_ml_min(immediate_j_ml=immediate, delayed_j_ml=delayed)

    # --- pH ------------------------------------------------------------------------------

    def _ph_dose(self, targets: PhaseTargets, image: ProcessImage, ph_now: float | None) -> PhDose:
        target = targets.ph
        assert target is not None
        reagent = self._pumps[target.pump]
        tuning = self._ph_tuning(target.tuning)
        reading = image.ph
        feed_forward = 0.0
        if target.feed_forward_pump is not None:
            feed = self._pumps[target.feed_forward_pump]
            feed_forward = neutralising_rate_ml_min(
                # What the feed really ran at (after the safety filter), not what was asked.
                feed_ml_min=image.applied.pump(target.feed_forward_pump),
                feed_mol_l=feed.concentration_mol_l,
                equivalents=target.feed_forward_equivalents,
                reagent_mol_l=reagent.concentration_mol_l,
            )
        if tuning.mode == "on_off":
            self._ph = None
            if self._ph_switch is None or self._ph_for != target:
                self._ph_switch = OnOff(band=tuning.on_off_band, rising=target.raises)
                self._ph_for = target
            if not reading.good or reading.value is None:
                self._ph_switch.reset()
                return PhDose()
            on = self._ph_switch.update(setpoint=target.setpoint, measured=reading.value)
            rate = max(tuning.on_off_ml_min, 2.0 * feed_forward) if on else 0.0
            return PhDose(ml_min=min(rate, reagent.max_ml_min))
        if self._ph is None or self._ph_for != target:
            counter = (
                counter_ratio(reagent, self._pumps[target.counter_pump])
                if target.counter_pump is not None
                else None
            )
            self._ph = PhDosingController(
                tuning=tuning,
                raises_ph=target.raises,
                reagent_mol_l=reagent.concentration_mol_l,
                counter_ratio=counter,
                learned=self._learned.get((target.pump, target.setpoint)),
            )
            self._ph_for = target
            self._ph_switch = None
        if not reading.good or reading.value is None:
            # Never dose on a bad reading; keep what the loop learned for when it is good again.
            self._ph.pause()
            return PhDose()
        counter_max = counter_min = 0.0
        if target.counter_pump is not None:
            counter_pump = self._pumps[target.counter_pump]
            counter_max = min(
                counter_pump.max_ml_min, self._heat_limit(target.counter_pump, ph_now)
            )
            counter_min = counter_pump.min_ml_min
        dose = self._ph.update(
            setpoint=target.setpoint,
            tolerance=target.tolerance,
            measured_ph=reading.value,
            measured_at=reading.at,
            now=image.now,
            feed_forward_ml_min=feed_forward,
            max_ml_min=min(reagent.max_ml_min, self._heat_limit_ph(target.pump, targets, ph_now)),
            min_ml_min=reagent.min_ml_min,
            counter_max_ml_min=counter_max,
            counter_min_ml_min=counter_min,
        )
        learned = self._ph.learned
        if learned is not None:
            self._learned[(target.pump, target.setpoint)] = learned
        return dose

    def _ph_tuning(self, overrides: tuple[tuple[str, float], ...]) -> PhTuning:
        """The unit's pH tuning with a phase's overrides (made once for each set of them)."""
        base = self._config.control.ph
        if self._tuned_from is not base:
            self._tuned.clear()
            self._tuned_from = base
        tuning = self._tuned.get(overrides)
        if tuning is None:
            tuning = self._tuned[overrides] = base.model_copy(update=dict(overrides))
        return tuning

    def _heat_limit_ph(self, tag: str, targets: PhaseTargets, ph_now: float | None) -> float:
        if targets.temperature_c is None or self._tuning.mode == "on_off":
            return math.inf
        return self._heat_limit(tag, ph_now)
