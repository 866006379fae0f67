"""Helpers for fleet tests: a unit config pointed at a test broker, commands, and seq checks.

Test support only.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from tests.mqtt.broker import BrokerTls, Mosquitto
from tests.mqtt.recorder import Received
from unit_controller.config import UnitConfig, load_config
from unit_controller.sim.runner import SimOptions, SimulationRun

ROOT = "fleet/v2"


def fleet_config(
    broker: Mosquitto | str,
    state_dir: Path,
    *,
    unit_id: str = "unit-t1",
    tls: BrokerTls | None = None,
    **mqtt: Any,
) -> UnitConfig:
    """The simulator's unit config, publishing to `broker` with quick reconnects."""
    document = load_config().model_dump(exclude_unset=True)
    document["unit"] = {**document["unit"], "id": unit_id, "state_dir": state_dir}
    url = broker if isinstance(broker, str) else broker.url
    settings: dict[str, Any] = {
        "url": url,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.5,
        "drain_timeout_s": 20.0,
        # as the simulator's example: the tests' commands are unsigned unless they say so
        "allow_unsigned": True,
    }
    if tls is not None:
        settings |= {"ca_file": tls.ca_file, "cert_file": tls.cert_file, "key_file": tls.key_file}
    document["mqtt"] = settings | mqtt
    return UnitConfig.model_validate(document)


def sim_run(
    config: UnitConfig, *, recipe: str = "smoke", speed: float | None = None
) -> SimulationRun:
    """A simulated batch with its progress kept in memory."""
    options = SimOptions(recipe=recipe, seed=1, speed=speed)
    return SimulationRun(config=config, options=options, out=io.StringIO())


def command(
    *, args: dict[str, Any] | None = None, life_s: float = 60.0, **fields: Any
) -> dict[str, Any]:
    """A valid command payload; `fields` replace or add envelope fields."""
    now = round(time.time() * 1000)
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "ts": now,
        "exp": now + round(life_s * 1000),
        "by": "test-operator",
        "args": args or {},
    }
    return payload | fields


def topic(unit: str, leaf: str) -> str:
    """`fleet/v2/<unit>/<leaf>`."""
    return f"{ROOT}/{unit}/{leaf}"


def seqs(messages: Iterable[Received], *, boot: int | None = None) -> list[int]:
    """The `seq` of each telemetry-shaped message (of one boot, if given), in arrival order."""
    out = []
    for message in messages:
        seq, its_boot = _seq_and_boot(message.payload)
        if boot is None or its_boot == boot:
            out.append(seq)
    return out


@cache
def _seq_and_boot(payload: bytes) -> tuple[int, object]:
    # Waits re-check every message each time one arrives: parsing each payload once keeps a
    # backlog of thousands from costing a minute of CPU.
    body = json.loads(payload)
    return body["seq"], body.get("boot")


def in_order_but_redelivered(values: list[int]) -> bool:
    """True when `values` only go up, except for a repeat of something already seen (QoS 1)."""
    seen: set[int] = set()
    highest = -1
    for value in values:
        if value in seen:
            continue
        if value < highest:
            return False
        seen.add(value)
        highest = value
    return True


async def until(condition: Callable[[], bool], *, within_s: float = 30.0) -> None:
    """Wait for `condition`, looking every 20 ms, failing after `within_s` of loop time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():
        assert loop.time() < deadline, "not within the wait"
        await asyncio.sleep(0.02)
