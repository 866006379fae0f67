"""Calibration at the console on the simulated unit: pH buffers mid first, pump volumes."""

from __future__ import annotations

import dataclasses

import pytest

from hal.reading import Reading
from tests.rig import Rig
from unit_controller.calibration import Calibrations
from unit_controller.controller import UnitController
from unit_controller.errors import CommandRefused
from unit_controller.events import EventKind

ACID = "P-201"


async def calibrating_rig(*, preload: str = "water") -> tuple[Rig, Calibrations]:
    rig = Rig(preload=preload)
    await rig.scan()
    return rig, Calibrations(controller=rig.controller)


async def test_three_point_ph_calibration_of_a_healthy_probe_is_ok() -> None:
    rig, cal = await calibrating_rig()
    mid = await cal.ph("mid", 7.00)
    low = await cal.ph("low", 4.00)
    high = await cal.ph("high", 10.00, temperature_c=21.5)
    assert [r["points"] for r in (mid, low, high)] == [1, 2, 3]
    assert high["verdict"] == "ok"
    assert high["acid_slope_pct"] == pytest.approx(100.0, abs=0.5)
    assert high["base_slope_pct"] == pytest.approx(100.0, abs=0.5)
    assert high["calibrated_points"] == ["mid", "low", "high"]
    assert high["temperature_c"] == 21.5
    snapshot = rig.controller.snapshot
    assert snapshot is not None
    assert mid["temperature_c"] == snapshot.image.temperature.value  # TT-101 by default
    cal_events = [e for e in rig.events if e.kind is EventKind.COMMAND]
    assert [e.data["command"] for e in cal_events] == ["cal ph"] * 3


async def test_low_before_mid_is_refused_and_nothing_is_calibrated() -> None:
    _, cal = await calibrating_rig()
    with pytest.raises(CommandRefused, match=r"cannot calibrate low before mid"):
        await cal.ph("low", 4.00)
    assert (await cal.ph_status())["points"] == 0


async def test_clear_then_status_reports_no_calibration() -> None:
    _, cal = await calibrating_rig()
    await cal.ph("mid", 7.00)
    assert (await cal.ph_status())["calibrated"] is True
    cleared = await cal.ph_clear()
    assert cleared["cleared"] is True
    assert cleared["points"] == 0
    status = await cal.ph_status()
    assert status["calibrated"] is False
    assert status["points"] == 0


async def test_a_tired_electrode_is_refused_with_its_slope_figures() -> None:
    rig, cal = await calibrating_rig()
    await cal.ph("mid", 7.00)
    rig.unit.ph.model.slope = 0.8
    with pytest.raises(CommandRefused, match=r"refused at low 4\.00: .*acid slope 80\.0 %"):
        await cal.ph("low", 4.00)
    # The circuit had taken the point all the same, and batches ran on it: cleared, and said.
    status = await cal.ph_status()
    assert (status["calibrated"], status["points"]) == (False, 0)
    cleared = [e for e in rig.events if e.kind is EventKind.COMMAND][-1]
    assert cleared.data["command"] == "cal ph clear"
    assert "low 4.00 refused" in cleared.text


async def test_a_drifted_probe_reads_true_after_a_mid_calibration() -> None:
    rig, cal = await calibrating_rig()
    true_ph = rig.unit.plant.ph
    rig.unit.ph.model.drift_per_s = 0.1 / 60.0
    await rig.run_for(60.0)
    rig.unit.ph.model.drift_per_s = 0.0
    rig.unit.ph.model.noise = 0.0
    drifted = (await rig.run_for(2.0)).image.ph.value
    assert drifted is not None
    assert drifted - true_ph > 0.05
    result = await cal.ph("mid", 7.00)
    assert result["verdict"] == "ok"  # 0.1 pH ≈ 6 mV: within ±30 mV
    corrected = (await rig.run_for(2.0)).image.ph.value
    assert corrected == pytest.approx(rig.unit.plant.ph, abs=0.02)


async def test_buffer_values_out_of_their_band_are_refused() -> None:
    _, cal = await calibrating_rig()
    for point, value, message in [
        ("mid", 4.0, r"mid buffer must be pH 6 to 8"),
        ("low", 6.5, r"low buffer must be below pH 6"),
        ("high", 7.5, r"high buffer must be above pH 8"),
        ("high", 15.0, r"buffer pH must be 0 to 14"),
        ("top", 7.0, r"must be mid, low or high"),
    ]:
        with pytest.raises(CommandRefused, match=message):
            await cal.ph(point, value)
    assert (await cal.ph_status())["points"] == 0


async def test_a_hot_reactor_is_not_taken_for_the_buffers_temperature() -> None:
    # Without a °C the reactor's reading stands for the buffer's: not from a reactor at 87 °C.
    rig, cal = await calibrating_rig()
    rig.unit.plant.temperature_c = 87.0
    rig.unit.rtd.model.reset(87.0)
    await rig.run_for(5.0)
    with pytest.raises(CommandRefused, match=r"TT-101 reads 8\d\.\d °C, no buffer's temperature"):
        await cal.ph("mid", 7.00)
    assert (await cal.ph("mid", 7.00, temperature_c=22.0))["points"] == 1
    # Nor from one at 55 °C, where a co-precipitation ends and a tech would calibrate.
    rig.unit.plant.temperature_c = 55.0
    rig.unit.rtd.model.reset(55.0)
    await rig.run_for(5.0)
    with pytest.raises(CommandRefused, match=r"TT-101 reads 5\d\.\d °C, no buffer's temperature"):
        await cal.ph("low", 4.00)


async def test_pump_calibration_after_a_jog_is_accepted() -> None:
    rig, cal = await calibrating_rig()
    await rig.controller.set_manual(True, source="console")
    await rig.controller.jog_pump(ACID, 10.0, source="console", cylinder=True)
    await rig.run_for(10.0)
    result = await cal.pump(ACID, 9.7)
    assert result == {"pump": ACID, "measured_ml": 9.7, "calibrated": True}
    assert await rig.unit.pumps[ACID].is_calibrated()
    # One measurement, one calibration: the same run twice is a second guess, not a measure.
    with pytest.raises(CommandRefused, match=r"calibrated against already\): jog pump P-201 10 c"):
        await cal.pump(ACID, 5.01)


async def test_acid_jogged_into_a_cylinder_charges_no_reactor() -> None:
    # Only into the reactor does acid make H2 there: a jog into a cylinder opens no purge.
    rig, _ = await calibrating_rig()
    await rig.controller.set_manual(True, source="console")
    assert not rig.controller.reactor_charged
    await rig.controller.jog_pump(ACID, 10.0, source="console", cylinder=True)
    snap = await rig.run_for(2.0)
    assert snap.outputs.pumps.get(ACID, 0.0) > 0.0
    assert not rig.controller.reactor_charged
    assert not snap.outputs.purge_valve
    await rig.run_for(10.0)
    assert not rig.controller.reactor_charged
    await rig.controller.jog_pump(ACID, 1.0, source="console")  # into the reactor: charged
    await rig.run_for(2.0)
    assert rig.controller.reactor_charged


async def test_pump_calibration_stands_only_on_a_whole_dose_into_a_cylinder() -> None:
    rig, cal = await calibrating_rig()
    await rig.controller.set_manual(True, source="console")
    not_measured = r"its last run was not a whole dose into a measuring cylinder"
    with pytest.raises(CommandRefused, match=not_measured):
        await cal.pump(ACID, 10.0)  # no run at all
    await rig.controller.jog_pump(ACID, 10.0, source="console")  # into the reactor
    await rig.run_for(10.0)
    with pytest.raises(CommandRefused, match=not_measured):
        await cal.pump(ACID, 10.0)
    # A cylinder run followed by another run of the pump is not the last run any more.
    await rig.controller.jog_pump(ACID, 10.0, source="console", cylinder=True)
    await rig.run_for(10.0)
    await rig.controller.jog_pump(ACID, 5.0, source="console")
    await rig.run_for(10.0)
    with pytest.raises(CommandRefused, match=not_measured):
        await cal.pump(ACID, 10.0)
    assert not await rig.unit.pumps[ACID].is_calibrated()


async def test_absurd_pump_volumes_are_refused() -> None:
    rig, cal = await calibrating_rig()
    await rig.controller.set_manual(True, source="console")
    await rig.controller.jog_pump(ACID, 10.0, source="console", cylinder=True)
    await rig.run_for(10.0)
    for tag, measured, message in [
        (ACID, 0.0, r"more than 0 and at most 1000 mL"),
        (ACID, -3.0, r"more than 0"),
        (ACID, 50.0, r"more than 2× off"),
        ("P-999", 10.0, r"no dosing pump 'P-999'"),
    ]:
        with pytest.raises(CommandRefused, match=message):
            await cal.pump(tag, measured)
    assert not await rig.unit.pumps[ACID].is_calibrated()


async def test_calibration_is_refused_while_a_batch_executes() -> None:
    rig = Rig()
    await rig.start("smoke")
    cal = Calibrations(controller=rig.controller)
    with pytest.raises(CommandRefused, match=r"while a batch is under way \(state EXECUTE\)"):
        await cal.ph_status()
    with pytest.raises(CommandRefused, match=r"while a batch is under way"):
        await cal.ph("mid", 7.0)
    with pytest.raises(CommandRefused, match=r"while a batch is under way"):
        await cal.pump(ACID, 10.0)


async def test_a_batch_cannot_start_while_a_calibration_is_in_progress() -> None:
    rig = Rig()
    await rig.scan()
    await rig.controller.command("reset", source="test")
    await rig.scan()
    async with rig.controller.outside_batch("calibrate the pH probe AT-101"):
        with pytest.raises(CommandRefused, match=r"calibrate the pH probe AT-101 is in progress"):
            await rig.controller.command("start", source="test", recipe="smoke")
    await rig.controller.command("start", source="test", recipe="smoke")


class _PlainProbe:
    """A pH probe that reads but cannot calibrate."""

    tag = "AT-101"

    def latest(self) -> Reading[float]:
        return Reading.ok(7.0, 0.0)

    def compensate(self, temperature_c: float) -> None:
        pass


async def test_a_probe_that_cannot_calibrate_is_refused_clearly() -> None:
    rig = Rig(preload="water")
    board = dataclasses.replace(rig.unit.board, ph=_PlainProbe())
    controller = UnitController(config=rig.config, board=board, clock=rig.clock)
    with pytest.raises(CommandRefused, match=r"AT-101: this backend cannot calibrate"):
        await Calibrations(controller=controller).ph_status()


async def test_a_silent_circuit_is_refused_at_once_naming_it() -> None:
    # Not queued for the request's whole timeout, the tech told the controller did not answer.
    rig, cal = await calibrating_rig()
    rig.inject("device_silent", "AT-101")
    await rig.run_for(20.0)
    with pytest.raises(CommandRefused, match=r"AT-101 is not answering \(.*\): check its cable"):
        await cal.ph("mid", 7.00, temperature_c=22.0)
    rig, cal = await calibrating_rig()
    await rig.controller.set_manual(True, source="console")
    await rig.controller.jog_pump(ACID, 10.0, source="console", cylinder=True)
    await rig.run_for(10.0)
    rig.inject("device_silent", ACID)
    await rig.run_for(20.0)
    with pytest.raises(CommandRefused, match=rf"{ACID} is not answering"):
        await cal.pump(ACID, 9.7)
