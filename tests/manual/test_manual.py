"""Manual mode as a field tech meets it: jogs, a timed heater run, and the interlocks still on."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from hal.outputs import Outputs
from tests.rig import Rig
from unit_controller.config import UnitConfig, load_config
from unit_controller.errors import CommandRefused
from unit_controller.events import EventKind
from unit_controller.machine import State

ACID = "P-201"
BASE = "P-203"


async def manual_rig(*, preload: str = "water", config: UnitConfig | None = None) -> Rig:
    """A unit at rest with liquid over the heater, in manual mode."""
    rig = Rig(preload=preload, config=config)
    await rig.scan()
    await rig.controller.set_manual(True, source="console")
    await rig.scan()
    return rig


def one_scan_ml(rig: Rig, tag: str) -> float:
    return rig.config.wiring.pumps()[tag].max_ml_min * rig.period / 60.0


async def test_manual_is_refused_while_a_batch_executes() -> None:
    rig = Rig()
    await rig.start("smoke")
    with pytest.raises(CommandRefused, match=r"batch is under way \(state EXECUTE\)"):
        await rig.controller.set_manual(True, source="console")
    assert rig.controller.manual is False
    assert rig.controller.machine.state is State.EXECUTE


async def test_start_and_reset_are_refused_while_manual_is_on() -> None:
    rig = Rig()
    await rig.scan()
    await rig.controller.command("reset", source="test")
    await rig.scan()
    await rig.controller.set_manual(True, source="console")
    for command in ("start", "reset", "hold"):
        with pytest.raises(CommandRefused, match=r"manual mode is on: turn it off first"):
            await rig.controller.command(command, source="test", recipe=None)
    assert rig.controller.machine.state is State.IDLE
    await rig.controller.set_manual(False, source="console")
    assert await rig.controller.command("start", source="test", recipe="smoke") is State.STARTING


async def test_jog_doses_the_asked_volume_and_stops_by_itself() -> None:
    rig = await manual_rig()
    result = await rig.controller.jog_pump("p-201", 5.0, source="console")
    assert result == {
        "pump": ACID,
        "ml": 5.0,
        "ml_min": 105.0,
        "seconds": pytest.approx(5.0 / 105.0 * 60.0),
    }
    first = await rig.scan()
    assert first.outputs.pump(ACID) == 105.0
    assert first.manual is True
    last = await rig.run_for(10.0)
    dispensed = rig.unit.pumps[ACID].dispensed_ml().value
    assert dispensed == pytest.approx(5.0, abs=one_scan_ml(rig, ACID))
    assert last.outputs.pump(ACID) == 0.0
    assert rig.unit.pumps[ACID].commanded_ml_min() == 0.0
    assert rig.controller.manual_status()["jogs"] == {}
    commands = [e for e in rig.events if e.kind is EventKind.COMMAND]
    assert [(e.data["command"], e.data["source"]) for e in commands] == [
        ("manual", "console"),
        ("jog", "console"),
    ]


async def test_heater_runs_at_the_duty_then_stops_after_its_time() -> None:
    rig = await manual_rig()
    await rig.controller.manual_heater(50.0, 40.0, source="console")
    started = rig.clock.monotonic()
    conducting = 0
    scans = 0
    while rig.clock.monotonic() < started + 40.0 - 1e-6:
        snap = await rig.scan()
        if rig.clock.monotonic() >= started + 40.0 - 1e-6:
            break
        scans += 1
        conducting += rig.unit.heater.conducting
        assert snap.outputs.contactor
        # A still reactor heats a layer at the element that the probe does not see.
        assert snap.outputs.agitator is True
        assert snap.heater_duty == 0.5
    assert conducting / scans == pytest.approx(0.5, abs=0.05)
    # The heater stops; the agitator stirs out the heat the element still gives (3 × its
    # element_lag_s), then stops too.
    assert snap.outputs == replace(Outputs.safe(), agitator=True)
    assert not rig.unit.heater.conducting
    lag_s = rig.config.wiring.heater().element_lag_s
    after = await rig.run_for(3 * lag_s - 5.0)
    assert after.outputs == replace(Outputs.safe(), agitator=True)
    assert after.heater_duty == 0.0
    after = await rig.run_for(10.0)
    assert after.outputs == Outputs.safe()


async def test_level_low_low_forces_the_manual_heater_off_in_the_same_scan() -> None:
    rig = await manual_rig()
    await rig.controller.manual_heater(100.0, 600.0, source="console")
    await rig.controller.jog_pump(BASE, 500.0, source="console")
    await rig.controller.jog_pump(ACID, 50.0, source="console", cylinder=True)
    before = await rig.run_for(2.0)
    assert before.outputs.heater_on_s > 0.0
    assert before.outputs.contactor
    assert before.outputs.agitator  # the jog into the reactor runs it
    rig.inject("level_low_low_stuck")
    snap = await rig.scan()
    assert snap.outputs.heater_on_s == 0.0
    assert snap.outputs.contactor is False
    assert not rig.unit.heater.conducting
    # No dose into the reactor without the agitator, which LSLL stops: in the same scan.
    assert snap.outputs.pump(BASE) == 0.0
    assert snap.outputs.agitator is False
    # A dose into a measuring cylinder is not the reactor's business.
    assert snap.outputs.pump(ACID) > 0.0
    status = rig.controller.manual_status()
    assert status["heater"] is None
    assert "level_low_low" in str(status["last_stop"])
    assert rig.controller.manual is True
    # Nothing resumes by itself, and a new run is refused while the trip is there.
    assert (await rig.run_for(5.0)).outputs.contactor is False
    # The trip raises no alarm with nothing heating: the refusal names the condition itself.
    with pytest.raises(CommandRefused, match=r"cannot heat: level below low-low switch"):
        await rig.controller.manual_heater(50.0, 60.0, source="console")


async def test_estop_forces_every_manual_output_off_in_the_same_scan() -> None:
    rig = Rig(preload="water")
    await rig.scan()
    await rig.controller.command("reset", source="test")
    await rig.scan()
    await rig.controller.set_manual(True, source="console")
    await rig.controller.manual_heater(100.0, 600.0, source="console")
    await rig.controller.jog_pump(ACID, 100.0, source="console")
    before = await rig.run_for(1.0)
    assert before.outputs.contactor
    assert before.outputs.pump(ACID) > 0.0
    rig.inject("estop")
    snap = await rig.scan()
    # Acid went in: the N2 blanket is the purge's safe state, everything else is off.
    charged_safe = replace(Outputs.safe(), purge_valve=True)
    assert snap.outputs == charged_safe
    assert rig.controller.machine.state in (State.ABORTING, State.ABORTED)
    # Manual mode stays on so the console can say why everything stopped.
    assert rig.controller.manual is True
    status = rig.controller.manual_status()
    assert status["jogs"] == {}
    assert status["heater"] is None
    assert "estop (HS-100)" in str(status["last_stop"])
    assert (await rig.run_for(5.0)).outputs == charged_safe
    with pytest.raises(CommandRefused, match=r"cannot jog: interlocks force it off: estop"):
        await rig.controller.jog_pump(ACID, 10.0, source="console")


async def test_manual_off_stops_everything_in_the_next_scan() -> None:
    rig = await manual_rig()
    await rig.controller.manual_heater(100.0, 600.0, source="console")
    await rig.controller.jog_pump(ACID, 100.0, source="console")
    running = await rig.run_for(1.0)
    assert running.outputs.contactor
    assert running.outputs.pump(ACID) > 0.0
    await rig.controller.set_manual(False, source="console")
    snap = await rig.scan()
    # Everything off but the purge: acid went in, and its N2 blanket is the safe state.
    assert snap.outputs == replace(Outputs.safe(), purge_valve=True)
    assert snap.manual is False
    assert rig.unit.pumps[ACID].commanded_ml_min() == 0.0
    assert not rig.unit.heater.conducting


async def test_stop_in_manual_ends_every_manual_action_and_is_not_refused() -> None:
    rig = await manual_rig()  # STOPPED, where a stop alone would be refused
    await rig.controller.jog_pump(ACID, 100.0, source="console")
    await rig.run_for(1.0)
    assert await rig.controller.command("stop", source="console") is State.STOPPED
    assert (await rig.scan()).outputs == replace(Outputs.safe(), purge_valve=True)
    assert "stopped by stop" in str(rig.controller.manual_status()["last_stop"])


async def test_a_new_run_clears_the_last_early_stop_from_the_status() -> None:
    # Found by a field tech: after a heater run cut short, a new one at 30 % showed on `status`
    # with "stopped heater at 30 % stopped by ..." under it, as if this one had stopped.
    rig = await manual_rig()
    await rig.controller.jog_pump(ACID, 100.0, source="console")
    await rig.run_for(1.0)
    assert await rig.controller.command("stop", source="console") is State.STOPPED
    await rig.scan()
    assert rig.controller.manual_status()["last_stop"] is not None
    await rig.controller.manual_heater(30.0, 60.0, source="console")
    await rig.scan()
    assert rig.controller.manual_status()["last_stop"] is None


async def test_bad_requests_are_refused_with_clear_text_and_change_nothing() -> None:
    base = load_config()
    config = base.model_copy(
        update={"interlocks": base.interlocks.model_copy(update={"reagent_cap_ml": {ACID: 50.0}})}
    )
    rig = Rig(preload="water", config=config)
    await rig.scan()
    controller = rig.controller
    with pytest.raises(CommandRefused, match=r"manual mode is off: turn it on first"):
        await controller.jog_pump(ACID, 5.0, source="console")
    with pytest.raises(CommandRefused, match=r"manual mode is off"):
        await controller.manual_heater(50.0, 60.0, source="console")
    await controller.set_manual(True, source="console")
    refusals = [
        (controller.jog_pump("P-999", 5.0, source="c"), r"no dosing pump 'P-999'.*P-201, P-202"),
        (controller.jog_pump(ACID, 0.0, source="c"), r"more than 0 and at most 50 mL"),
        (controller.jog_pump(ACID, 60.0, source="c"), r"at most 50 mL, got 60"),
        (controller.jog_pump(BASE, 5000.0, source="c"), r"at most 1000 mL"),
        (controller.jog_pump(BASE, math.nan, source="c"), r"got nan"),
        (controller.manual_heater(150.0, 60.0, source="c"), r"duty must be 0 to 100 %"),
        (controller.manual_heater(-1.0, 60.0, source="c"), r"duty must be 0 to 100 %"),
        (controller.manual_heater(50.0, 0.0, source="c"), r"more than 0 and at most 3600 s"),
        (controller.manual_heater(50.0, 7200.0, source="c"), r"at most 3600 s"),
    ]
    for call, message in refusals:
        with pytest.raises(CommandRefused, match=message):
            await call
    snap = await rig.run_for(2.0)
    assert snap.outputs == Outputs.safe()
    assert rig.controller.manual_status()["jogs"] == {}
    assert rig.controller.manual_status()["heater"] is None


async def test_a_second_jog_on_a_running_pump_is_refused() -> None:
    rig = await manual_rig()
    await rig.controller.jog_pump(ACID, 100.0, source="console")
    await rig.scan()
    with pytest.raises(CommandRefused, match=r"P-201 is already jogging"):
        await rig.controller.jog_pump(ACID, 5.0, source="console")


async def test_heater_at_zero_percent_stops_the_run() -> None:
    rig = await manual_rig()
    await rig.controller.manual_heater(80.0, 600.0, source="console")
    assert (await rig.run_for(1.0)).outputs.contactor
    assert await rig.controller.manual_heater(0.0, 0.0, source="console") == {
        "percent": 0.0,
        "seconds": 0.0,
    }
    # Heater and contactor off at once; the agitator stirs out the element's stored heat.
    assert (await rig.scan()).outputs == replace(Outputs.safe(), agitator=True)


async def test_a_manual_heater_that_does_not_heat_trips_the_verifier() -> None:
    rig = await manual_rig()
    rig.inject("heater_open")
    await rig.controller.manual_heater(100.0, 3600.0, source="console")
    limits = rig.config.interlocks.verify_heater
    snap = await rig.run_until(
        lambda s: not s.outputs.contactor, limit_s=limits.check_gain_time_s + 120.0
    )
    assert snap.outputs.heater_on_s == 0.0
    assert any(a.alarm_id == "heater_not_heating" for a in rig.controller.alarms.active())
    assert "heater_not_heating" in str(rig.controller.manual_status()["last_stop"])


async def test_a_manual_heater_run_ends_short_of_the_highest_recipe_setpoint() -> None:
    document = load_config().model_dump(exclude_unset=True)
    document["interlocks"] = document.get("interlocks", {}) | {"max_temperature_setpoint_c": 40.0}
    rig = await manual_rig(config=UnitConfig.model_validate(document))
    limit = rig.config.interlocks.max_temperature_setpoint_c
    await rig.controller.manual_heater(100.0, 3600.0, source="console")
    snap = await rig.run_until(lambda s: rig.controller.manual_status()["heater"] is None,
                               limit_s=3600)  # fmt: skip
    last_stop = str(rig.controller.manual_status()["last_stop"])
    assert "heater at 100 % stopped by reaching" in last_stop
    assert "toward the 40 °C manual limit" in last_stop
    assert snap.outputs.heater_on_s == 0.0
    # Asked again now, it is refused with the reason, not accepted to do nothing.
    with pytest.raises(CommandRefused, match=r"cannot heat at 100 %: .* where a run ends"):
        await rig.controller.manual_heater(100.0, 60.0, source="console")
    # Ended, not paused: the element's stored heat carries it near the limit, not past it,
    # and the heater stays off as the reactor cools again.
    for _ in range(90):
        snap = await rig.run_for(10.0)
        assert snap.outputs.heater_on_s == 0.0
    assert rig.unit.plant.max_temperature_c <= limit + 0.5


async def test_a_recipe_for_an_empty_reactor_is_refused_while_it_holds_liquid() -> None:
    rig = Rig(preload="water")
    await rig.scan()
    await rig.controller.command("reset", source="test")
    await rig.scan()
    with pytest.raises(CommandRefused, match="starts with an empty reactor but LSL-101 is wet"):
        await rig.controller.command("start", source="test", recipe="smoke")
    assert rig.controller.machine.state is State.IDLE


async def test_a_jog_into_a_dry_reactor_is_refused_but_one_into_a_cylinder_is_not() -> None:
    rig = await manual_rig(preload="empty")
    with pytest.raises(CommandRefused, match=r"cannot jog P-201 into the reactor: LSL-101 reads"
                       r" dry.*jog pump P-201 5 cylinder"):  # fmt: skip
        await rig.controller.jog_pump(ACID, 5.0, source="console")
    result = await rig.controller.jog_pump(ACID, 5.0, source="console", cylinder=True)
    assert result["pump"] == ACID
    snap = await rig.scan()
    assert snap.outputs.pump(ACID) > 0.0
    assert snap.outputs.agitator is False  # nothing to stir: it goes into a cylinder


async def test_a_cylinder_jog_doses_despite_the_ph_rows_but_not_the_level_or_estop() -> None:
    # Pump calibration during commissioning: the pH circuit may be unplugged or its probe dry.
    rig = await manual_rig()
    rig.inject("device_silent", "AT-101")
    await rig.run_for(20.0)
    assert {t.cause for t in rig.controller.alarms.in_effect()} & {"ph_lost", "ph_unreadable"}
    with pytest.raises(CommandRefused, match=r"cannot jog"):
        await rig.controller.jog_pump(ACID, 5.0, source="console")  # into the reactor: no
    await rig.controller.jog_pump(ACID, 5.0, source="console", cylinder=True)
    snap = await rig.scan()
    assert snap.outputs.pump(ACID) > 0.0
    snap = await rig.scan()
    # The reactor sees none of it: no dose, no heat of dilution for the weld watch.
    assert snap.image.applied.pump(ACID) == 0.0
    await rig.run_for(10.0)
    assert rig.controller.cylinder_run_ml(ACID) == pytest.approx(5.0, abs=0.01)
    # A recipe's pumps stay off all the while: the exemption is the cylinder jog's alone.
    assert all(rate == 0.0 for tag, rate in snap.outputs.pumps.items() if tag != ACID)
    # The high-high switch is no pH row: it still stops a cylinder jog, as the E-stop does.
    await rig.controller.jog_pump(ACID, 50.0, source="console", cylinder=True)
    await rig.run_for(1.0)
    rig.inject("level_high_high")
    snap = await rig.run_for(1.0)
    assert snap.outputs.pump(ACID) == 0.0
    said = rig.controller.manual_last_stop()
    assert said is not None
    assert "level_high_high" in said
    # Named for what stopped it, not the pH rows it doses despite.
    assert "AT-101" not in said
    with pytest.raises(CommandRefused, match=r"level_high_high"):
        await rig.controller.jog_pump(ACID, 5.0, source="console", cylinder=True)


async def test_a_heater_refused_in_an_empty_reactor_names_the_level_not_an_alarm() -> None:
    # Empty is not an alarm at rest: the refusal says what to do, not what to reset.
    rig = await manual_rig(preload="empty")
    await rig.run_for(1.0)
    assert rig.controller.alarms.active() == []
    with pytest.raises(CommandRefused) as refused:
        await rig.controller.manual_heater(50.0, 60.0, source="console")
    text = str(refused.value)
    assert "level below low-low switch (LSLL-101): clear that first" in text
    assert "interlocks force it off" not in text
    assert "reset the alarms" not in text


async def test_one_cause_stopping_several_actions_names_every_one() -> None:
    rig = await manual_rig()
    await rig.controller.jog_pump(ACID, 500.0, source="console", cylinder=True)
    await rig.controller.manual_drain(600.0, source="console")
    await rig.run_for(2.0)
    rig.inject("estop")
    await rig.run_for(1.0)
    said = rig.controller.manual_last_stop()
    assert said is not None
    assert f"jog {ACID} at" in said
    assert "drain open" in said
    assert said.count("stopped by") <= 2


async def test_a_service_stop_ends_manual_mode_saying_what_it_stopped() -> None:
    # The daemon's stop: what manual mode still ran is journaled as stopped by the stop, not
    # cut short unsaid (and no console session waits on a scan that never comes).
    from unit_controller.controller.abort_on_stop import abort_on_stop
    from unit_controller.events import EventKind

    rig = await manual_rig()
    await rig.controller.jog_pump(ACID, 500.0, source="console", cylinder=True)
    await rig.run_for(1.0)
    await abort_on_stop(rig.controller, source="daemon", reason="service stop", scan=rig.scan)
    assert not rig.controller.manual
    pumps = rig.unit.held_outputs()["pumps"]
    assert isinstance(pumps, dict)
    assert pumps[ACID] == 0.0
    [off] = [
        e for e in rig.events if e.kind is EventKind.COMMAND and e.data["command"] == "manual"
    ][-1:]
    assert off.data["source"] == "daemon (service stop)"
    stopped = off.data["stopped"]
    assert isinstance(stopped, tuple | list)
    assert any(str(line).startswith(f"jog {ACID} at") for line in stopped)


async def test_a_new_abort_trip_at_rest_ends_a_jog_it_does_not_force() -> None:
    # Found by a safety reviewer: temperature high-high forces only the heater, so an H2O2 jog
    # in Stopped went on at full rate (in a batch the abort stops every pump).
    rig = await manual_rig()
    await rig.controller.jog_pump("P-202", 500.0, source="console")
    assert (await rig.run_for(1.0)).outputs.pump("P-202") > 0.0
    rig.rtd_reads(92.0)
    snap = await rig.run_for(1.5)
    assert snap.outputs.pump("P-202") == 0.0
    status = rig.controller.manual_status()
    assert status["jogs"] == {}
    assert "temperature_high_high (TT-101)" in str(status["last_stop"])
    # Started again by the tech, knowingly, it runs (the trip forces only the heater), and the
    # answer says the trip stands.
    result = await rig.controller.jog_pump("P-202", 5.0, source="console")
    assert result["standing"] == "temperature_high_high (TT-101)"
    assert (await rig.run_for(0.5)).outputs.pump("P-202") > 0.0
