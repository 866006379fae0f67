"""The anchor for `sim_speedup`: the plant simulator alone, stepping at the scan period (0.1 s)
with the heater on a thermostat and three pumps feeding it (pH solving and precipitation busy),
as bench/bench_plant.py times it. No controller, no devices, no sensors: what a simulated batch
could reach if everything around the plant cost nothing.

`python -m bench.baselines.bare_plant --steps 100000` prints one JSON line (steps, simulated s,
wall s, × real time). Never does less plant work than a batch does; never tuned to look better.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from hal.sim.plant import Plant
from unit_controller.config import UnitConfig, load_config

DT_S = 0.1
SETPOINT_C = 60.0
# What the co-precipitation batch feeds (mL/min): NaOH, NH4OH and the metal-sulfate feed.
PUMPS_ML_MIN = {"P-203": 3.2, "P-204": 1.0, "P-205": 3.0}


def build(config: UnitConfig) -> Plant:
    """The unit's plant (its wiring and plant parameters) with water at the working level, the
    heater, agitator and three pumps on."""
    plant = Plant(params=config.sim.plant, wiring=config.wiring)
    plant.preload("water")
    plant.ssr_on = plant.contactor_closed = plant.agitator_on = True
    plant.pump_ml_min.update(
        {tag: rate for tag, rate in PUMPS_ML_MIN.items() if tag in plant.pump_ml_min}
    )
    return plant


def run(steps: int, *, config: UnitConfig | None = None) -> dict[str, Any]:
    """Step a fresh plant `steps` times by 0.1 s; how fast against real time."""
    plant = build(config or load_config())
    started = time.perf_counter()
    for _ in range(steps):
        plant.ssr_on = plant.temperature_c < SETPOINT_C
        plant.step(DT_S)
    wall_s = time.perf_counter() - started
    simulated_s = steps * DT_S
    return {
        "steps": steps,
        "simulated_s": simulated_s,
        "wall_s": wall_s,
        "us_per_step": wall_s / steps * 1e6,
        "x_real_time": simulated_s / wall_s,
    }


def main() -> None:
    """Print one run as a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    print(json.dumps(run(parser.parse_args().steps)))


if __name__ == "__main__":
    main()
