"""Commands taken off the broker: handled in the order received, a burst in one turn of the
scan, and none lost unanswered when the link drops while they wait."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import command, until
from tests.mqtt.recorder import mqtt_client
from unit_controller.mqtt.commands import CommandGate, CommandResult
from unit_controller.mqtt.link import FleetLink
from unit_controller.mqtt.outbox import Outbox
from unit_controller.mqtt.settings import MqttSettings
from unit_controller.mqtt.topics import Topics

pytestmark = pytest.mark.xdist_group("real_time")


class Handler:
    """Stands for the unit: every command waits for the next `scan()`, as the controller's
    turns do; the calls, in order, and how many waited at once."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.waiting = 0
        self.most_waiting = 0
        self._scan = asyncio.Event()

    async def __call__(self, name: str, payload: bytes, retained: bool) -> CommandResult:
        command_id = json.loads(payload)["id"]
        self.calls.append(command_id)
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        try:
            await self._scan.wait()
        finally:
            self.waiting -= 1
        return CommandResult(id=command_id, ok=True, error=None, ts=0, command=name)

    def scan(self) -> None:
        """Let every command waiting now go through (the next waits for the next scan)."""
        self._scan.set()
        self._scan = asyncio.Event()


def _refusal(name: str, error: str, payload: bytes) -> CommandResult:
    """As the service's: the id the payload claims, so the fleet can match the refusal."""
    command_id = CommandGate.claims(payload)[0]
    return CommandResult(id=command_id, ok=False, error=error, ts=0, command=name)


@asynccontextmanager
async def _link(broker: Mosquitto, box: Outbox, handler: Handler) -> AsyncIterator[FleetLink]:
    settings = MqttSettings(url=broker.url, root="t", reconnect_min_s=0.05, reconnect_max_s=0.2)
    link = FleetLink(
        settings=settings,
        topics=Topics(root="t", unit="u1"),
        client_id="u1",
        outbox=box,
        birth=lambda session: b"{}",
        alarms=lambda: b"[]",
        on_command=handler,
        on_refusal=_refusal,
    )
    flusher = asyncio.create_task(box.run_flusher(link.committed, every_s=0.01))
    running = asyncio.create_task(link.run())
    try:
        await until(lambda: link.connected)
        yield link
    finally:
        for task in (running, flusher):
            task.cancel()
        await asyncio.gather(running, flusher, return_exceptions=True)


async def _publish(broker: Mosquitto, payloads: list[dict[str, object]], name: str) -> None:
    async with mqtt_client(broker, cn="test-publisher") as client:
        for payload in payloads:
            await client.publish(f"t/u1/cmd/{name}", json.dumps(payload).encode(), qos=1)


def _answers(box: Outbox) -> list[dict[str, Any]]:
    """Every cmd_result the link puts in `box`, as it puts it (once published and acknowledged
    a row leaves the outbox: reading it back raced the broker)."""
    answers: list[dict[str, Any]] = []
    put = box.put

    def recording(kind: str, payload: bytes) -> None:
        if kind == "cmd_result":
            answers.append(json.loads(payload))
        put(kind, payload)

    box.put = recording  # type: ignore[method-assign]
    return answers


async def test_a_burst_is_handed_over_in_one_turn_in_the_order_received(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # Found by a fleet tester: one command a scan, so 600 from a dashboard in a retry loop held
    # an abort sent after them for a minute.
    handler = Handler()
    async with (
        Outbox(path=tmp_path / "o.sqlite3", max_bytes=10**7, max_age_s=3600) as box,
        _link(mosquitto, box, handler) as link,
    ):
        answers = _answers(box)
        first, burst = command(), [command() for _ in range(100)]
        await _publish(mosquitto, [first], "ack")
        await until(lambda: handler.calls == [first["id"]])
        await _publish(mosquitto, burst, "ack")
        await until(lambda: link.commands_waiting == len(burst))
        handler.scan()  # the first goes through; the burst is handed over together
        await until(lambda: handler.waiting == len(burst))
        handler.scan()
        await until(lambda: link.commands_waiting == 0 and handler.waiting == 0)
        assert handler.most_waiting == len(burst)
        order = [first["id"], *(c["id"] for c in burst)]
        assert handler.calls == order
        await until(lambda: len(answers) >= len(order))
        assert [a["id"] for a in answers] == order


async def test_commands_waiting_when_the_link_drops_are_still_handled_and_answered(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # Found by a fleet tester: the broker had its PUBACK, the link dropped, and 54 commands
    # (a hold among them could have been) went unanswered and undone.
    handler = Handler()
    async with (
        Outbox(path=tmp_path / "o.sqlite3", max_bytes=10**7, max_age_s=3600) as box,
        _link(mosquitto, box, handler) as link,
    ):
        answers = _answers(box)
        sent = [command() for _ in range(5)]
        await _publish(mosquitto, sent, "hold")
        await until(lambda: len(handler.calls) + link.commands_waiting == len(sent))
        mosquitto.stop()
        await until(lambda: not link.connected)
        while len(handler.calls) < len(sent) or handler.waiting:
            handler.scan()
            await asyncio.sleep(0.01)
        await until(lambda: len(answers) >= len(sent))
        assert [a["id"] for a in answers] == [c["id"] for c in sent]


async def test_commands_handed_over_or_waiting_when_the_link_stops_are_each_answered(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # Found by a reviewer: the one waiting on a scan when the link stopped got no answer, and
    # the refusals of the rest carried no id to match them by.
    handler = Handler()
    async with Outbox(path=tmp_path / "o.sqlite3", max_bytes=10**7, max_age_s=3600) as box:
        answers = _answers(box)
        sent, more = [command()], [command() for _ in range(3)]
        async with _link(mosquitto, box, handler) as link:
            await _publish(mosquitto, sent, "hold")
            await until(lambda: handler.waiting == 1)  # handed over, waiting for its scan
            await _publish(mosquitto, more, "hold")
            await until(lambda: link.commands_waiting == len(more))
        # The link has stopped (its scans will not come): each was answered, by its id.
        assert sorted(a["id"] for a in answers) == sorted(c["id"] for c in sent + more)


async def test_a_payload_too_large_is_refused_before_it_waits(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    handler = Handler()
    async with (
        Outbox(path=tmp_path / "o.sqlite3", max_bytes=10**7, max_age_s=3600) as box,
        _link(mosquitto, box, handler) as link,
    ):
        answers = _answers(box)
        async with mqtt_client(mosquitto, cn="test-publisher") as client:
            await client.publish("t/u1/cmd/hold", b"x" * 100_000, qos=1)
        await until(lambda: len(answers) >= 1)
        assert link.commands_waiting == 0
        assert handler.calls == []
        (refused,) = answers
        assert refused["error"] == "payload is 100000 bytes; at most 4096 allowed"
