"""The N2 purge's safe state (DESIGN §5): open while the reactor may hold acid or reactive
liquor, closed once it is empty, and closed always where the site says so."""

from __future__ import annotations

from dataclasses import replace

from hal.outputs import Outputs
from hal.wiring import CoilFunction, LevelPoint
from tests.rig import Rig
from unit_controller.config import load_config
from unit_controller.machine import State

ACID = "P-201"


async def _acid_in_manual(rig: Rig) -> None:
    await rig.scan()
    await rig.controller.set_manual(True, source="console")
    await rig.controller.jog_pump(ACID, 20.0, source="console")
    await rig.run_for(30.0)


async def test_after_acid_a_stop_keeps_the_purge_open_until_the_reactor_is_drained() -> None:
    rig = Rig(preload="water")
    await _acid_in_manual(rig)
    await rig.controller.set_manual(False, source="console")
    snap = await rig.run_for(2.0)
    assert snap.state is State.STOPPED
    assert snap.outputs == replace(Outputs.safe(), purge_valve=True)
    assert rig.unit.held_outputs()["purge"] is True
    rig.unit.plant.preload("empty")  # drained by hand: the low-low switch reads dry
    snap = await rig.run_for(3.0)
    # Up to the low-low switch's 15 L of acid may still lie below it: the blanket stays until
    # the drain has been open long enough to empty that heel.
    assert snap.outputs == replace(Outputs.safe(), purge_valve=True)
    await rig.controller.set_manual(True, source="console")
    await rig.controller.manual_drain(40.0, source="console")
    snap = await rig.run_for(45.0)
    assert snap.outputs.purge_valve is True, "40 s of the 60 s heel_drain_s"
    await rig.controller.manual_drain(25.0, source="console")
    snap = await rig.run_for(30.0)
    assert rig.controller.reactor_charged is False
    await rig.controller.set_manual(False, source="console")
    snap = await rig.run_for(1.0)
    assert snap.outputs == Outputs.safe()
    assert rig.unit.held_outputs()["purge"] is False


async def test_a_charge_only_assumed_at_a_first_start_clears_on_dry_switches() -> None:
    # Nothing known (a first start): an empty unit must not blanket itself until drained.
    rig = Rig(preload="empty", charged=True, charge_assumed=True)
    snap = await rig.run_for(2.0)
    assert snap.outputs == Outputs.safe()
    # Known (the last run said so): the heel is drained first.
    rig = Rig(preload="empty", charged=True)
    snap = await rig.run_for(2.0)
    assert snap.outputs == replace(Outputs.safe(), purge_valve=True)


async def test_an_assumed_charge_over_liquor_the_switches_see_drains_its_heel_first() -> None:
    # Nothing known, but the switches read liquor: it is a charge like any other, and the
    # heel below the low-low switch keeps its blanket until drained (a reviewer's case).
    rig = Rig(preload="leach_liquor", charged=True, charge_assumed=True)
    snap = await rig.run_for(3.0)
    assert snap.outputs.purge_valve is True
    rig.unit.plant.volume_l = 12.0  # drained by hand to below the low-low switch
    snap = await rig.run_for(3.0)
    assert rig.controller.reactor_charged
    assert snap.outputs.purge_valve is True


async def test_the_heel_is_drained_by_time_only_while_both_switches_read_dry() -> None:
    base = load_config()
    config = base.model_copy(
        update={"safe_state": base.safe_state.model_copy(update={"heel_drain_s": 10.0})}
    )
    rig = Rig(preload="water", config=config)
    await _acid_in_manual(rig)
    rig.unit.plant.preload("empty")
    await rig.controller.manual_drain(6.0, source="console")
    await rig.run_for(8.0)
    rig.unit.plant.preload("water")  # liquor back over the switches: the count starts again
    await rig.run_for(2.0)
    rig.unit.plant.preload("empty")
    await rig.controller.manual_drain(6.0, source="console")
    await rig.run_for(8.0)
    assert rig.controller.reactor_charged is True
    await rig.controller.manual_drain(6.0, source="console")
    await rig.run_for(8.0)
    assert rig.controller.reactor_charged is False


async def test_a_low_low_switch_stuck_dry_under_a_wet_low_switch_keeps_the_purge_open() -> None:
    # Dry is the safe reading for the heater, not for the blanket: acid is still in there.
    rig = Rig(preload="water")
    await _acid_in_manual(rig)
    await rig.controller.set_manual(False, source="console")
    await rig.run_for(2.0)
    rig.inject("level_low_low_stuck")
    snap = await rig.run_for(3.0)
    assert snap.image.wet(LevelPoint.LOW) is True
    assert "low_low_suspect" in {t.cause for t in rig.controller.alarms.in_effect()}
    assert snap.outputs.purge_valve is True
    assert rig.unit.held_outputs()["purge"] is True


async def test_a_site_may_choose_a_closed_purge() -> None:
    base = load_config()
    config = base.model_copy(
        update={"safe_state": base.safe_state.model_copy(update={"purge": "closed"})}
    )
    rig = Rig(preload="water", config=config)
    await _acid_in_manual(rig)
    await rig.controller.set_manual(False, source="console")
    snap = await rig.run_for(2.0)
    assert snap.outputs == Outputs.safe()
    assert rig.unit.held_outputs()["purge"] is False


async def test_water_alone_charges_nothing() -> None:
    rig = Rig(preload="water")
    await rig.scan()
    await rig.controller.command("reset", source="test")
    await rig.run_for(1.0)
    rig.inject("estop")  # a new abort cause aborts a unit that is ready to run
    snap = await rig.run_for(2.0)
    assert snap.state in (State.ABORTING, State.ABORTED)
    assert snap.outputs == Outputs.safe()


async def test_a_batch_started_on_leach_liquor_keeps_the_purge_open_after_an_abort() -> None:
    # purify starts on what leach left: acid, maybe with aluminium still making H2.
    rig = Rig(preload="leach_liquor")
    await rig.start("purify")
    await rig.controller.command("abort", source="console")
    snap = await rig.run_for(2.0)
    assert snap.state is State.ABORTED
    assert snap.outputs == replace(Outputs.safe(), purge_valve=True)
    assert rig.controller.reactor_charged


async def test_a_batch_on_a_charged_reactor_keeps_the_blanket_its_recipe_does_not_ask_for() -> None:
    # purify asks for no purge; on what a stopped leach left (acid over aluminium) it is kept.
    rig = Rig(preload="leach_liquor")
    await _acid_in_manual(rig)  # charged before the batch: acid went in
    await rig.controller.set_manual(False, source="console")
    await rig.start("purify")
    snap = await rig.run_for(60.0)
    assert snap.state is State.EXECUTE
    assert snap.outputs.purge_valve is True
    assert rig.unit.held_outputs()["purge"] is True


async def test_a_recipe_on_its_own_fresh_liquor_decides_its_purge() -> None:
    rig = Rig(preload="leach_liquor")  # filtered liquor fed in for this batch: nothing before
    await rig.start("purify")
    snap = await rig.run_for(60.0)
    assert snap.state is State.EXECUTE
    assert snap.outputs.purge_valve is False  # purify asks for none
    assert rig.controller.reactor_charged  # and after an abort the blanket comes back


async def test_a_drain_whose_coil_does_not_obey_drains_no_heel() -> None:
    # The board refuses the drain valve's coil (output_fault): commanded open, it drains
    # nothing, and the acid heel below the low-low switch keeps its blanket.
    rig = Rig(preload="water")
    await _acid_in_manual(rig)
    rig.unit.plant.volume_l = 12.0  # drained by hand to a heel below the low-low switch
    await rig.run_for(3.0)
    assert rig.controller.reactor_charged
    rig.inject("relay_refused", rig.config.wiring.coil_tag(CoilFunction.DRAIN_VALVE))
    await rig.controller.manual_drain(70.0, source="console")
    snap = await rig.run_for(72.0)
    assert "output_fault" in {t.alarm_id for t in rig.controller.alarms.in_effect()}
    assert rig.controller.reactor_charged
    assert snap.outputs.purge_valve is True
