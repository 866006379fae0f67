"""HeaterVerifier: trips on a heater that does not heat, never on a normal heat-up or hold."""

from __future__ import annotations

import pytest

from unit_controller.config import VerifyHeaterLimits
from unit_controller.interlocks import HeaterVerifier, InterlockContext, Interlocks, Trip

from . import Reactor, default_limits, make_image, sim_wiring, time_proportioned

DT = 0.5
SETPOINT = 75.0


def _duty(setpoint: float, probe_c: float) -> float:
    # a plain P controller with bias is enough to drive the heater like the PID would
    return min(1.0, max(0.0, 0.25 * (setpoint - probe_c) + 0.1))


def _run(
    verifier: HeaterVerifier,
    reactor: Reactor,
    *,
    start: float,
    seconds: float,
    setpoint: float | None = SETPOINT,
    heater_works: bool = True,
    max_duty: float = 1.0,
) -> float | None:
    """Drive the heat model for `seconds`; the time of the first trip, or None."""
    steps = int(seconds / DT)
    for i in range(steps):
        now = start + i * DT
        duty = 0.0 if setpoint is None else min(max_duty, _duty(setpoint, reactor.probe_c))
        on = time_proportioned(now, duty) > 0
        if (
            verifier.update(now=now, temperature_c=reactor.probe_c, target_c=setpoint, driven=on)
            is not None
        ):
            return now
        reactor.step(DT, heating=on and heater_works)
    return None


def test_no_trip_on_normal_heat_up_of_100_l_and_hold_at_setpoint() -> None:
    verifier = HeaterVerifier(VerifyHeaterLimits())
    reactor = Reactor()
    assert _run(verifier, reactor, start=0.0, seconds=3 * 3600) is None
    assert abs(reactor.probe_c - SETPOINT) < 1.0  # the model really reached and held it


def test_no_trip_on_heat_up_with_slowest_element_lag() -> None:
    verifier = HeaterVerifier(VerifyHeaterLimits())
    reactor = Reactor(element_tau_s=180.0, probe_tau_s=40.0)
    assert _run(verifier, reactor, start=0.0, seconds=2 * 3600) is None


def test_trips_on_open_heater_at_full_duty_within_check_gain_time() -> None:
    limits = VerifyHeaterLimits()
    verifier = HeaterVerifier(limits)
    tripped_at = _run(verifier, Reactor(), start=0.0, seconds=3600, heater_works=False)
    assert tripped_at is not None
    assert limits.check_gain_time_s <= tripped_at <= limits.check_gain_time_s + 5
    assert verifier.fault is not None
    assert "gain" in verifier.fault


def test_trips_when_heater_fails_while_holding_setpoint() -> None:
    verifier = HeaterVerifier(VerifyHeaterLimits())
    reactor = Reactor()
    assert _run(verifier, reactor, start=0.0, seconds=2 * 3600) is None
    tripped_at = _run(verifier, reactor, start=2 * 3600, seconds=3 * 3600, heater_works=False)
    assert tripped_at is not None
    assert tripped_at < 2 * 3600 + 2 * 3600


# What Interlocks passes for the simulator's wiring: 6 kW into the 112 L at high-high.
FULL_RISE_C_PER_S = 6000.0 / (112.0 * 4800.0)


@pytest.mark.parametrize(
    "reactor",
    [
        Reactor(),
        Reactor(power_w=3000.0),  # an element giving half what the config says
        Reactor(ua_w_k=40.0, ambient_c=0.0, element_tau_s=180.0, probe_tau_s=40.0),
        Reactor(heat_capacity_j_k=112.0 * 4800.0),  # the fullest, heaviest liquor
    ],
    ids=["usual", "half_power", "lossy_cold_slow", "full_heavy"],
)
def test_heat_share_never_trips_a_working_heater(reactor: Reactor) -> None:
    verifier = HeaterVerifier(VerifyHeaterLimits(), full_rise_c_per_s=FULL_RISE_C_PER_S)
    assert _run(verifier, reactor, start=0.0, seconds=3 * 3600) is None
    assert abs(reactor.probe_c - SETPOINT) < 2.0  # reached (the P drive's offset aside)


def test_open_heater_under_other_heat_trips_on_the_heat_share_only() -> None:
    # Liquor under a warm agitator gains 2 °C a window with the element open: Klipper's
    # gain alone calls that heating; the rise 6 kW would give says it is not.
    def open_heater(full_rise: float) -> tuple[float | None, str | None]:
        verifier = HeaterVerifier(VerifyHeaterLimits(), full_rise_c_per_s=full_rise)
        reactor = Reactor(other_w=1100.0)
        tripped = _run(verifier, reactor, start=0.0, seconds=3600, heater_works=False)
        return tripped, verifier.fault

    assert open_heater(0.0) == (None, None)
    tripped_at, fault = open_heater(FULL_RISE_C_PER_S)
    assert tripped_at is not None
    assert tripped_at <= 2 * VerifyHeaterLimits().check_gain_time_s + 5
    assert fault is not None
    assert "less than 25% of the" in fault
    assert "not the heater's" in fault


def test_low_duty_never_trips_even_without_heating() -> None:
    verifier = HeaterVerifier(VerifyHeaterLimits())
    # a phase capping the heater at 30 % gives no evidence against the heater
    assert (
        _run(verifier, Reactor(), start=0.0, seconds=3 * 3600, heater_works=False, max_duty=0.3)
        is None
    )


def test_fault_clears_when_heater_no_longer_wanted() -> None:
    verifier = HeaterVerifier(VerifyHeaterLimits())
    assert _run(verifier, Reactor(), start=0.0, seconds=3600, heater_works=False) is not None
    assert verifier.update(now=3600.0, temperature_c=20.0, target_c=None, driven=False) is None
    assert verifier.fault is None


def test_bad_temperature_is_skipped_not_judged() -> None:
    verifier = HeaterVerifier(VerifyHeaterLimits())
    verifier.update(now=0.0, temperature_c=20.0, target_c=SETPOINT, driven=True)
    for i in range(1, 4000):
        assert (
            verifier.update(now=float(i), temperature_c=None, target_c=SETPOINT, driven=True)
            is None
        )


def test_interlocks_report_heater_not_heating_and_force_heater_off() -> None:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    ctx = InterlockContext(executing=True, temperature_setpoint_c=SETPOINT, heat_wanted=True)
    trips: list[Trip] = []
    for second in range(1000):
        image = make_image(float(second), temperature=20.0, heater_on_s=4.0)
        trips = interlocks.evaluate(image, ctx)
        if trips:
            break
    assert [t.alarm_id for t in trips] == ["heater_not_heating"]
    assert trips[0].tag == "E-101"
    assert trips[0].latch
