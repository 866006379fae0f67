"""EZO-PMP driver against the emulator on a real pty: bounded runs, renewal, stop, totals.

Every run the circuit gets is bounded (`DC,<rate>,<minutes>`), renewed before it ends while the
rate holds, stopped with X; totals count what the circuit was told, even on a stalled pump.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from tests.serial.conftest import PUMP_TAG, PumpRig

MakeRig = Callable[..., contextlib.AbstractAsyncContextManager[PumpRig]]


def _rate(rig: PumpRig) -> float:
    return rig.unit.pumps[PUMP_TAG].commanded_ml_min()


async def test_a_rate_goes_out_as_a_bounded_run_never_open_ended(pump_rig: PumpRig) -> None:
    pump_rig.driver.run(12.5)
    await pump_rig.until(lambda: _rate(pump_rig) == 12.5, within_s=30.0, what="pump running")
    assert [c for c in pump_rig.sent("DC,") if c != "DC,?"] == ["DC,12.50,0.25"]
    assert not pump_rig.sent("D,*")


async def test_an_unchanged_rate_is_renewed_before_its_bound_runs_out(pump_rig: PumpRig) -> None:
    pump_rig.driver.run(20.0)
    await pump_rig.until(lambda: _rate(pump_rig) == 20.0, within_s=30.0, what="pump running")
    # Bound 15 s, renewed 5 s before: the pump must never stop in between.
    end = pump_rig.clock.monotonic() + 25.0
    while pump_rig.clock.monotonic() < end:
        assert _rate(pump_rig) == 20.0, "the run lapsed before it was renewed"
        await pump_rig.clock.sleep(0.25)
    assert len(pump_rig.sent("DC,20.00,0.25")) >= 3


async def test_zero_stops_the_pump_with_x(pump_rig: PumpRig) -> None:
    pump_rig.driver.run(30.0)
    await pump_rig.until(lambda: _rate(pump_rig) == 30.0, within_s=30.0, what="pump running")
    pump_rig.driver.run(0.0)
    await pump_rig.until(lambda: _rate(pump_rig) == 0.0, within_s=30.0, what="pump stopped")
    assert pump_rig.emulator.commands[-1] in ("X", "TV,?")
    assert pump_rig.sent("X")


@pytest.mark.parametrize(("asked", "sent"), [(500.0, 105.0), (0.1, 0.5), (-3.0, 0.0)])
async def test_rates_are_clamped_to_the_pump_range(
    pump_rig: PumpRig, asked: float, sent: float
) -> None:
    pump_rig.driver.run(asked)
    await pump_rig.until(
        lambda: pump_rig.driver.sent_ml_min == sent, within_s=30.0, what="rate sent"
    )
    assert _rate(pump_rig) == sent


async def test_a_rate_not_renewed_by_the_scan_lapses(pump_rig_factory: MakeRig) -> None:
    async with pump_rig_factory(lease_s=2.0) as rig:
        rig.driver.run(40.0)
        await rig.until(lambda: _rate(rig) == 40.0, within_s=30.0, what="pump running")
        # No more run() calls, as from a hung scan: the driver stops the pump by itself.
        await rig.until(lambda: _rate(rig) == 0.0, within_s=30.0, what="pump stopped")
        assert rig.sent("X")


async def test_totals_follow_what_was_dispensed(pump_rig: PumpRig) -> None:
    pump_rig.driver.run(60.0)  # 1 mL/s
    await pump_rig.until(lambda: _rate(pump_rig) == 60.0, within_s=30.0, what="pump running")
    await pump_rig.until(
        lambda: (pump_rig.driver.dispensed_ml().value or 0.0) >= 8.0,
        within_s=40.0,
        what="8 mL dispensed",
    )
    pump_rig.driver.run(0.0)
    await pump_rig.until(lambda: _rate(pump_rig) == 0.0, within_s=30.0, what="pump stopped")
    total = pump_rig.emulator.total_ml()
    await pump_rig.until(
        lambda: pump_rig.driver.dispensed_ml().value == pytest.approx(total, abs=0.01),
        within_s=30.0,
        what="total read back",
    )
    assert pump_rig.driver.dispensed_ml().good


async def test_a_stalled_pump_still_reports_what_it_was_told(pump_rig: PumpRig) -> None:
    pump = pump_rig.unit.pumps[PUMP_TAG]
    pump.stalled = True
    pump_rig.driver.run(60.0)
    await pump_rig.until(
        lambda: (pump_rig.driver.dispensed_ml().value or 0.0) >= 5.0,
        within_s=40.0,
        what="5 mL counted",
    )
    assert pump.delivered_ml_min() == 0.0  # nothing reaches the reactor


async def test_brownout_stops_the_pump_and_the_run_is_sent_again(pump_rig: PumpRig) -> None:
    pump_rig.driver.run(25.0)
    await pump_rig.until(lambda: _rate(pump_rig) == 25.0, within_s=30.0, what="pump running")
    sent = len(pump_rig.sent("DC,"))
    pump_rig.emulator.brownout()
    assert _rate(pump_rig) == 0.0
    await pump_rig.until(lambda: _rate(pump_rig) == 25.0, within_s=30.0, what="run re-sent")
    assert len(pump_rig.sent("DC,")) > sent
    assert len(pump_rig.sent("C,0")) == 2, pump_rig.emulator.commands


async def test_a_restart_seen_only_in_its_total_sends_the_run_again_at_once(
    pump_rig: PumpRig,
) -> None:
    # Its start-up codes lost and no readings streaming: the pump stood still until the next
    # renewal while the scan counted its rate, though TV going back had shown the restart.
    pump_rig.driver.run(25.0)
    await pump_rig.until(lambda: _rate(pump_rig) == 25.0, within_s=30.0, what="pump running")
    await pump_rig.clock.sleep(4.0)  # a total or two read, so it can go back
    pump_rig.emulator.power_cycle(announce=False)
    pump_rig.emulator.continuous = False
    assert _rate(pump_rig) == 0.0
    restarted = pump_rig.clock.monotonic()
    await pump_rig.until(lambda: _rate(pump_rig) == 25.0, within_s=30.0, what="run re-sent")
    assert pump_rig.clock.monotonic() - restarted < 8.0  # a total read and a start-up
    assert len(pump_rig.sent("C,0")) == 2, pump_rig.emulator.commands


async def test_silent_pump_totals_read_device_lost(pump_rig: PumpRig) -> None:
    pump_rig.emulator.silent(True)
    await pump_rig.until(
        lambda: "device_lost" in (pump_rig.driver.dispensed_ml().why or ""),
        within_s=40.0,
        what="device lost",
    )
    pump_rig.emulator.silent(False)
    await pump_rig.until(
        lambda: pump_rig.driver.dispensed_ml().good, within_s=40.0, what="totals again"
    )


async def test_volume_calibration_goes_to_the_circuit_and_is_reported(pump_rig: PumpRig) -> None:
    assert await pump_rig.driver.is_calibrated() is False
    # The circuit calibrates the dispense before it: run one into a measuring cylinder first.
    pump_rig.driver.run(30.0)
    await pump_rig.until(pump_rig.emulator.dispensing, within_s=5.0, what="pump running")
    await pump_rig.clock.sleep(10.0)
    pump_rig.driver.run(0.0)
    await pump_rig.until(lambda: not pump_rig.emulator.dispensing(), within_s=5.0, what="stop")
    ran = pump_rig.emulator.total_ml()
    assert ran > 4.0
    assert await pump_rig.driver.calibrate(round(ran * 0.9, 2)) is True
    assert pump_rig.emulator.calibration == 2  # a timed run: the volume/time calibration
    await pump_rig.driver.clear_calibration()
    assert await pump_rig.driver.is_calibrated() is False


async def test_a_measured_volume_that_is_not_a_volume_is_refused(pump_rig: PumpRig) -> None:
    with pytest.raises(ValueError, match="measured volume"):
        await pump_rig.driver.calibrate(-3.0)
    assert pump_rig.emulator.calibration == 0


async def test_a_refused_stop_is_a_fault_naming_a_pump_that_may_still_run(
    pump_rig: PumpRig,
) -> None:
    # *ER to every X: the circuit went on dosing (90 mL for a 10 mL jog) while status said the
    # pump was off, and nothing was raised.
    pump_rig.driver.run(30.0)
    await pump_rig.until(lambda: _rate(pump_rig) == 30.0, within_s=30.0, what="pump running")
    pump_rig.emulator.error_next(10_000)
    pump_rig.driver.run(0.0)
    await pump_rig.until(
        lambda: pump_rig.driver.fault() is not None, within_s=30.0, what="a pump fault"
    )
    assert pump_rig.driver.fault() == "the circuit answered *ER to X: it may still run"
    assert _rate(pump_rig) == 30.0  # it does: the fault is the truth
    pump_rig.emulator.error_next(0)
    await pump_rig.until(lambda: _rate(pump_rig) == 0.0, within_s=30.0, what="pump stopped")
    await pump_rig.until(
        lambda: pump_rig.driver.fault() is None, within_s=30.0, what="the fault cleared"
    )


async def test_a_run_refused_without_a_reason_is_a_fault(pump_rig: PumpRig) -> None:
    # A renewal refused: the circuit stopped at its bound while the scan counted 75 mL/min on.
    pump_rig.emulator.error_next(10_000)
    pump_rig.driver.run(30.0)
    await pump_rig.until(
        lambda: pump_rig.driver.fault() is not None, within_s=30.0, what="a pump fault"
    )
    fault = pump_rig.driver.fault()
    assert fault is not None
    assert fault.startswith("the circuit answered *ER to DC,30.00,0.25: not running")


async def test_a_start_goes_out_at_once_not_at_the_next_poll(pump_rig_factory: MakeRig) -> None:
    # The scan counts a dose from when it asks for it: a start that waited out the poll
    # (0.5 s on a unit) delivered a 1 mL jog 12 % short. Here the poll is 5 s apart.
    async with pump_rig_factory(period_s=5.0, totals_period_s=5.0) as rig:
        rig.driver.run(0.0)
        await rig.until(lambda: bool(rig.sent("DC,?")), within_s=30.0, what="initialised")
        await rig.clock.sleep(1.0)  # well inside a poll period
        asked_at = rig.clock.monotonic()
        rig.driver.run(12.5)
        await rig.until(lambda: _rate(rig) == 12.5, within_s=1.0, what="pump running at once")
        assert rig.clock.monotonic() - asked_at < 0.5
        # A new rate, and a stop, likewise.
        rig.driver.run(30.0)
        await rig.until(lambda: _rate(rig) == 30.0, within_s=1.0, what="new rate at once")
        rig.driver.run(0.0)
        await rig.until(lambda: _rate(rig) == 0.0, within_s=1.0, what="stopped at once")


async def test_after_a_lapsed_lease_the_same_rate_asked_again_goes_out_at_once(
    pump_rig_factory: MakeRig,
) -> None:
    async with pump_rig_factory(period_s=5.0, totals_period_s=5.0, lease_s=2.0) as rig:
        rig.driver.run(12.5)
        await rig.until(lambda: _rate(rig) == 12.5, within_s=10.0, what="pump running")
        # The scan stalls past the lease: the next poll stops the pump.
        await rig.until(lambda: _rate(rig) == 0.0, within_s=15.0, what="lapsed and stopped")
        await rig.clock.sleep(1.0)
        rig.driver.run(12.5)  # the scan back, asking what it asked before: a start
        await rig.until(lambda: _rate(rig) == 12.5, within_s=1.0, what="running again at once")
