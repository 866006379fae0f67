"""Two units configured with one id on one broker: the broker drops each for the other, for
ever; each says so with an alarm instead of only flapping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import fleet_config
from tests.rig import Rig
from unit_controller.alarms import AlarmState
from unit_controller.mqtt import service as service_module
from unit_controller.mqtt.service import FLAPPING_ALARM, FleetService

pytestmark = pytest.mark.xdist_group("real_time")

WAIT_S = 60.0


def _state(rig: Rig) -> AlarmState | None:
    states = {a.alarm_id: a.state for a in rig.controller.alarms.active()}
    return states.get(FLAPPING_ALARM)


async def _until(condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        assert loop.time() < deadline, "not within the wait"
        await asyncio.sleep(0.05)


async def _started(broker: Mosquitto, state_dir: Path) -> tuple[Rig, FleetService]:
    rig = Rig(config=fleet_config(broker, state_dir, unit_id="twin-t1"))
    service = FleetService(
        config=rig.config, controller=rig.controller, clock=rig.clock, state_dir=state_dir
    )
    await service.start()
    return rig, service


async def test_a_second_unit_with_this_units_id_raises_an_alarm_that_clears_when_it_goes(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_rig, first = await _started(mosquitto, tmp_path / "a")
    second_rig, second = await _started(mosquitto, tmp_path / "b")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while max(len(first.link.drops), len(second.link.drops)) < service_module.FLAPPING_DROPS:
            assert loop.time() < deadline, "the broker never dropped either for the other"
            await asyncio.sleep(0.05)
        most = len(first.link.drops) >= len(second.link.drops)
        dropped, rig = (first, first_rig) if most else (second, second_rig)
        await dropped.check_link()
        alarms = {a.alarm_id: a for a in rig.controller.alarms.active()}
        assert FLAPPING_ALARM in alarms
        assert "a second unit configured with [unit] id 'twin-t1'" in alarms[FLAPPING_ALARM].message
        # Information, not an interlock: it stops nothing.
        assert all(t.alarm_id != FLAPPING_ALARM for t in rig.controller.alarms.in_effect())

        # The twin goes away. A broker that restarts meanwhile does not return the alarm: a
        # connection only just up shows nothing yet.
        other = second if dropped is first else first
        await other.stop(drain_timeout_s=0.0)
        link = dropped.link
        await _until(lambda: link.connected)
        connects = link.connects
        mosquitto.stop()
        mosquitto.start()
        await _until(lambda: link.connected and link.connects > connects)
        await dropped.check_link()
        assert _state(rig) is AlarmState.UNACK_ACTIVE
        # One connection that stays up the whole window returns it.
        monkeypatch.setattr(service_module, "FLAPPING_WINDOW_S", 0.5)
        await _until(lambda: link.connected and loop.time() - link.connected_at >= 0.5)
        await dropped.check_link()
        assert _state(rig) is AlarmState.UNACK_RETURNED  # listed until acknowledged
    finally:
        await first.stop(drain_timeout_s=0.0)
        await second.stop(drain_timeout_s=0.0)


async def test_a_broker_restart_is_no_flapping(mosquitto: Mosquitto, tmp_path: Path) -> None:
    rig, service = await _started(mosquitto, tmp_path)
    try:
        await _until(lambda: service.link.connected)
        connects = service.link.connects
        mosquitto.stop()
        mosquitto.start()
        await _until(lambda: service.link.connected and service.link.connects > connects)
        assert len(service.link.drops) == 1
        await service.check_link()
        assert _state(rig) is None
    finally:
        await service.stop(drain_timeout_s=0.0)
