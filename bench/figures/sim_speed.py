"""Figure: how many times real time `sim --fast` runs a co-precipitation batch.

The batch runs in-process as `unit-controller sim --recipe coprecipitation --fast --seed 1` runs
it (SimulationRun on the mock backend, virtual clock, the simulated operator), without a journal
(no `--state-dir`: as bench/bench_scan.py, envelope and campaign runs do), so the figure is the
controller's scan and the simulated unit, not SQLite. Value: simulated seconds / wall seconds of
the whole batch. Baseline, run interleaved: the bare plant stepping at the scan period
(bench/baselines/bare_plant.py), the most a batch could reach if the scan and the devices cost
nothing. On the suite's own tests only the batch's first minutes run.
"""

from __future__ import annotations

import asyncio
import io
import time

from bench.baselines import bare_plant
from bench.core import Context, Figure, Goal, interleaved, median
from unit_controller.config import load_config
from unit_controller.controller import Snapshot
from unit_controller.logs import configure_logging
from unit_controller.sim.runner import SimOptions, SimulationRun

KEYS = ("sim_speedup",)

RECIPE = "coprecipitation"
SEED = 1
# The suite's own tests simulate this much of the batch (s), and step the bare plant as long.
TINY_SIMULATED_S = 180.0
# A real run steps the bare plant this long (s): the batch's length, about.
FULL_BASELINE_SIMULATED_S = 10_000.0


class _Enough(BaseException):
    """Ends a tiny run early (a BaseException: the controller's watcher guard lets it out)."""


def batch_speed(*, stop_after_s: float | None = None) -> tuple[float, int, float]:
    """Run the batch (or its first `stop_after_s` simulated seconds); returns (× real time,
    scans, simulated s)."""
    run = SimulationRun(
        config=load_config(),
        options=SimOptions(recipe=RECIPE, seed=SEED),
        out=io.StringIO(),
    )
    scans = 0
    last_at = 0.0

    def count(snapshot: Snapshot) -> None:
        nonlocal scans, last_at
        scans += 1
        last_at = snapshot.at
        if stop_after_s is not None and snapshot.at >= stop_after_s:
            raise _Enough

    run.watch(count)
    started = time.perf_counter()
    try:
        result = asyncio.run(run.run())
        simulated_s = float(result.summary["sim_seconds"])
    except _Enough:
        simulated_s = last_at
    wall_s = time.perf_counter() - started
    return simulated_s / wall_s, scans, simulated_s


def measure(ctx: Context) -> dict[str, Figure]:
    """The batch's × real time, interleaved with the bare plant's."""
    configure_logging("error")
    stop_after_s = TINY_SIMULATED_S if ctx.tiny else None
    steps = int(ctx.scale(FULL_BASELINE_SIMULATED_S, TINY_SIMULATED_S) / bare_plant.DT_S)
    config = load_config()
    scans: list[int] = []

    def figure() -> float:
        speed, count, simulated_s = batch_speed(stop_after_s=stop_after_s)
        scans.append(count)
        ctx.say(
            f"   sim --fast {RECIPE}: {simulated_s / 3600:.2f} h simulated in {count} scans, "
            f"{speed:,.0f}× real time ({simulated_s / speed / count * 1e6:.0f} µs a scan)"
        )
        return speed

    def baseline() -> float:
        report = bare_plant.run(steps, config=config)
        ctx.say(
            f"   bare plant: {report['us_per_step']:.1f} µs a step, "
            f"{report['x_real_time']:,.0f}× real time"
        )
        return float(report["x_real_time"])

    runs, baseline_runs = interleaved(ctx.repeats, figure, baseline)
    span = f"the first {TINY_SIMULATED_S:g} s of a" if ctx.tiny else "a whole"
    value = median(runs)
    return {
        "sim_speedup": Figure(
            value,
            "× real time",
            goal=Goal(3000, better="higher"),
            baseline=median(baseline_runs),
            runs=tuple(runs),
            note=f"simulated s / wall s of {span} `sim --fast` {RECIPE} batch (seed {SEED}, "
            f"mock backend, no journal; {median(scans):.0f} scans of 0.1 s); baseline: the bare "
            "plant alone stepping at 0.1 s with heater and three pumps busy "
            "(bench/baselines/bare_plant.py)",
        )
    }
