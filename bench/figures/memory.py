"""Figures: the daemon's resident memory running a batch, and after draining a 50k-message
backlog to the broker; beside the interpreter floor (bench/baselines/bare_start.py: python,
asyncio and SQLite, idle), interleaved.

`rss_mb`: `unit-controller run --speed 40` with the co-precipitation batch running, its RSS
sampled each second for `BATCH_S` (20 s: 13 simulated minutes, past the longest window the
interlocks keep, 10 minutes of heat balance, so the memory is the batch's steady state that a
unit at speed 1 reaches after a quarter of an hour); the run's peak.
`rss_after_drain_mb`: a daemon started with 50,000 telemetry rows in its outbox and `--mqtt` to
a Mosquitto of its own, once the outbox holds no more than a few live rows and `SETTLE_S`
later. The backlog is read from the outbox file itself (read-only), as the control socket does
not report it. RSS is from /proc (bench.procs.usage). Never changes product code.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from bench.backlog import fill_outbox, outbox_path
from bench.baselines.bare_start import BareStart
from bench.core import Context, Figure, Goal, interleaved, median
from bench.figures.startup import ensure_bytecode
from bench.procs import Control, DaemonProc, Mosquitto, start_batch, usage

KEYS = ("rss_mb", "rss_after_drain_mb")

RECIPE = "coprecipitation"
BATCH_S = 20.0
BATCH_SPEED = 40.0
BACKLOG_ROWS = 50_000
SETTLE_S = 3.0
# Drained: at most this many rows left (live telemetry, 1 Hz, waits for its PUBACK).
DRAINED_ROWS = 5
DRAIN_WAIT_S = 120.0


def batch_rss(base: Path, seconds: float, states: list[str]) -> float:
    """Peak RSS (MB) of a daemon at `BATCH_SPEED` running the batch for `seconds`; its PackML
    state at the end goes to `states` (a batch that stopped running is named in the note)."""
    daemon = DaemonProc(base, speed=BATCH_SPEED)
    try:
        daemon.start()
        asyncio.run(start_batch(daemon.socket, RECIPE))
        peak = 0.0
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            time.sleep(min(1.0, seconds / 4))
            peak = max(peak, usage(daemon.pid).rss_mb)
        states.append(str(asyncio.run(_status(daemon.socket)).get("state")))
        return peak
    finally:
        daemon.stop()


async def _status(socket: Path) -> dict[str, object]:
    async with Control(socket) as control:
        return await control.request("status")


def pending_rows(outbox: Path) -> int:
    """Rows in the outbox file (read-only, beside the daemon that owns it)."""
    with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5)) as db:
        count: int = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        return count


def drained_rss(base: Path, broker_url: str, rows: int, settle_s: float) -> tuple[float, float]:
    """RSS (MB) of a daemon that drained a backlog of `rows`: once drained and `settle_s` later
    (the figure); and the seconds the drain took."""
    state = base / "state"
    state.mkdir(parents=True, exist_ok=True)
    outbox = outbox_path(state)
    fill_outbox(outbox, rows)
    daemon = DaemonProc(base, speed=1.0, args=("--mqtt", broker_url))
    try:
        daemon.start()
        started = time.monotonic()
        while pending_rows(outbox) > DRAINED_ROWS:
            if time.monotonic() - started > DRAIN_WAIT_S:
                raise RuntimeError(f"the backlog of {rows} did not drain in {DRAIN_WAIT_S:.0f} s")
            time.sleep(0.2)
        took = time.monotonic() - started
        time.sleep(settle_s)
        return usage(daemon.pid).rss_mb, took
    finally:
        daemon.stop()


def bare_rss(base: Path) -> Callable[[], float]:
    """Each call: RSS (MB) of the bare process idle after READY."""

    def run() -> float:
        with BareStart(base) as bare:
            bare.start()
            time.sleep(0.5)
            return usage(bare.pid).rss_mb

    return run


def measure(ctx: Context) -> dict[str, Figure]:
    """Batch runs interleaved with the bare process; one drain run (it takes a backlog each)."""
    ensure_bytecode()
    seconds = ctx.scale(BATCH_S, 1.5)
    rows = int(ctx.scale(BACKLOG_ROWS, 500))
    numbers = iter(range(1_000_000))
    states: list[str] = []

    def batch() -> float:
        return batch_rss(ctx.scratch(f"memory-batch-{next(numbers)}"), seconds, states)

    bare = bare_rss(ctx.scratch("memory-bare"))
    batch_runs, bare_runs = interleaved(ctx.repeats, batch, bare)
    for daemon_mb, bare_mb, state in zip(batch_runs, bare_runs, states, strict=True):
        ctx.say(
            f"   running a batch {daemon_mb:.1f} MB ({state} at the end); bare {bare_mb:.1f} MB"
        )
    with Mosquitto(ctx.scratch("memory-broker")) as broker:
        after_drain, took = drained_rss(
            ctx.scratch("memory-drain"), broker.url, rows, ctx.scale(SETTLE_S, 0.5)
        )
    after_bare = bare()
    ctx.say(f"   after draining {rows:,} in {took:.1f} s: {after_drain:.1f} MB")
    baseline = median(bare_runs)
    return {
        "rss_mb": Figure(
            median(batch_runs),
            "MB",
            goal=Goal(40, unit="MB"),
            baseline=baseline,
            note=f"`run --speed {BATCH_SPEED:g}`, the {RECIPE} batch running, peak RSS over "
            f"{seconds:.0f} s ({seconds * BATCH_SPEED / 60:.0f} simulated minutes; state at the "
            f"end: {', '.join(states)}); median of {ctx.repeats}, interleaved with the bare "
            "process (python, asyncio, SQLite) idle",
            runs=tuple(batch_runs),
        ),
        "rss_after_drain_mb": Figure(
            after_drain,
            "MB",
            goal=Goal(40, unit="MB"),
            baseline=after_bare,
            note=f"`run --speed 1 --mqtt` started with {rows:,} telemetry rows (400 B) in its "
            f"outbox, {took:.1f} s to drain them to a local Mosquitto, RSS "
            f"{ctx.scale(SETTLE_S, 0.5):g} s after; one run",
        ),
    }
