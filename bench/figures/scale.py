"""A fleet on one box: N simulated units, each running a batch and publishing telemetry at 1 Hz
into one Mosquitto; CPU and PSS per unit, and messages lost (seq gaps seen by a subscriber).

The units are hosted by fleet test rigs (`unit-controller rig`), one process per core, as a
fleet test box would run them: each unit its own plant, controller and MQTT client, the
interpreter and the scan tick shared. What one daemon costs is `cpu_percent` and `rss_mb`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiomqtt

from bench.core import Context, Figure, Goal
from bench.procs import ROOT, Mosquitto, terminate, usage

ROOT_TOPIC = "fleet/v2"
# Units in all (split over one rig a core): enough that the per-unit figures are the units'
# own, not the processes'.
UNITS = 200


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


class RigProc:
    """`unit-controller rig` with `units` units named `<prefix>0001`…, as a real process."""

    def __init__(self, base: Path, *, units: int, prefix: str, broker_url: str) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.log = base / "rig.log"
        command = [
            sys.executable, "-m", "unit_controller.cli", "--log-level", "warning", "rig",
            "--units", str(units), "--prefix", prefix, "--mqtt", broker_url,
            "--state-dir", str(base / "state"),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM (the rig stops its units and drains), wait, SIGKILL after the wait."""
        terminate(self.proc, wait_s=60)


def measure(ctx: Context) -> dict[str, Figure]:
    """Start the rigs, let the units run, and read /proc for each rig."""
    return asyncio.run(_measure(ctx))


async def _heard_from(counter: SeqCounter, units: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while counter.units < units:
        if time.monotonic() > deadline:
            raise RuntimeError(f"scale: heard from {counter.units} of {units} units")
        await asyncio.sleep(0.5)


async def _measure(ctx: Context) -> dict[str, Figure]:
    cores = len(os.sched_getaffinity(0))
    units = int(ctx.scale(UNITS, 2 * cores))
    per_rig = -(-units // cores)
    window_s = ctx.scale(30.0, 2.0)
    work = ctx.scratch("scale")
    counter = SeqCounter()
    with ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(work / "broker"))
        ready = asyncio.Event()
        subscriber = asyncio.create_task(_subscribe(broker.port, counter, ready))
        await asyncio.wait_for(ready.wait(), 30)
        rigs: list[RigProc] = []
        left = units
        for index in range(cores):
            count = min(per_rig, left)
            if count <= 0:
                break
            left -= count
            rig = RigProc(
                work / f"rig-{index}", units=count, prefix=f"bench{index}-", broker_url=broker.url
            )
            stack.callback(rig.stop)
            rigs.append(rig)
        await _heard_from(counter, units, timeout_s=120)
        ctx.say(
            f"   {units} units in {len(rigs)} rigs, each running a batch; measuring "
            f"{window_s:.0f} s"
        )
        await asyncio.sleep(ctx.scale(3.0, 0.5))  # past start-up and the first connects
        before = [usage(r.pid) for r in rigs]
        broker_before = usage(broker.pid)
        received_before = counter.received
        started = time.monotonic()
        await asyncio.sleep(window_s)
        elapsed = time.monotonic() - started
        after = [usage(r.pid) for r in rigs]
        broker_after = usage(broker.pid)
        received = counter.received - received_before
        await asyncio.sleep(ctx.scale(2.0, 0.5))  # the last messages arrive before gaps count
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)
    cpu_per_unit = sum(a.cpu_s - b.cpu_s for a, b in zip(after, before, strict=True))
    cpu_per_unit = cpu_per_unit / elapsed / units * 100
    pss_per_unit = sum(a.pss_mb for a in after) / units
    broker_cpu = (broker_after.cpu_s - broker_before.cpu_s) / elapsed * 100
    capacity = cores * 100 / (cpu_per_unit + broker_cpu / units) if cpu_per_unit > 0 else 0.0
    expected = units * elapsed  # one telemetry message a second each
    how = (
        f"{units} simulated units in {len(rigs)} fleet test rigs (`unit-controller rig`, one "
        "process a core; each unit its own plant, controller, MQTT client and outbox, running "
        f"the co-precipitation batch) into one Mosquitto for {elapsed:.0f} s; {received} "
        f"telemetry messages received of about {expected:.0f} due, from {counter.units} units; "
        f"Mosquitto itself {broker_cpu:.2f} % of a core. One daemon per unit costs what "
        "`cpu_percent` and `rss_mb` say"
    )  # fmt: skip
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
