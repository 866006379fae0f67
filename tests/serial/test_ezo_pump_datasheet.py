"""The EZO-PMP as its datasheet and real 1.06 circuits have it, and a driver that holds on it:
the maximum rate (DC,?), *TOOFAST, stops answered in any order, a motor without its supply and
a circuit that restarts mid-run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from hal.serial.ezo_link import EzoError
from hal.sim.emulators import ezo_pmp
from hal.sim.emulators.ezo_circuit import Refuse
from tests.serial.conftest import PUMP_TAG, PumpRig

MakeRig = Callable[..., contextlib.AbstractAsyncContextManager[PumpRig]]


def _rate(rig: PumpRig) -> float:
    return rig.unit.pumps[PUMP_TAG].commanded_ml_min()


def _runs(rig: PumpRig) -> list[str]:
    return [c for c in rig.sent("DC,") if c != "DC,?"]


async def test_dc_query_reports_the_maximum_and_a_faster_rate_is_too_fast(
    pump_rig_factory: MakeRig,
) -> None:
    async with pump_rig_factory(emulator={"max_ml_min": 58.5}) as rig:
        await rig.until(lambda: rig.driver.circuit_max_ml_min is not None, within_s=10, what="max")
        link = rig.driver.link
        assert await link.command("DC,?", wait_s=0.3, timeout_s=1.0) == ["?MAXRATE,58.50"]
        with pytest.raises(EzoError) as refused:
            await link.command("DC,70,1", wait_s=0.3, timeout_s=1.0)
        assert refused.value.reasons == ("*TOOFAST",)
        assert refused.value.code == "*ER"
        assert not rig.emulator.dispensing()


async def test_the_driver_caps_its_rate_at_the_circuits_maximum(pump_rig_factory: MakeRig) -> None:
    async with pump_rig_factory(emulator={"max_ml_min": 40.0}) as rig:
        with capture_logs() as logs:
            rig.driver.run(80.0)
            await rig.until(lambda: _rate(rig) == 40.0, within_s=10, what="capped run")
        assert _runs(rig)[-1].startswith("DC,40.00,")
        assert rig.driver.fault() is None
        assert rig.driver.sent_ml_min == 40.0
        assert rig.driver.circuit_max_ml_min == 40.0
        assert [e for e in logs if e["event"] == "ezo.pump_fault"] == []


async def test_too_fast_is_a_clear_fault_until_a_capped_run_lands(
    pump_rig_factory: MakeRig,
) -> None:
    async with pump_rig_factory() as rig:
        await rig.until(lambda: rig.driver.circuit_max_ml_min == 105.0, within_s=10, what="max")
        # Recalibrated behind the driver's back: the circuit can do less than it said.
        rig.emulator.max_ml_min = 30.0
        with capture_logs() as logs:
            rig.driver.run(60.0)
            await rig.until(lambda: _rate(rig) == 30.0, within_s=20, what="run at the new max")
        faults = [e for e in logs if e["event"] == "ezo.pump_fault"]
        assert faults
        assert "*TOOFAST" in faults[0]["fault"]
        assert any(e["event"] == "ezo.pump_fault_cleared" for e in logs)
        assert rig.driver.fault() is None


@pytest.mark.parametrize("order", ["done-ok", "ok-done", "done"])
async def test_a_stop_lands_whatever_order_ok_and_done_come_in(
    pump_rig_factory: MakeRig, order: str
) -> None:
    async with pump_rig_factory(emulator={"x_reply": order}) as rig:
        rig.driver.run(20.0)
        await rig.until(rig.emulator.dispensing, within_s=10, what="running")
        await rig.clock.sleep(3.0)
        rig.driver.run(0.0)
        await rig.until(lambda: not rig.emulator.dispensing(), within_s=5, what="stopped")
        await rig.clock.sleep(10.0)  # many polls later: the stop was taken once
        assert len(rig.sent("X")) == 1, rig.emulator.commands
        assert rig.driver.sent_ml_min == 0.0
        assert rig.driver.dispensed_ml().good
        assert rig.driver.dispensed_ml().value == pytest.approx(rig.emulator.total_ml(), abs=0.05)


async def test_a_stop_of_an_idle_circuit_is_a_plain_ok(pump_rig: PumpRig) -> None:
    # At start-up the driver stops the pump (its state is unknown); the idle circuit sends no
    # *DONE, and that is a stop all the same.
    await pump_rig.clock.sleep(5.0)
    assert len(pump_rig.sent("X")) == 1
    assert pump_rig.driver.sent_ml_min == 0.0


async def test_a_motor_without_its_supply_is_a_fault_naming_it(pump_rig: PumpRig) -> None:
    pump_rig.emulator.motor_supply(0.0)
    pump_rig.driver.run(20.0)
    await pump_rig.until(lambda: pump_rig.driver.fault() is not None, within_s=10, what="fault")
    assert "motor supply low (0.00 V)" in (pump_rig.driver.fault() or "")
    pump_rig.emulator.motor_supply(12.0)
    await pump_rig.until(lambda: pump_rig.driver.fault() is None, within_s=10, what="cleared")
    await pump_rig.until(lambda: _rate(pump_rig) == 20.0, within_s=10, what="running")


async def test_a_supply_fault_clears_while_stopped_once_the_supply_is_back(
    pump_rig: PumpRig,
) -> None:
    # A batch held by the fault stops the pump, so no run shows the supply back: the driver
    # asks PV,? while stopped, or the hold could never be lifted.
    pump_rig.emulator.motor_supply(0.0)
    pump_rig.driver.run(20.0)
    await pump_rig.until(lambda: pump_rig.driver.fault() is not None, within_s=10, what="fault")
    pump_rig.driver.run(0.0)
    await pump_rig.clock.sleep(12.0)  # stopped, asked PV,? and still low: the fault stays
    assert pump_rig.sent("PV,?")
    assert "motor supply low" in (pump_rig.driver.fault() or "")
    runs = len(_runs(pump_rig))
    pump_rig.emulator.motor_supply(12.0)
    await pump_rig.until(lambda: pump_rig.driver.fault() is None, within_s=10, what="cleared")
    assert len(_runs(pump_rig)) == runs  # no run was sent to find out
    assert _rate(pump_rig) == 0.0


async def _faulted_and_stopped(rig: PumpRig, *, volts: float) -> None:
    """A run refused for the supply at `volts`, then the pump stopped (as a hold does)."""
    rig.emulator.motor_supply(volts)
    rig.driver.run(20.0)
    await rig.until(lambda: rig.driver.fault() is not None, within_s=10, what="fault")
    rig.driver.run(0.0)
    await rig.until(lambda: rig.driver.sent_ml_min == 0.0, within_s=10, what="stopped")


async def test_a_supply_fault_clears_only_with_a_margin_over_what_the_refusal_said(
    pump_rig: PumpRig,
) -> None:
    # A circuit that refused at 10.5 V is not cleared at 10.85 V: a circuit whose threshold is a
    # little above ours would clear, run, refuse and hold again.
    await _faulted_and_stopped(pump_rig, volts=10.5)
    assert "motor supply low (10.50 V)" in (pump_rig.driver.fault() or "")
    pump_rig.emulator.motor_supply(10.85)  # above 10.8 V, within 0.5 V of what it refused at
    await pump_rig.clock.sleep(15.0)
    assert pump_rig.driver.fault() is not None
    pump_rig.emulator.motor_supply(12.0)
    await pump_rig.until(lambda: pump_rig.driver.fault() is None, within_s=10, what="cleared")


async def test_a_refusal_high_above_ours_still_clears_on_a_healthy_supply(
    pump_rig: PumpRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A circuit refusing at 11.7 V: the margin would ask 12.2 V, more than a healthy 12 V supply
    # reads; the clear level is capped, or the fault (and the hold) would stay for good.
    monkeypatch.setattr(ezo_pmp, "MOTOR_MIN_V", 11.8)
    await _faulted_and_stopped(pump_rig, volts=11.7)
    pump_rig.emulator.motor_supply(12.0)
    await pump_rig.until(lambda: pump_rig.driver.fault() is None, within_s=10, what="cleared")


async def test_a_circuit_that_will_not_say_its_supply_keeps_its_fault_and_its_totals(
    pump_rig: PumpRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(head: str, args: list[str]) -> list[str]:
        raise Refuse

    monkeypatch.setattr(pump_rig.emulator, "_pump_voltage", refuse)  # firmware without PV
    await _faulted_and_stopped(pump_rig, volts=0.0)
    asked, totals = len(pump_rig.sent("PV,?")), len(pump_rig.sent("TV,?"))
    await pump_rig.clock.sleep(20.0)
    assert len(pump_rig.sent("PV,?")) - asked <= 5  # about once per recheck period, not per poll
    assert len(pump_rig.sent("TV,?")) - totals >= 3  # the totals go on being read
    assert pump_rig.driver.fault() is not None


async def test_a_circuit_that_restarts_without_a_word_is_re_armed(pump_rig: PumpRig) -> None:
    pump_rig.driver.run(25.0)
    await pump_rig.until(lambda: _rate(pump_rig) == 25.0, within_s=10, what="running")
    runs = len(_runs(pump_rig))
    # A power cycle whose *RS/*RE was lost: Status says P as before; only the readings it
    # streams again (continuous mode is back on) tell.
    pump_rig.emulator.power_cycle(announce=False)
    assert _rate(pump_rig) == 0.0
    await pump_rig.until(lambda: _rate(pump_rig) == 25.0, within_s=20, what="re-armed")
    assert len(_runs(pump_rig)) > runs
    assert not pump_rig.emulator.continuous  # C,0 sent again
