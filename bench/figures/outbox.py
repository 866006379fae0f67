"""Figure: how fast a stored backlog drains to the broker, beside a bare aiomqtt client.

The figure is our real code in-process (Outbox + its flusher + FleetLink) draining a file filled
by bench.backlog; the baseline publishes the same payloads at QoS 1 with the same window.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path

import structlog

from bench.backlog import fill_outbox, outbox_path, telemetry_payload
from bench.baselines import raw_aiomqtt
from bench.core import Context, Figure, Goal, interleaved, median
from bench.procs import Mosquitto
from unit_controller.daemon.gc_policy import settle_after_startup
from unit_controller.logs import configure_logging
from unit_controller.mqtt.commands import CommandResult
from unit_controller.mqtt.link import WINDOW, FleetLink
from unit_controller.mqtt.outbox import Outbox
from unit_controller.mqtt.settings import MqttSettings, OutboxSettings
from unit_controller.mqtt.topics import Topics

KEYS = ("outbox_drain_msgs_per_s", "raw_aiomqtt_qos1_msgs_per_s")
ROOT, UNIT = "bench", "drain-1"
POLL_S = 0.005


async def _refuse(name: str, payload: bytes, retained: bool) -> CommandResult:
    return CommandResult(id=None, ok=False, error="bench", ts=0, command=name)


async def drain(url: str, path: Path) -> float:
    """Open the outbox at `path`, connect and publish until its backlog is 0; seconds from the
    start of the connection to the last row acknowledged (opening the file is not counted)."""
    settings = MqttSettings(url=url, root=ROOT)
    caps = OutboxSettings()
    outbox = Outbox(path=path, max_bytes=caps.max_bytes, max_age_s=caps.max_age_s)
    link = FleetLink(
        settings=settings,
        topics=Topics(root=ROOT, unit=UNIT),
        client_id=UNIT,
        outbox=outbox,
        birth=lambda session: b'{"sess":%d}' % session,
        alarms=lambda: b"[]",
        on_command=_refuse,
    )
    async with outbox:
        flusher = asyncio.create_task(
            outbox.run_flusher(link.committed, every_s=caps.commit_every_s)
        )
        started = time.perf_counter()
        running = asyncio.create_task(link.run())
        try:
            while outbox.pending_count > 0:
                if running.done():
                    running.result()  # the link ended: say why
                await asyncio.sleep(POLL_S)
            seconds = time.perf_counter() - started
            await link.say_offline()
        finally:
            for task in (running, flusher):
                task.cancel()
            await asyncio.gather(running, flusher, return_exceptions=True)
    return seconds


def _interleaved(
    ctx: Context, work: Path, rows: int, payloads: list[bytes], backlogs: Iterator[Path]
) -> tuple[list[float], list[float]]:
    topic = Topics(root=ROOT, unit=UNIT).backfill
    with Mosquitto(work / "broker") as broker:

        def baseline() -> float:
            rate = raw_aiomqtt.run(broker.url, topic, payloads, in_flight=WINDOW)
            ctx.say(f"  raw aiomqtt QoS 1, {WINDOW} in flight: {rate:,.0f} msg/s")
            return rate

        def figure() -> float:
            path = next(backlogs)
            seconds = asyncio.run(drain(broker.url, path))
            ctx.say(f"  outbox drain of {rows} rows: {rows / seconds:,.0f} msg/s")
            for leftover in path.parent.glob(path.name + "*"):
                leftover.unlink()
            return rows / seconds

        base_runs, drain_runs = interleaved(ctx.repeats, baseline, figure)
    return base_runs, drain_runs


def measure(ctx: Context) -> dict[str, Figure]:
    """The drain rate of a filled outbox and the bare client's rate on the same messages."""
    saved = structlog.get_config()
    configure_logging("error")  # the link's info lines would fill the suite's output
    try:
        return _measure(ctx)
    finally:
        structlog.configure(**saved)


def _measure(ctx: Context) -> dict[str, Figure]:
    rows = int(ctx.scale(50_000, 500))
    payloads = [telemetry_payload(seq) for seq in range(rows)]
    work = ctx.scratch("outbox")
    ctx.say(f"outbox: draining {rows} stored messages vs a bare client, {ctx.repeats}×")
    # Every backlog is written first, and on disk, so no drain shares the machine with the
    # writing back of a fill.
    paths = [outbox_path(work / f"state-{run}") for run in range(ctx.repeats)]
    for path in paths:
        fill_outbox(path, rows)
        with path.open("rb") as written:
            os.fsync(written.fileno())
    # As the daemon does once it has started (unit_controller.daemon.gc_policy): what lives as
    # long as the process is frozen out of collections, for the baseline as for the figure.
    settle_after_startup()
    try:
        base_runs, drain_runs = _interleaved(ctx, work, rows, payloads, iter(paths))
    finally:
        gc.unfreeze()  # the next figure group in this process starts as it would have

    base = median(base_runs)
    note = (
        f"{rows} telemetry rows of ~400 B written by bench.backlog, drained in-process by the "
        "unit's own Outbox + run_flusher + FleetLink (not a daemon started with --mqtt) to a "
        "local Mosquitto with no subscriber; timed from the link's connect to pending_count 0 "
        "(every PUBACK back); the daemon's GC policy (collect, then freeze) applied to both"
    )
    return {
        "outbox_drain_msgs_per_s": Figure(
            value=median(drain_runs),
            unit="msg/s",
            goal=Goal(0.9, better="higher", on="ratio"),
            baseline=base,
            note=note,
            runs=tuple(drain_runs),
        ),
        "raw_aiomqtt_qos1_msgs_per_s": Figure(
            value=base,
            unit="msg/s",
            note=f"bench/baselines/raw_aiomqtt.py: one aiomqtt client, {WINDOW} in flight (a "
            f"semaphore; paho's own cap lifted, no timer per publish, as the link publishes), "
            f"QoS 1, the same {rows} payloads from memory, timed from the first publish to the "
            "last PUBACK",
            runs=tuple(base_runs),
        ),
    }
