"""The fleet service without a broker: the outbox keeps telemetry, caps it, and says so.

Scans run on a virtual clock; nothing here waits on the network.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.mqtt.fleet import fleet_config
from tests.rig import Rig
from unit_controller.mqtt import service as service_module
from unit_controller.mqtt.service import DROPPED_ALARM, FleetService

# Nothing listens on port 9 of the loopback (discard): the link keeps failing to connect.
NO_BROKER = "mqtt://127.0.0.1:9"


async def _service(rig: Rig, tmp_path: Path) -> FleetService:
    service = FleetService(
        config=rig.config, controller=rig.controller, clock=rig.clock, state_dir=tmp_path
    )
    await service.start()
    await _broker_found_away(service)
    return service


async def _broker_found_away(service: FleetService) -> None:
    # Telemetry waits (a few controller seconds) for the first connection attempt; these tests
    # start from a broker already found away, as a unit does a moment after boot.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30.0
    while not service.link.tried:
        assert loop.time() < deadline, "the link never tried to connect"
        await asyncio.sleep(0.01)


async def test_telemetry_waits_in_the_outbox_while_the_broker_is_away(tmp_path: Path) -> None:
    rig = Rig(config=fleet_config(NO_BROKER, tmp_path))
    service = await _service(rig, tmp_path)
    try:
        await rig.run_for(60.0)
        await service.outbox.flush()
        assert service.bridge.seq == 61  # one a second, 0..60
        assert service.outbox.pending_count >= 61
        rows = await service.outbox.read(after_id=0, up_to_id=10**9, limit=1000)
        telemetry = [json.loads(r.payload) for r in rows if r.kind == "telemetry"]
        assert [t["seq"] for t in telemetry] == list(range(61))
        assert {t["sess"] for t in telemetry} == {0}  # never connected
    finally:
        report = await service.stop(drain_timeout_s=0.0)
    assert report.left >= 61
    assert report.offline_published is False


async def test_after_a_restart_with_the_broker_away_messages_carry_the_last_session(
    tmp_path: Path,
) -> None:
    # sess counts connections across restarts: going back to 0 would read as a new history.
    rig = Rig(config=fleet_config(NO_BROKER, tmp_path))
    service = await _service(rig, tmp_path)
    try:
        for _ in range(3):  # as three connections earlier in the unit's life would have
            await service.outbox.next_session()
    finally:
        await service.stop(drain_timeout_s=0.0)
    rig = Rig(config=fleet_config(NO_BROKER, tmp_path))
    service = await _service(rig, tmp_path)
    try:
        await rig.run_for(5.0)
        await service.outbox.flush()
        rows = await service.outbox.read(after_id=0, up_to_id=10**9, limit=1000)
        telemetry = [json.loads(r.payload) for r in rows if r.kind == "telemetry"]
        assert telemetry
        assert {t["sess"] for t in telemetry if t["boot"] == 2} == {3}
    finally:
        await service.stop(drain_timeout_s=0.0)


async def test_a_full_outbox_drops_the_oldest_counts_them_and_raises_an_alarm(
    tmp_path: Path,
) -> None:
    config = fleet_config(NO_BROKER, tmp_path, outbox={"max_bytes": 64 * 1024})
    rig = Rig(config=config)
    service = await _service(rig, tmp_path)
    try:
        await rig.run_for(300.0)
        await service.outbox.flush()
        dropped = service.outbox.dropped_total
        assert dropped > 0
        assert service.outbox.pending_bytes <= 64 * 1024
        await service.check_outbox()
        await rig.run_for(2.0)
        await service.outbox.flush()
        alarms = {a.alarm_id: a for a in rig.controller.alarms.active()}
        assert DROPPED_ALARM in alarms
        assert str(dropped) in alarms[DROPPED_ALARM].message
        rows = await service.outbox.read(after_id=0, up_to_id=10**9, limit=100_000)
        newest = [json.loads(r.payload) for r in rows if r.kind == "telemetry"][-1]
        assert newest["outbox_dropped"] >= dropped
        assert newest["alarms_active"] >= 1
        # The alarm is information: it never stops a batch.
        assert all(t.alarm_id != DROPPED_ALARM for t in rig.controller.alarms.in_effect())
    finally:
        await service.stop(drain_timeout_s=0.0)


async def test_after_a_restart_the_drop_alarm_counts_only_its_own_drops(tmp_path: Path) -> None:
    # Found in a long run: 5 s after a restart it said "35831 stored messages dropped", the
    # outbox file's lifetime total, though only a handful had been dropped since.
    config = fleet_config(NO_BROKER, tmp_path, outbox={"max_bytes": 64 * 1024})
    rig = Rig(config=config)
    service = await _service(rig, tmp_path)
    try:
        await rig.run_for(300.0)
        await service.outbox.flush()
        before = service.outbox.dropped_total
        assert before > 0
    finally:
        await service.stop(drain_timeout_s=0.0)
    rig = Rig(config=config)
    service = await _service(rig, tmp_path)
    try:
        before = service.outbox.dropped_total  # and the stop's own last message, if it cut one
        await rig.run_for(30.0)
        await service.outbox.flush()
        since = service.outbox.dropped_total - before
        assert 0 < since < before
        await service.check_outbox()
        await rig.run_for(1.0)
        message = {a.alarm_id: a for a in rig.controller.alarms.active()}[DROPPED_ALARM].message
        assert message.startswith(f"{since} stored messages dropped"), (message, since, before)
    finally:
        await service.stop(drain_timeout_s=0.0)


async def test_an_outbox_found_damaged_while_running_raises_telemetry_dropped(
    tmp_path: Path,
) -> None:
    rig = Rig(config=fleet_config(NO_BROKER, tmp_path))
    service = await _service(rig, tmp_path)
    try:
        await rig.run_for(5.0)
        await service.outbox.flush()
        kept = tmp_path / "outbox.sqlite3.unreadable-test"
        service.outbox.set_aside = kept  # as the outbox does when a read or commit finds damage
        await service.check_outbox()
        await rig.run_for(1.0)
        alarms = {a.alarm_id: a for a in rig.controller.alarms.active()}
        assert DROPPED_ALARM in alarms
        assert f"kept as {kept.name}, a new one started" in alarms[DROPPED_ALARM].message
        message = alarms[DROPPED_ALARM].message
        await service.check_outbox()  # said once, not again at every check
        await rig.run_for(1.0)
        assert {a.alarm_id: a for a in rig.controller.alarms.active()}[DROPPED_ALARM].message == (
            message
        )
    finally:
        await service.stop(drain_timeout_s=0.0)


async def test_telemetry_and_birth_say_whether_the_clock_is_synchronised(tmp_path: Path) -> None:
    rig = Rig(config=fleet_config(NO_BROKER, tmp_path))
    synced = [False]
    service = FleetService(
        config=rig.config,
        controller=rig.controller,
        clock=rig.clock,
        state_dir=tmp_path,
        clock_synchronized=lambda: synced[0],
    )
    await service.start()
    await _broker_found_away(service)
    try:
        await rig.run_for(1.0)
        synced[0] = True
        await rig.run_for(1.0)
        await service.outbox.flush()
        rows = await service.outbox.read(after_id=0, up_to_id=10**9, limit=100)
        telemetry = [json.loads(r.payload) for r in rows if r.kind == "telemetry"]
        assert [t["clock_synchronized"] for t in telemetry] == [False, False, True]
        birth = json.loads(service._birth(1))
        assert birth["clock_synchronized"] is True
        assert {
            "name": "clock_synchronized",
            "type": "bool",
            "unit": None,
            "nullable": True,
        } in birth["metrics"]
    finally:
        await service.stop(drain_timeout_s=0.0)


async def test_telemetry_carries_the_packtags_state_and_unit_mode(tmp_path: Path) -> None:
    rig = Rig(config=fleet_config(NO_BROKER, tmp_path))
    service = await _service(rig, tmp_path)
    try:
        await rig.run_for(1.0)
        await rig.controller.set_manual(True, source="console")
        await rig.run_for(1.0)
        await service.outbox.flush()
        rows = await service.outbox.read(after_id=0, up_to_id=10**9, limit=100)
        telemetry = [json.loads(r.payload) for r in rows if r.kind == "telemetry"]
        # state_no is PackTags' StateCurrent, unit_mode_no its UnitModeCurrent
        assert all(t["state_no"] == 2 for t in telemetry)  # STOPPED
        assert [(t["unit_mode"], t["unit_mode_no"]) for t in telemetry][-1] == ("manual", 3)
        assert (telemetry[0]["unit_mode"], telemetry[0]["unit_mode_no"]) == ("production", 1)
        names = {m["name"] for m in json.loads(service._birth(1))["metrics"]}
        assert {"state_no", "unit_mode_no", "unit_mode"} <= names
    finally:
        await service.stop(drain_timeout_s=0.0)


async def test_a_start_that_fails_after_opening_the_outbox_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(*_: object) -> list[str]:
        raise PermissionError("recipes folder unreadable")

    monkeypatch.setattr(service_module, "offered_recipes", unreadable)
    rig = Rig(config=fleet_config(NO_BROKER, tmp_path))
    service = FleetService(
        config=rig.config, controller=rig.controller, clock=rig.clock, state_dir=tmp_path
    )
    with pytest.raises(PermissionError):
        await service.start()
    assert not service.outbox._worker.is_open  # its thread and connection are gone
