"""A fleet on one box: N daemons on the simulator, each running a batch and publishing telemetry
at 1 Hz into one Mosquitto; CPU and PSS per unit, and messages lost (seq gaps seen by a
subscriber)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import ExitStack
from typing import Any

import aiomqtt

from bench.core import Context, Figure, Goal
from bench.procs import DaemonProc, Mosquitto, start_batch, usage

ROOT_TOPIC = "fleet/v2"


class SeqCounter:
    """Telemetry received per unit and session, and the gaps in its `seq`."""

    def __init__(self) -> None:
        self.received = 0
        self.lost = 0
        self._last: dict[tuple[str, int], int] = {}

    def seen(self, unit: str, payload: dict[str, Any]) -> None:
        """One telemetry message of `unit`."""
        self.received += 1
        key = (unit, int(payload["sess"]))
        seq = int(payload["seq"])
        last = self._last.get(key)
        if last is not None and seq > last + 1:
            self.lost += seq - last - 1
        if last is None or seq > last:
            self._last[key] = seq

    @property
    def units(self) -> int:
        """Units heard from."""
        return len({unit for unit, _ in self._last})


async def _subscribe(url_port: int, counter: SeqCounter, ready: asyncio.Event) -> None:
    async with aiomqtt.Client("127.0.0.1", url_port, identifier="bench-scale-sub") as client:
        await client.subscribe(f"{ROOT_TOPIC}/+/telemetry", qos=1)
        ready.set()
        async for message in client.messages:
            unit = str(message.topic).split("/")[-2]
            payload = message.payload
            if isinstance(payload, bytes | bytearray):
                counter.seen(unit, json.loads(payload))


def _stop_all(daemons: list[DaemonProc]) -> None:
    for daemon in daemons:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.terminate()
    for daemon in daemons:
        daemon.stop()


def measure(ctx: Context) -> dict[str, Figure]:
    """Start the fleet, let it run, and read /proc for each daemon."""
    return asyncio.run(_measure(ctx))


async def _measure(ctx: Context) -> dict[str, Figure]:
    units = int(ctx.scale(20, 2))
    window_s = ctx.scale(30.0, 2.0)
    work = ctx.scratch("scale")
    counter = SeqCounter()
    with ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(work / "broker"))
        ready = asyncio.Event()
        subscriber = asyncio.create_task(_subscribe(broker.port, counter, ready))
        await asyncio.wait_for(ready.wait(), 30)
        daemons = [
            DaemonProc(
                work / f"unit-{index}",
                speed=1.0,
                args=("--mqtt", broker.url, "--unit-id", f"bench-{index:04d}"),
            )
            for index in range(units)
        ]
        stack.callback(_stop_all, daemons)
        # A few at a time: a whole fleet starting at once would only measure the start-up.
        starting = asyncio.Semaphore(4)

        async def start(daemon: DaemonProc) -> None:
            async with starting:
                await asyncio.to_thread(daemon.start)
                await start_batch(daemon.socket, "coprecipitation")

        await asyncio.gather(*(start(d) for d in daemons))
        ctx.say(f"   {units} daemons running a batch; measuring {window_s:.0f} s")
        await asyncio.sleep(ctx.scale(2.0, 0.5))  # past start-up and the first connect
        before = [usage(d.pid) for d in daemons]
        broker_before = usage(broker.pid)
        received_before = counter.received
        started = time.monotonic()
        await asyncio.sleep(window_s)
        elapsed = time.monotonic() - started
        after = [usage(d.pid) for d in daemons]
        broker_after = usage(broker.pid)
        received = counter.received - received_before
        await asyncio.sleep(ctx.scale(2.0, 0.5))  # the last messages arrive before gaps count
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)
    cpu_per_unit = sum(a.cpu_s - b.cpu_s for a, b in zip(after, before, strict=True))
    cpu_per_unit = cpu_per_unit / elapsed / units * 100
    pss_per_unit = sum(a.pss_mb for a in after) / units
    broker_cpu = (broker_after.cpu_s - broker_before.cpu_s) / elapsed * 100
    cores = len(os.sched_getaffinity(0))
    capacity = cores * 100 / (cpu_per_unit + broker_cpu / units) if cpu_per_unit > 0 else 0.0
    expected = units * elapsed  # one telemetry message a second each
    how = (
        f"{units} daemons (`run --speed 1 --mqtt`, each running the co-precipitation batch) into "
        f"one Mosquitto for {elapsed:.0f} s; {received} telemetry messages received of about "
        f"{expected:.0f} due, from {counter.units} units; Mosquitto itself {broker_cpu:.2f} % "
        "of a core"
    )
    return {
        "scale_units": Figure(float(units), "units", note=how),
        "scale_cpu_percent_per_unit": Figure(cpu_per_unit, "% of a core"),
        "scale_pss_mb_per_unit": Figure(pss_per_unit, "MB"),
        "scale_units_per_box": Figure(
            capacity,
            "units",
            goal=Goal(500, better="higher"),
            note=f"{cores} cores × 100 % / (CPU per unit + its share of Mosquitto's)",
        ),
        "scale_messages_lost": Figure(float(counter.lost), "messages", goal=Goal(0)),
    }


KEYS = (
    "scale_units",
    "scale_cpu_percent_per_unit",
    "scale_pss_mb_per_unit",
    "scale_units_per_box",
    "scale_messages_lost",
)
