"""Speed of the plant simulator: µs per `Plant.step(0.1)` with pumps, heater and pH solving busy.

A plain script (`python bench/bench_plant.py`), never a test: timings belong to no assertion.
"""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hal.sim.params import PlantParams
from hal.sim.plant import Plant
from hal.sim.sensors import SensorModel
from hal.wiring import BoardWiring

STEPS = 100_000
DT = 0.1
SETPOINT_C = 60.0
CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "sim.toml"


def build() -> Plant:
    """A co-precipitation-like plant: water at the working level, heater and three pumps on."""
    with CONFIG.open("rb") as f:
        devices = tomllib.load(f)["devices"]
    plant = Plant(params=PlantParams(), wiring=BoardWiring(devices=devices))
    plant.preload("water")
    plant.ssr_on = plant.contactor_closed = plant.agitator_on = True
    plant.pump_ml_min.update({"P-203": 3.2, "P-204": 1.0, "P-205": 3.0})
    return plant


def main() -> None:
    """Time the bare plant, then the plant with its two sensor models."""
    import random

    plant = build()
    start = time.perf_counter()
    for _ in range(STEPS):
        plant.ssr_on = plant.temperature_c < SETPOINT_C
        plant.step(DT)
    bare = (time.perf_counter() - start) / STEPS * 1e6
    print(
        f"plant.step({DT}): {bare:.1f} µs/step over {STEPS} steps "
        f"({plant.time_s / 3600:.2f} h simulated; pH {plant.ph:.2f}, "
        f"{plant.temperature_c:.1f} °C, {plant.volume_l:.1f} L, "
        f"overflow {plant.overflow_l:.1f} L)"
    )

    plant = build()
    rng = random.Random(1)
    rtd = SensorModel(tau_s=20.0, dead_time_s=0.0, noise=0.02, rng=rng, initial=plant.temperature_c)
    ph = SensorModel(tau_s=8.0, dead_time_s=8.0, noise=0.004, rng=rng, initial=plant.ph)
    start = time.perf_counter()
    for _ in range(STEPS):
        plant.ssr_on = plant.temperature_c < SETPOINT_C
        plant.step(DT)
        rtd.update(plant.temperature_c, DT)
        ph.update(plant.ph, DT)
    both = (time.perf_counter() - start) / STEPS * 1e6
    print(f"plant.step + 2 sensor updates: {both:.1f} µs/step")


if __name__ == "__main__":
    main()
