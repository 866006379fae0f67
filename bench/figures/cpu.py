"""Figure: the daemon's CPU, % of one core, beside a bare asyncio loop waking at the same 100 ms
deadlines (bench/baselines/bare_loop.py), interleaved.

The daemon is `unit-controller run` on the simulator at speed 1, Stopped (idle, as a unit spends
most of its day between batches: the scan still runs at 10 Hz), publishing telemetry at 1 Hz
(its default `[mqtt] telemetry_period_s`) to a Mosquitto of its own. Its CPU is the sum over
its threads of /proc/<pid>/task/*/schedstat (ns) across a window; the bare loop measures its own
the same way. Never changes product code.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.baselines import bare_loop
from bench.core import Context, Figure, Goal, median
from bench.procs import Control, DaemonProc, Mosquitto

KEYS = ("cpu_percent",)

WINDOW_S = 13.0
SETTLE_S = 3.0  # after READY: the first telemetry, the link's first exchange


def task_cpu_ns(pid: int) -> int:
    """CPU time (ns) of every thread of `pid` so far, from schedstat."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


def measure(ctx: Context) -> dict[str, Figure]:
    """One daemon for the whole figure; `ctx.repeats` windows of it and of the bare loop, in
    turn (the daemon idles on while the bare loop runs: it costs the bare loop nothing)."""
    window = ctx.scale(WINDOW_S, 0.5)
    daemon_runs: list[float] = []
    bare_runs: list[float] = []
    with Mosquitto(ctx.scratch("cpu-mqtt")) as broker:
        daemon = DaemonProc(ctx.scratch("cpu-daemon"), speed=1.0, args=("--mqtt", broker.url))
        daemon.start()
        try:
            time.sleep(ctx.scale(SETTLE_S, 0.2))
            for _ in range(ctx.repeats):
                daemon_runs.append(_window(daemon.pid, window))
                bare_runs.append(bare_loop.run_process(window)["cpu_percent"])
                ctx.say(
                    f"   daemon {daemon_runs[-1]:.3f} % of a core, bare loop {bare_runs[-1]:.3f} %"
                )
            scan_ms = asyncio.run(_scan_ms(daemon, window))
        finally:
            daemon.stop()
    return {
        "cpu_percent": Figure(
            median(daemon_runs),
            "%",
            goal=Goal(0.4, unit="%"),
            baseline=median(bare_runs),
            note=(
                f"`unit-controller run --speed 1 --mqtt` on the simulator, Stopped (idle; scans "
                f"at 10 Hz), telemetry at 1 Hz; % of one core over {window:g} s windows summed "
                f"over its threads' schedstat, {ctx.repeats} window(s), median; baseline: a bare "
                "asyncio loop with 100 ms deadlines (bench/baselines/bare_loop.py), interleaved; "
                f"its scans took p50 {scan_ms.get('p50')} ms, p99 {scan_ms.get('p99')} ms over "
                "the last window (the `stats` op)"
            ),
            runs=tuple(daemon_runs),
        )
    }


async def _scan_ms(daemon: DaemonProc, seconds: float) -> dict[str, Any]:
    """The daemon's own scan times over the last `seconds` (cold, as at 10 Hz)."""
    async with Control(daemon.socket) as control:
        stats = await control.request("stats", window_s=seconds)
    scan_ms: dict[str, Any] = stats.get("scan_ms", {})
    return scan_ms


def _window(pid: int, seconds: float) -> float:
    """% of one core `pid` used over the next `seconds`."""
    before, started = task_cpu_ns(pid), time.monotonic()
    time.sleep(seconds)
    used, took = task_cpu_ns(pid) - before, time.monotonic() - started
    return 100 * used / 1e9 / took
