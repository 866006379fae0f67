"""Manual drain (emptying the reactor after an abort), and the agitator a heater run needs."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from hal.outputs import Outputs
from hal.wiring import LevelPoint
from tests.manual.test_manual import manual_rig
from tests.rig import Rig
from unit_controller.config import load_config
from unit_controller.console.lines import Remote, Request, parse_line
from unit_controller.errors import CommandRefused
from unit_controller.events import EventKind
from unit_controller.machine import State
from unit_controller.manual import ManualMode


async def test_a_drain_opens_the_valve_empties_the_reactor_and_closes_on_time() -> None:
    rig = await manual_rig()
    full_l = rig.unit.plant.volume_l
    assert await rig.controller.manual_drain(120.0, source="console") == {"seconds": 120.0}
    snap = await rig.run_for(60.0)
    assert snap.outputs.drain_valve
    assert snap.outputs == replace(Outputs.safe(), drain_valve=True)  # nothing else runs
    assert rig.unit.plant.volume_l < full_l
    assert rig.controller.manual_status()["drain"] == {"remaining_s": pytest.approx(60, abs=0.2)}
    assert "drain open" in rig.controller.manual_running()
    snap = await rig.run_for(61.0)
    assert not snap.outputs.drain_valve
    assert rig.controller.manual_status()["drain"] is None
    commands = [e.data["command"] for e in rig.events if e.kind is EventKind.COMMAND]
    assert commands == ["manual", "drain"]


async def test_drain_off_closes_it_and_manual_off_closes_it_too() -> None:
    rig = await manual_rig()
    await rig.controller.manual_drain(600.0, source="console")
    assert (await rig.run_for(1.0)).outputs.drain_valve
    assert await rig.controller.manual_drain(0.0, source="console") == {"seconds": 0.0}
    assert not (await rig.scan()).outputs.drain_valve
    await rig.controller.manual_drain(600.0, source="console")
    assert (await rig.run_for(1.0)).outputs.drain_valve
    await rig.controller.set_manual(False, source="console")
    assert not (await rig.scan()).outputs.drain_valve


async def test_an_estop_closes_a_manual_drain_in_the_same_scan_and_refuses_another() -> None:
    rig = await manual_rig()
    await rig.controller.manual_drain(600.0, source="console")
    assert (await rig.run_for(1.0)).outputs.drain_valve
    rig.inject("estop")
    snap = await rig.scan()
    assert not snap.outputs.drain_valve
    last_stop = str(rig.controller.manual_status()["last_stop"])
    assert "drain open stopped by estop (HS-100)" in last_stop
    with pytest.raises(CommandRefused, match=r"cannot drain: interlocks force it off: estop"):
        await rig.controller.manual_drain(600.0, source="console")
    assert not (await rig.run_for(2.0)).outputs.drain_valve


async def test_after_an_abort_with_liquor_in_it_the_reactor_can_be_drained() -> None:
    rig = Rig()
    await rig.start("smoke")
    await rig.run_until(lambda s: s.image.wet(LevelPoint.LOW) is True, limit_s=600.0)
    await rig.controller.command("abort", source="console")
    await rig.run_for(2.0)
    assert rig.controller.machine.state is State.ABORTED
    await rig.controller.set_manual(True, source="console")  # no clear needed
    await rig.controller.manual_drain(600.0, source="console")
    snap = await rig.run_until(lambda s: s.image.wet(LevelPoint.LOW_LOW) is False, limit_s=600.0)
    assert snap.outputs.drain_valve
    assert rig.controller.machine.state is State.ABORTED


async def test_bad_drain_requests_are_refused_and_change_nothing() -> None:
    rig = Rig(preload="water")
    await rig.scan()
    with pytest.raises(CommandRefused, match=r"manual mode is off: turn it on first"):
        await rig.controller.manual_drain(60.0, source="console")
    await rig.controller.set_manual(True, source="console")
    for seconds, message in (
        (-1.0, r"drain time must be 0 to 3600 s, got -1"),
        (math.nan, r"got nan"),
        (math.inf, r"got inf"),
        (7200.0, r"at most 3600 s \(0 closes it\), got 7200"),
    ):
        with pytest.raises(CommandRefused, match=message):
            await rig.controller.manual_drain(seconds, source="console")
    assert (await rig.run_for(1.0)).outputs == Outputs.safe()
    assert rig.controller.manual_status()["drain"] is None


def test_the_console_line_drain_takes_seconds_or_off() -> None:
    for line, seconds in (("drain 600", 600.0), ("drain off", 0.0), ("drain 0", 0.0)):
        request = Request(op="drain", args={"seconds": seconds})
        assert parse_line(line) == Remote("drain", (request,), guarded=True)
    for line, message in (
        ("drain", "drain needs seconds or off"),
        ("drain 1 2", "drain needs seconds or off"),
        ("drain -5", "drain seconds must be 0 or more"),
        ("drain lots", "drain seconds"),
    ):
        with pytest.raises(Exception, match=message):
            parse_line(line)


def test_a_heater_run_ends_when_the_agitator_may_not_run() -> None:
    manual = ManualMode(config=load_config())
    manual.on = True
    manual.run_heater(50.0, 60.0, now=0.0, trips=[], temperature_c=20.0)
    assert manual.agitator_wanted
    manual.hold_permissives(low_level_wet=True, agitation_forced=[])
    assert manual.heater is not None
    manual.hold_permissives(low_level_wet=True, agitation_forced=["output_fault (M-101)"])
    assert manual.heater is None
    assert manual.last_stop == "heater at 50 % stopped by agitator forced off: output_fault (M-101)"
    assert not manual.agitator_wanted
