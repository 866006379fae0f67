"""Step 4 of the scan: turn the phase's targets and the process image into desired outputs.

Only computes; the safety filter decides what is allowed and the board writes it.
"""

from __future__ import annotations

from collections.abc import Mapping

from hal.outputs import Outputs
from unit_controller.batch.phase_runner import PhaseTargets, PhTarget
from unit_controller.config import UnitConfig
from unit_controller.control.heater_pid import HeaterPid
from unit_controller.control.ph_dosing import PhDosingController, neutralising_rate_ml_min
from unit_controller.control.time_proportioning import TimeProportioner
from unit_controller.process_image import ProcessImage


class ProcessControllers:
    """The heater loop and the pH loop, fed by the phase's targets each scan."""

    def __init__(self, *, config: UnitConfig) -> None:
        tuning = config.control.heater
        self._config = config
        self._pumps = config.wiring.pumps()
        self._pid = HeaterPid(tuning=tuning)
        self._proportioner = TimeProportioner(
            cycle_s=tuning.cycle_s, min_pulse_s=tuning.min_pulse_s
        )
        self._ph: PhDosingController | None = None
        self._ph_for: PhTarget | None = None
        self._heating = False
        self.duty = 0.0

    def compute(self, targets: PhaseTargets, image: ProcessImage) -> Outputs:
        """Desired outputs for this scan."""
        heater_on_s = self._heater(targets, image)
        pumps = dict(targets.pumps)
        if targets.ph is not None and targets.holding:
            # Held: dose nothing, but keep what the loop learned for the unhold.
            if self._ph is not None and self._ph_for == targets.ph:
                self._ph.pause()
        elif targets.ph is not None:
            rate = self._ph_rate(targets, image)
            pumps[targets.ph.pump] = pumps.get(targets.ph.pump, 0.0) + rate
        else:
            self._ph = None
            self._ph_for = None
        return Outputs(
            heater_on_s=heater_on_s,
            contactor=targets.temperature_c is not None,
            agitator=targets.agitator,
            fill_pump=targets.fill,
            drain_valve=targets.drain,
            purge_valve=targets.purge,
        ).with_pumps({tag: rate for tag, rate in pumps.items() if rate > 0.0})

    def compute_manual(
        self,
        *,
        heater_duty: float,
        pumps: Mapping[str, float],
        now: float,
        temperature_c: float | None = None,
    ) -> Outputs:
        """Desired outputs in manual mode: a fixed heater duty (no PID) and the jogged pumps.

        The duty goes through the same time proportioner, with the contactor closed while it
        runs; no pH loop runs and every other output is off.
        """
        self._ph = None
        self._ph_for = None
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
        return Outputs(heater_on_s=heater_on_s, contactor=heater_duty > 0.0).with_pumps(
            {tag: rate for tag, rate in pumps.items() if rate > 0.0}
        )

    def _heater_off(self) -> float:
        if self._heating:
            self._pid.reset()
            self._proportioner.reset()
        self._heating = False
        self.duty = 0.0
        return 0.0

    def _heater(self, targets: PhaseTargets, image: ProcessImage) -> float:
        reading = image.temperature
        if targets.temperature_c is None or not reading.good or reading.value is None:
            return self._heater_off()
        self._heating = True
        self.duty = self._pid.update(
            setpoint_c=targets.temperature_c,
            measured_c=reading.value,
            now=image.now,
            max_duty=targets.max_heater_duty,
        )
        return self._proportioner.on_time_remaining(duty=self.duty, now=image.now)

    def _ph_rate(self, targets: PhaseTargets, image: ProcessImage) -> float:
        target = targets.ph
        assert target is not None
        reagent = self._pumps[target.pump]
        if self._ph is None or self._ph_for != target:
            tuning = self._config.control.ph.model_copy(update=dict(target.tuning))
            self._ph = PhDosingController(
                tuning=tuning, raises_ph=target.raises, reagent_mol_l=reagent.concentration_mol_l
            )
            self._ph_for = target
        reading = image.ph
        if not reading.good or reading.value is None:
            # Never dose on a bad reading; keep what the loop learned for when it is good again.
            self._ph.pause()
            return 0.0
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
        return self._ph.update(
            setpoint=target.setpoint,
            measured_ph=reading.value,
            now=image.now,
            feed_forward_ml_min=feed_forward,
            max_ml_min=reagent.max_ml_min,
            min_ml_min=reagent.min_ml_min,
        )
