"""Benchmark: µs per controller scan on the simulated unit, and a whole batch's wall time.

Run: .venv/bin/python bench/bench_scan.py [recipe]  (default coprecipitation). Prints figures;
asserts nothing (speed targets are checked here, never in tests).
"""

from __future__ import annotations

import asyncio
import io
import sys
import time

from unit_controller.config import load_config
from unit_controller.logs import configure_logging
from unit_controller.sim.runner import SimOptions, SimulationRun

# Issue target: a whole co-precipitation batch under 30 s of wall time.
TARGET_BATCH_S = 30.0


def main() -> None:
    recipe = sys.argv[1] if len(sys.argv) > 1 else "coprecipitation"
    configure_logging("error")
    config = load_config()
    run = SimulationRun(config=config, options=SimOptions(recipe=recipe, seed=1), out=io.StringIO())
    scans = 0

    def count(_: object) -> None:
        nonlocal scans
        scans += 1

    run.watch(count)
    start = time.perf_counter()
    result = asyncio.run(run.run())
    wall = time.perf_counter() - start
    sim_s = result.summary["sim_seconds"]
    print(f"recipe {recipe}: {result.final_state}, {sim_s / 3600:.2f} h simulated")
    print(
        f"  {scans} scans in {wall:.2f} s wall: {wall / scans * 1e6:.0f} µs per scan "
        f"(plant step included), {sim_s / wall:.0f}× real time"
    )
    verdict = "within" if wall < TARGET_BATCH_S else "OVER"
    print(f"  batch wall time {wall:.1f} s: {verdict} the {TARGET_BATCH_S:.0f} s target")


if __name__ == "__main__":
    main()
