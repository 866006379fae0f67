"""Draining a stored backlog through a real broker: oldest first on `backfill`, live telemetry
beside it, and nothing lost when the broker goes away in the middle of it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import ROOT, in_order_but_redelivered, seqs
from tests.mqtt.recorder import Recorder
from unit_controller.mqtt.commands import CommandResult
from unit_controller.mqtt.link import FleetLink
from unit_controller.mqtt.outbox import Outbox
from unit_controller.mqtt.settings import MqttSettings
from unit_controller.mqtt.topics import Topics

pytestmark = pytest.mark.xdist_group("real_time")

UNIT = "drain-t1"
WAIT_S = 60.0


def _telemetry(seq: int) -> bytes:
    return json.dumps({"seq": seq, "boot": 1, "pad": "x" * 300}).encode()


async def _refuse(name: str, payload: bytes, retained: bool) -> CommandResult:
    return CommandResult(id=None, ok=False, error="test", ts=0, command=name)


async def _stored(path: Path, rows: int) -> None:
    async with Outbox(path=path, max_bytes=10**9, max_age_s=3600) as box:
        for seq in range(rows):
            box.put("telemetry", _telemetry(seq))
        await box.flush()


@asynccontextmanager
async def _unit(broker: Mosquitto, path: Path) -> AsyncIterator[tuple[FleetLink, Outbox]]:
    """The outbox at `path`, its flusher and the link, as the fleet service runs them."""
    settings = MqttSettings(url=broker.url, root=ROOT, reconnect_min_s=0.05, reconnect_max_s=0.5)
    async with Outbox(path=path, max_bytes=10**9, max_age_s=3600) as outbox:
        link = FleetLink(
            settings=settings,
            topics=Topics(root=ROOT, unit=UNIT),
            client_id=UNIT,
            outbox=outbox,
            birth=lambda session: b'{"sess":%d}' % session,
            alarms=lambda: b"[]",
            on_command=_refuse,
        )
        tasks = [
            asyncio.create_task(outbox.run_flusher(link.committed, every_s=0.01)),
            asyncio.create_task(link.run()),
        ]
        try:
            yield link, outbox
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _until(condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        assert loop.time() < deadline, "not within the wait"
        await asyncio.sleep(0.01)


async def test_the_backlog_goes_out_oldest_first_while_live_telemetry_goes_on(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    path, backlog = tmp_path / "outbox.sqlite3", 3000
    await _stored(path, backlog)
    async with Recorder(mosquitto) as rec, _unit(mosquitto, path) as (link, outbox):
        assert await link.wait_connected(WAIT_S)
        for seq in range(backlog, backlog + 3):
            outbox.put("telemetry", _telemetry(seq))
        await _until(lambda: outbox.pending_count == 0)
        await _until(
            lambda: len(set(seqs(rec.on("backfill")))) == backlog and len(rec.on("telemetry")) == 3
        )
    backfill, live = seqs(rec.on("backfill")), seqs(rec.on("telemetry"))
    assert sorted(set(backfill)) == list(range(backlog))
    assert in_order_but_redelivered(backfill)
    assert live == [backlog, backlog + 1, backlog + 2]
    # Live telemetry is not held back until the backlog is out: it goes between its pages.
    last_backfill = max(i for i, r in enumerate(rec.received) if r.topic.endswith("/backfill"))
    first_live = min(i for i, r in enumerate(rec.received) if r.topic.endswith("/telemetry"))
    assert first_live < last_backfill


async def test_a_broker_outage_in_the_middle_of_the_backfill_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, backlog = tmp_path / "outbox.sqlite3", 4000
    await _stored(path, backlog)
    async with (
        Recorder(mosquitto, persistent=True) as rec,
        _unit(mosquitto, path) as (link, outbox),
    ):
        acked = 0
        ack = outbox.ack

        def ack_then_stop_the_broker(row_id: int) -> None:
            nonlocal acked
            ack(row_id)
            acked += 1
            if acked == 500:  # a window of publishes is in flight: the broker goes now
                mosquitto.stop()

        monkeypatch.setattr(outbox, "ack", ack_then_stop_the_broker)
        await _until(lambda: not mosquitto.running)
        assert 0 < outbox.pending_count <= backlog - 500
        mosquitto.start()
        await _until(lambda: outbox.pending_count == 0)
        assert link.connects >= 2
        await _until(lambda: len(set(seqs(rec.on("backfill")))) == backlog)
    backfill = seqs(rec.on("backfill"))
    assert sorted(set(backfill)) == list(range(backlog))
    assert in_order_but_redelivered(backfill)
    async with Outbox(path=path, max_bytes=10**9, max_age_s=3600) as reopened:
        assert reopened.pending_count == 0
        assert await reopened.read(after_id=0, up_to_id=10**9, limit=10) == []


async def test_a_backlog_stored_before_the_upgrade_to_v2_goes_out_flat(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    from tests.mqtt.test_telemetry_v2 import V1

    path = tmp_path / "outbox.sqlite3"
    async with Outbox(path=path, max_bytes=10**9, max_age_s=3600) as box:
        for seq in range(3):
            box.put("telemetry", json.dumps(V1 | {"seq": seq}).encode())
        box.put("event", b'{"kind":"note","bad":{"kept":1}}')  # only telemetry is reshaped
        await box.flush()
    async with Recorder(mosquitto) as rec, _unit(mosquitto, path) as (link, outbox):
        assert await link.wait_connected(WAIT_S)
        await _until(lambda: outbox.pending_count == 0)
        await _until(lambda: len(rec.on("backfill")) >= 3 and len(rec.on("events")) >= 1)
    sent = rec.json("backfill")
    assert sorted({m["seq"] for m in sent}) == [0, 1, 2]
    assert all("bad" not in m and "pumps_ml_min" not in m for m in sent)
    assert all(m["temperature_c_bad"] == "device silent" for m in sent)
    assert rec.json("events")[0] == {"kind": "note", "bad": {"kept": 1}}
