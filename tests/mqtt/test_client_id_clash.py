"""Two units configured with one id on one broker: the broker drops each for the other, for
ever; each says so with an alarm instead of only flapping."""

from __future__ import annotations

import asyncio
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

        # The twin goes away; once this unit has stayed connected, the alarm returns.
        other = second if dropped is first else first
        await other.stop(drain_timeout_s=0.0)
        monkeypatch.setattr(service_module, "FLAPPING_WINDOW_S", 0.5)
        deadline = loop.time() + WAIT_S
        while not dropped.link.connected or loop.time() - dropped.link.drops[-1] < 0.5:
            assert loop.time() < deadline, "it never stayed connected"
            await asyncio.sleep(0.05)
        await dropped.check_link()
        states = {a.alarm_id: a.state for a in rig.controller.alarms.active()}
        assert states[FLAPPING_ALARM] is AlarmState.UNACK_RETURNED  # listed until acknowledged
    finally:
        await first.stop(drain_timeout_s=0.0)
        await second.stop(drain_timeout_s=0.0)
