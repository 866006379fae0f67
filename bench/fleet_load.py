"""A load generator for the fleet view: N simulated units' retained status, birth and alarms, then
flat v2 telemetry at a rate each, stamped when sent, over a few MQTT connections (QoS 1).

Run by bench/bench_fleet_view.py as its own process, so the view's CPU is the view's alone:
    python -m bench.fleet_load --port P --units 1000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from typing import Any

import aiomqtt

from unit_controller.config import load_config
from unit_controller.mqtt.address import DEFAULT_ROOT
from unit_controller.mqtt.payloads import PAYLOAD_FORMAT, telemetry_metrics

_SAMPLE = {"int": 0, "float": 21.5, "bool": False, "string": "production"}


def unit_id(n: int) -> str:
    """The n-th generated unit's id."""
    return f"load-{n:04d}"


def telemetry(n: int, seq: int, ts_ms: int) -> dict[str, Any]:
    """A telemetry message of the simulator's unit, as flat as a real one and as long."""
    message: dict[str, Any] = {}
    for metric in telemetry_metrics(load_config().wiring):
        message[metric.name] = None if metric.nullable and n % 7 == 0 else _SAMPLE[metric.type]
    return message | {"ts": ts_ms, "seq": seq, "state": "EXECUTE", "phase": "leach"}


def birth(n: int) -> dict[str, Any]:
    """The retained birth of unit n."""
    return {"format": PAYLOAD_FORMAT, "unit": unit_id(n), "site": "load", "version": "load",
            "telemetry_period_s": 1.0, "metrics": [], "recipes": [], "commands": []}  # fmt: skip


def alarms(n: int) -> dict[str, Any]:
    """One unit in ten has an alarm."""
    alarm = {"id": "level_low_low", "tag": "LSLL-101", "priority": "high",
             "state": "unack_active", "message": "level below low-low"}  # fmt: skip
    return {"ts": 0, "alarms": [] if n % 10 else [alarm]}


async def _client_units(
    port: int, units: list[int], *, rate_hz: float, seconds: float, root: str, start: float
) -> int:
    """Publish for `units` over one connection; the number of telemetry messages sent."""
    sent = 0
    template = {n: telemetry(n, 0, 0) for n in units}
    # aiomqtt warns of every publish past ten in flight: here that is the load, by design.
    quiet = logging.getLogger("bench.fleet_load.mqtt")
    quiet.setLevel(logging.ERROR)
    async with aiomqtt.Client("127.0.0.1", port, timeout=30, logger=quiet) as client:
        for n in units:
            base = f"{root}/{unit_id(n)}"
            await client.publish(f"{base}/status", b"online", qos=1, retain=True)
            await client.publish(f"{base}/birth", json.dumps(birth(n)), qos=1, retain=True)
            await client.publish(f"{base}/alarms", json.dumps(alarms(n)), qos=1, retain=True)
        period = 1.0 / rate_hz
        total = len(units)
        pending: set[asyncio.Task[None]] = set()
        seq = 0
        while time.monotonic() - start < seconds:
            tick = start + seq * period
            for i, n in enumerate(units):
                # Each unit at its own moment of the period, as a fleet's clocks fall.
                due = tick + period * (i / total)
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                payload = json.dumps(template[n] | {"ts": int(time.time() * 1000), "seq": seq})
                task = asyncio.create_task(
                    client.publish(f"{root}/{unit_id(n)}/telemetry", payload, qos=1)
                )
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            seq += 1
        await asyncio.gather(*pending, return_exceptions=True)
    return sent


async def generate(
    port: int, *, units: int, rate_hz: float, seconds: float, clients: int, root: str
) -> int:
    """Every unit's messages for `seconds`; the telemetry messages sent."""
    start = time.monotonic() + 1.0  # all connected and retained before the first tick
    groups = [list(range(units))[k::clients] for k in range(clients)]
    counts = await asyncio.gather(
        *(
            _client_units(port, g, rate_hz=rate_hz, seconds=seconds, root=root, start=start)
            for g in groups
            if g
        )
    )
    return sum(counts)


def main() -> None:
    """The command line; prints the count sent as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--rate-hz", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--root", default=DEFAULT_ROOT)
    args = parser.parse_args()
    sent = asyncio.run(
        generate(
            args.port,
            units=args.units,
            rate_hz=args.rate_hz,
            seconds=args.seconds,
            clients=args.clients,
            root=args.root,
        )
    )
    print(json.dumps({"sent": sent}), flush=True)


if __name__ == "__main__":
    main()
