"""Figures: how late the daemon's scans start, beside a bare asyncio loop with the same 100 ms
deadlines (bench/baselines/bare_loop.py), each run as its own process, interleaved.

The daemon runs as a unit does on a working day: `unit-controller run` on the simulator at speed
1, publishing to a Mosquitto of its own (telemetry at its default period), a co-precipitation
batch under way, and a console-like `watch` stream connected. Its lateness is what the driver
records (the `stats` op) over the run's last `RUN_S` seconds. Never changes product code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from pathlib import Path
from typing import Any

from bench.baselines import bare_loop
from bench.core import Context, Figure, Goal, median
from bench.procs import WAIT_S, Control, DaemonProc, Mosquitto

KEYS = (
    "scan_p99_lateness_ms",
    "scan_max_lateness_ms",
    "bare_loop_p99_lateness_ms",
    "bare_loop_max_lateness_ms",
)

RECIPE = "coprecipitation"
RUN_S = 20.0
PERIOD_S = 0.1  # the example config's scan period, and the bare loop's


def measure(ctx: Context) -> dict[str, Figure]:
    """`ctx.repeats` daemon runs and bare-loop runs, interleaved; medians of their p99 and max."""
    seconds = ctx.scale(RUN_S, 1.0)
    daemon_runs: list[dict[str, Any]] = []
    bare_runs: list[dict[str, Any]] = []
    numbers = itertools.count()
    with Mosquitto(ctx.scratch("lateness-mqtt")) as broker:
        for _ in range(ctx.repeats):
            base = ctx.scratch(f"lateness-daemon-{next(numbers)}")
            daemon_runs.append(asyncio.run(daemon_run(base, broker.url, seconds)))
            bare_runs.append(bare_loop.run_process(seconds, PERIOD_S))
            ctx.say(
                f"   daemon p99 {daemon_runs[-1]['p99']:.2f} ms, max {daemon_runs[-1]['max']:.2f}"
                f" ms ({daemon_runs[-1]['state']}, gc {daemon_runs[-1]['gc']}); bare loop p99 "
                f"{bare_runs[-1]['p99_lateness_ms']:.2f} ms, max "
                f"{bare_runs[-1]['max_lateness_ms']:.2f} ms"
            )
    scan_p99 = [r["p99"] for r in daemon_runs]
    scan_max = [r["max"] for r in daemon_runs]
    bare_p99 = [r["p99_lateness_ms"] for r in bare_runs]
    bare_max = [r["max_lateness_ms"] for r in bare_runs]
    how = (
        f"`unit-controller run --speed 1 --mqtt` on the simulator, {RECIPE} batch running, a "
        f"`watch` stream connected; scan-start lateness over {seconds:g} s read with the "
        f"`stats` op; {ctx.repeats} run(s), median; baseline: bare asyncio loop with "
        f"{PERIOD_S * 1000:g} ms deadlines (bench/baselines/bare_loop.py) for as long, "
        "interleaved"
    )
    return {
        "scan_p99_lateness_ms": Figure(
            median(scan_p99),
            "ms",
            goal=Goal(1.2, on="ratio"),
            baseline=median(bare_p99),
            note=how,
            runs=tuple(scan_p99),
        ),
        "scan_max_lateness_ms": Figure(
            median(scan_max),
            "ms",
            goal=Goal(2.0, on="ratio"),
            baseline=median(bare_max),
            note=how,
            runs=tuple(scan_max),
        ),
        "bare_loop_p99_lateness_ms": Figure(median(bare_p99), "ms", runs=tuple(bare_p99)),
        "bare_loop_max_lateness_ms": Figure(median(bare_max), "ms", runs=tuple(bare_max)),
    }


async def daemon_run(base: Path, broker_url: str, seconds: float) -> dict[str, Any]:
    """One daemon: start it, start a batch, watch it for `seconds`; its lateness p99/max (ms)
    over that time, the state it reached and its collections."""
    daemon = DaemonProc(base, speed=1.0, args=("--mqtt", broker_url))
    await asyncio.to_thread(daemon.start)
    try:
        async with Control(daemon.socket) as control:
            await start_batch(control, RECIPE)
            async with watching(daemon.socket):
                await asyncio.sleep(seconds)
                stats = await control.request("stats", window_s=seconds)
            state = (await control.request("status"))["state"]
    finally:
        await asyncio.to_thread(daemon.stop)
    late = stats["lateness_ms"]
    return {
        "p99": late["p99"],
        "max": late["max"],
        "state": state,
        "gc": stats["gc"]["collections"],
    }


async def start_batch(control: Control, recipe: str) -> None:
    """Reset to IDLE and start `recipe`, as an operator would."""
    await control.request("reset")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while (await control.request("status"))["state"] != "IDLE":
        if loop.time() > deadline:
            raise RuntimeError("the daemon did not reach IDLE after reset")
        await asyncio.sleep(0.05)
    await control.request("start", recipe=recipe)


@contextlib.asynccontextmanager
async def watching(socket: Path) -> Any:
    """A console-like client with a `watch` stream, reading every line until the block ends."""
    reader, writer = await asyncio.open_unix_connection(str(socket))
    await asyncio.wait_for(reader.readline(), WAIT_S)  # hello
    writer.write(json.dumps({"id": 1, "op": "watch", "args": {}}).encode() + b"\n")
    await writer.drain()
    lines = 0

    async def read() -> None:
        nonlocal lines
        while await reader.readline():
            lines += 1

    task = asyncio.create_task(read())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    if lines < 2:
        raise RuntimeError(f"the watch stream sent {lines} line(s)")
