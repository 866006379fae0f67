"""Welded SSR detection: a rise with the heater off trips; a normal coast-down does not."""

from __future__ import annotations

from hal.outputs import Outputs
from unit_controller.interlocks import (
    Force,
    InterlockContext,
    Interlocks,
    SafetyFilter,
    Trip,
    TripAction,
    WeldedSsrDetector,
)

from . import Reactor, default_limits, make_image, sim_wiring, time_proportioned

DT = 1.0


def _detector() -> WeldedSsrDetector:
    limits = default_limits()
    return WeldedSsrDetector(
        rise_c=limits.heater_off_rise_c,
        window_s=limits.heater_off_window_s,
        settle_s=limits.heater_off_settle_s,
    )


def test_no_trip_on_coast_down_after_heater_turns_off_at_setpoint() -> None:
    detector = _detector()
    reactor = Reactor()
    now = 0.0
    while reactor.probe_c < 75.0:  # full power up to setpoint, then off: the worst coast
        detector.update(now=now, temperature_c=reactor.probe_c, heater_on=True)
        reactor.step(DT, heating=True)
        now += DT
    peak = reactor.probe_c
    for _ in range(int(3600 / DT)):
        assert detector.update(now=now, temperature_c=reactor.probe_c, heater_on=False) is None
        reactor.step(DT, heating=False)
        now += DT
    assert reactor.probe_c < peak + 3.0  # the coast was real but below the rise limit


def test_no_trip_with_slow_element_on_coast_down() -> None:
    detector = _detector()
    reactor = Reactor(element_tau_s=180.0)
    reactor.element_w = reactor.power_w  # element fully hot at switch-off
    for i in range(int(3600 / DT)):
        assert detector.update(now=i * DT, temperature_c=reactor.probe_c, heater_on=False) is None
        reactor.step(DT, heating=False)


def test_trips_when_temperature_rises_with_heater_commanded_off() -> None:
    detector = _detector()
    reactor = Reactor(liquid_c=60.0, probe_c=60.0)
    tripped_at = None
    for i in range(int(3600 / DT)):
        message = detector.update(now=i * DT, temperature_c=reactor.probe_c, heater_on=False)
        if message is not None:
            tripped_at = i * DT
            break
        reactor.step(DT, heating=True)  # the SSR is welded: the element heats regardless
    assert tripped_at is not None
    assert tripped_at < 15 * 60  # well before 90 °C high-high would catch it


def test_rise_measured_from_lowest_point_after_cooling() -> None:
    detector = _detector()
    # cool 2 °C, then rise 3 °C from the bottom: 1 °C above the start still trips
    temps = [70.0 - 0.01 * i for i in range(600)] + [64.0 + 0.01 * i for i in range(400)]
    results = [
        detector.update(now=float(i), temperature_c=t, heater_on=False) for i, t in enumerate(temps)
    ]
    assert any(r is not None for r in results)


def test_heater_pulses_restart_the_wait() -> None:
    detector = _detector()
    for i in range(2000):
        # a holding duty's periodic pulse means the heater was not off the whole window
        on = i % 100 == 0
        assert detector.update(now=float(i), temperature_c=60.0 + 0.01 * i, heater_on=on) is None


def test_welded_ssr_opens_contactor_within_one_scan_and_aborts() -> None:
    limits = default_limits()
    interlocks = Interlocks(limits=limits, wiring=sim_wiring())
    ctx = InterlockContext(executing=True, temperature_setpoint_c=60.0, heat_wanted=True)
    reactor = Reactor(liquid_c=60.0, probe_c=60.0)
    trips: list[Trip] = []
    now = 0.0
    while now < 3600 and not trips:
        # at setpoint the controller commands off; the welded SSR keeps the element on
        trips = [
            t
            for t in interlocks.evaluate(make_image(now, temperature=reactor.probe_c), ctx)
            if t.alarm
        ]
        reactor.step(DT, heating=True)
        now += DT
    assert [t.alarm_id for t in trips] == ["heater_stuck_on"]
    trip = trips[0]
    assert trip.action is TripAction.ABORT
    assert trip.latch
    assert Force.CONTACTOR in trip.forces
    desired = Outputs(heater_on_s=2.0, contactor=True, agitator=True)
    out = SafetyFilter().apply(desired, trips=trips, allow_process_outputs=True)
    assert out.contactor is False
    assert out.heater_on_s == 0.0
    assert out.agitator is True


def test_holding_at_setpoint_with_pid_pulses_never_trips() -> None:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    ctx = InterlockContext(executing=True, temperature_setpoint_c=75.0, heat_wanted=True)
    reactor = Reactor()
    on_s = 0.0
    for i in range(int(3 * 3600 / DT)):
        now = i * DT
        image = make_image(now, temperature=reactor.probe_c, heater_on_s=on_s)
        assert interlocks.evaluate(image, ctx) == []
        duty = min(1.0, max(0.0, 0.25 * (75.0 - reactor.probe_c) + 0.1))
        on_s = time_proportioned(now, duty)
        reactor.step(DT, heating=on_s > 0)
    assert abs(reactor.probe_c - 75.0) < 1.0
