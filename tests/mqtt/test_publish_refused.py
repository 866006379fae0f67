"""A message the broker refuses (its ACL denies the topic) is kept, never counted delivered:
the link backs off instead of reconnecting at once, and the unit raises an alarm that names
the topic, returned once the broker takes the backlog."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.mqtt.broker import AclMosquitto
from tests.mqtt.fleet import fleet_config, until
from tests.rig import Rig
from unit_controller.alarms import AlarmState
from unit_controller.mqtt.commands import CommandResult
from unit_controller.mqtt.link import FleetLink
from unit_controller.mqtt.outbox import Outbox
from unit_controller.mqtt.service import REFUSED_ALARM, FleetService
from unit_controller.mqtt.settings import MqttSettings
from unit_controller.mqtt.topics import Topics

pytestmark = pytest.mark.xdist_group("real_time")

WAIT_S = 30.0


async def _refuse(name: str, payload: bytes, retained: bool) -> CommandResult:
    return CommandResult(id=None, ok=False, error="test", ts=0, command=name)


async def test_the_link_keeps_a_refused_row_and_backs_off_instead_of_reconnecting_at_once(
    acl_mosquitto: AclMosquitto, tmp_path: Path
) -> None:
    low_s = 0.05
    settings = MqttSettings(
        url=acl_mosquitto.url, root="denied", reconnect_min_s=low_s, reconnect_max_s=5.0
    )
    with capture_logs() as logs:
        async with Outbox(path=tmp_path / "o.sqlite3", max_bytes=10**6, max_age_s=3600) as box:
            box.put("telemetry", json.dumps({"seq": 0}).encode())
            await box.flush()
            link = FleetLink(
                settings=settings,
                topics=Topics(root="denied", unit="acl-1"),
                client_id="acl-1",
                outbox=box,
                birth=lambda session: b"{}",
                alarms=lambda: b"[]",
                on_command=_refuse,
            )
            flusher = asyncio.create_task(box.run_flusher(link.committed, every_s=0.01))
            running = asyncio.create_task(link.run())

            def refusals() -> list[MutableMapping[str, Any]]:
                # Of stored rows (the announcement's retained topics are refused and said too)
                return [
                    e
                    for e in logs
                    if e["event"] == "mqtt.publish_refused" and "outbox" in e.get("kept", "")
                ]

            try:
                deadline = asyncio.get_running_loop().time() + WAIT_S
                while len(refusals()) < 3:
                    assert asyncio.get_running_loop().time() < deadline, logs
                    await asyncio.sleep(0.02)
            finally:
                for task in (running, flusher):
                    task.cancel()
                await asyncio.gather(running, flusher, return_exceptions=True)
            await box.flush()
            assert box.pending_count == 1
    assert refusals()[0]["topic"] == "denied/acl-1/backfill"
    drops = [e for e in logs if e["event"] == "mqtt.disconnected"]
    # Backoff grows across refusals (each a connection that was up): the third waits at least
    # half of low·2², where a reset backoff would wait at most `low_s` every time.
    assert len(drops) >= 3
    assert float(drops[2]["retry_in_s"]) >= 2 * low_s


async def test_refusals_raise_an_alarm_naming_the_topic_returned_once_the_broker_takes_them(
    acl_mosquitto: AclMosquitto, tmp_path: Path
) -> None:
    rig = Rig(config=fleet_config(acl_mosquitto, tmp_path, unit_id="acl-t2"))
    service = FleetService(
        config=rig.config, controller=rig.controller, clock=rig.clock, state_dir=tmp_path
    )
    await service.start()
    try:
        await until(lambda: service.link.connected)
        service.outbox.put("events", json.dumps({"event": "test"}).encode())
        await until(lambda: service.link.refused is not None)
        await service.check_refused()
        alarms = {a.alarm_id: a for a in rig.controller.alarms.active()}
        message = alarms[REFUSED_ALARM].message
        assert "the broker refused a message on fleet/v2/acl-t2/" in message
        assert "stay in the outbox" in message
        assert "'acl-t2'" in message
        # Information: it stops nothing.
        assert all(t.alarm_id != REFUSED_ALARM for t in rig.controller.alarms.in_effect())
        assert service.outbox.pending_count >= 1

        acl_mosquitto.writable = "#"  # the site fixes its ACL
        acl_mosquitto.stop()
        acl_mosquitto.start()
        await until(lambda: service.link.refused is None and service.outbox.pending_count == 0)
        await service.check_refused()
        states = {a.alarm_id: a.state for a in rig.controller.alarms.active()}
        assert states.get(REFUSED_ALARM) is AlarmState.UNACK_RETURNED
    finally:
        await service.stop(drain_timeout_s=0.0)


async def test_refused_retained_messages_raise_the_alarm_and_the_link_goes_on(
    acl_mosquitto: AclMosquitto, tmp_path: Path
) -> None:
    # The fleet's topics are writable, Home Assistant's discovery configs are not: telemetry
    # flows, but the unit says that what it announces there is refused.
    acl_mosquitto.writable = "fleet/#"
    acl_mosquitto.stop()
    acl_mosquitto.start()
    config = fleet_config(acl_mosquitto, tmp_path, unit_id="acl-t3")
    config = config.model_copy(update={"mqtt": config.mqtt.model_copy(update={"discovery": True})})
    rig = Rig(config=config)
    service = FleetService(
        config=rig.config, controller=rig.controller, clock=rig.clock, state_dir=tmp_path
    )
    await service.start()
    try:
        await until(lambda: service.link.connected and bool(service.link.retained_refused))
        assert all(t.startswith("homeassistant/") for t in service.link.retained_refused)
        service.outbox.put("events", json.dumps({"event": "test"}).encode())
        await until(lambda: service.outbox.pending_count == 0)  # the fleet's own go out
        assert service.link.refused is None
        await service.check_refused()
        message = {a.alarm_id: a for a in rig.controller.alarms.active()}[REFUSED_ALARM].message
        assert "refused a retained message on homeassistant/" in message
        assert "more topics" in message
        assert "and homeassistant/" in message

        acl_mosquitto.writable = "#"  # the site fixes its ACL
        acl_mosquitto.stop()
        acl_mosquitto.start()
        await until(lambda: service.link.connected and not service.link.retained_refused)
        await service.check_refused()
        states = {a.alarm_id: a.state for a in rig.controller.alarms.active()}
        assert states.get(REFUSED_ALARM) is AlarmState.UNACK_RETURNED
    finally:
        await service.stop(drain_timeout_s=0.0)
