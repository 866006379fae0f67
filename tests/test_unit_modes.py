"""PackML unit modes: Production runs batches, Maintenance and Manual keep the unit at rest."""

from __future__ import annotations

import pytest

from tests.rig import Rig
from unit_controller.errors import CommandRefused
from unit_controller.machine import MODE_STATES, State, UnitMode
from unit_controller.mqtt.payloads import pack_tags


async def test_maintenance_refuses_a_start_but_lets_the_unit_rest_and_reset() -> None:
    rig = Rig()
    await rig.scan()
    controller = rig.controller
    assert controller.unit_mode is UnitMode.PRODUCTION
    assert await controller.set_unit_mode("maintenance", source="console:tech") is (
        UnitMode.MAINTENANCE
    )
    snap = await rig.scan()
    assert snap.unit_mode is UnitMode.MAINTENANCE
    assert pack_tags(snap)["unit_mode_no"] == 2
    assert await controller.command("reset", source="console:tech") is State.RESETTING
    await rig.run_until(lambda s: s.state is State.IDLE, limit_s=5.0)
    with pytest.raises(CommandRefused, match="cannot start in maintenance mode"):
        await controller.command("start", source="mqtt:alice", recipe="smoke")
    await controller.set_unit_mode(UnitMode.PRODUCTION, source="console:tech")
    assert await controller.command("start", source="mqtt:alice", recipe="smoke") is (
        State.STARTING
    )


async def test_leaving_production_is_refused_while_a_batch_is_under_way() -> None:
    rig = Rig()
    await rig.start("smoke")
    for mode in ("maintenance", "manual"):
        with pytest.raises(CommandRefused, match="while a batch is under way"):
            await rig.controller.set_unit_mode(mode, source="console:tech")
    assert rig.controller.unit_mode is UnitMode.PRODUCTION


async def test_an_unknown_mode_is_refused_by_name_and_changes_nothing() -> None:
    rig = Rig()
    await rig.scan()
    with pytest.raises(CommandRefused, match="unknown unit mode 'repair'; modes are production"):
        await rig.controller.set_unit_mode("repair", source="console:tech")
    assert rig.controller.unit_mode is UnitMode.PRODUCTION


async def test_manual_mode_is_the_manual_unit_mode_and_leaving_it_stops_the_jogs() -> None:
    rig = Rig(preload="water")
    await rig.scan()
    controller = rig.controller
    await controller.set_unit_mode("manual", source="console:tech")
    assert controller.manual
    await controller.jog_pump("P-204", 50.0, source="console:tech")
    snap = await rig.run_for(1.0)
    assert snap.outputs.pump("P-204") > 0.0
    assert snap.unit_mode is UnitMode.MANUAL
    await controller.set_unit_mode("maintenance", source="console:tech")
    snap = await rig.scan()
    assert not controller.manual
    assert snap.outputs.pump("P-204") == 0.0
    changed = [e for e in rig.events if e.data.get("command") == "unitmode"]
    assert changed[-1].data["new"] == "maintenance"
    assert "jog P-204" in str(changed[-1].data["stopped"])
    await controller.set_manual(True, source="console:tech")
    assert controller.unit_mode is UnitMode.MANUAL
    await controller.set_manual(False, source="console:tech")
    assert controller.unit_mode is UnitMode.PRODUCTION


def test_out_of_production_the_machine_only_rests() -> None:
    for mode in (UnitMode.MAINTENANCE, UnitMode.MANUAL):
        assert State.EXECUTE not in MODE_STATES[mode]
        assert State.STARTING not in MODE_STATES[mode]
        assert {State.STOPPED, State.IDLE, State.ABORTED} <= MODE_STATES[mode]
    assert MODE_STATES[UnitMode.PRODUCTION] == frozenset(State)
