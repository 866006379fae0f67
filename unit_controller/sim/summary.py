"""What a simulated run reports: the batch as the unit measured it, beside the plant's truth,
the hazards, and what the devices hold at the end (`sim --json`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.mock.unit import SimulatedUnit
from hal.sim.params import PlantParams, plant_figures
from unit_controller.batch.record import PH_BAND
from unit_controller.controller import UnitController
from unit_controller.machine import State
from unit_controller.sim.truth import TruthRecorder

if TYPE_CHECKING:
    from unit_controller.sim.runner import SimOptions


def run_summary(
    *,
    final: State,
    wall_s: float,
    controller: UnitController,
    unit: SimulatedUnit,
    truth: TruthRecorder,
    recipe: str,
    options: SimOptions,
    plant_params: PlantParams,
    sim_seconds: float,
) -> dict[str, Any]:
    """The run's summary; with no batch (a refused start) the unit's alarms say why."""
    plant = unit.plant
    if controller.batch is not None:
        batch = controller.batch.summary()
    else:
        # No batch ran (a refused start): the unit's alarms say why.
        batch = {
            "phases": [],
            "alarms": [
                {
                    "id": a.alarm_id,
                    "tag": a.tag,
                    "priority": str(a.priority),
                    "raised_s": round(a.raised_at, 1),
                    "message": a.message,  # as a batch's alarms have it
                }
                for a in controller.alarms.history
            ],
            "reagents_ml": {},
            "ph": {"in_band_fraction": {}, "band": PH_BAND},
            "temperature": {"max_c": None, "overshoot_c": 0.0},
        }
    figures = truth.summary()
    return {
        "final_state": final.value,
        "recipe": recipe,
        "seed": options.seed,
        "backend": options.backend,
        "sim_seconds": round(sim_seconds, 1),
        # The batch's times (phases, alarms) count from its start, this far into the run: the
        # run's own clock is the one `--fault` minutes and the progress lines use.
        "batch_start_s": None if controller.batch is None else round(controller.batch.start_s, 1),
        "wall_seconds": round(wall_s, 2),
        "phases": batch["phases"],
        "alarms": batch["alarms"],
        "reagents_ml": batch["reagents_ml"],
        # measured (what the unit itself knows) beside true (the simulated plant's state)
        "ph": {
            "in_band_fraction": batch["ph"]["in_band_fraction"],
            "true_in_band_fraction": figures["true_in_band_fraction"],
            "band": batch["ph"]["band"],
            "max_true_error": figures["max_true_ph_error"],
        },
        "temperature": {
            **batch["temperature"],
            "true_overshoot_c": figures["true_overshoot_c"],
        },
        "iae": figures["iae"],
        "plant": plant_figures(plant_params),
        "hazards": {
            "heater_on_dry_s": round(plant.heater_on_dry_s, 1),
            "max_true_temperature_c": round(plant.max_temperature_c, 2),
            "overflow_l": round(plant.overflow_l, 3),
        },
        "faults": [str(f) for f in options.faults],
        # What the devices hold at the end: each output at its safe state after a trip.
        "outputs": unit.held_outputs(),
    }
