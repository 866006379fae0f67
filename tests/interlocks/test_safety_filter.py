"""The safety filter only ever turns outputs off, and is the one place that does."""

from __future__ import annotations

from dataclasses import replace

from hal.outputs import Outputs
from unit_controller.interlocks import Force, Priority, SafetyFilter, Trip, TripAction

ALL_ON = Outputs(
    heater_on_s=3.0,
    contactor=True,
    agitator=True,
    fill_pump=True,
    drain_valve=True,
    purge_valve=True,
).with_pumps({"P-201": 4.0, "P-203": 1.0})


def _trip(*forces: Force) -> Trip:
    return Trip(
        alarm_id="x",
        tag="T-100",
        priority=Priority.HIGH,
        action=TripAction.HOLD,
        forces=frozenset(forces),
        latch=False,
        message="",
    )


def test_no_trips_passes_outputs_through_unchanged() -> None:
    assert SafetyFilter().apply(ALL_ON, trips=[], allow_process_outputs=True) == ALL_ON


def test_everything_off_when_process_outputs_not_allowed() -> None:
    assert SafetyFilter().apply(ALL_ON, trips=[], allow_process_outputs=False) == Outputs.safe()


def test_contactor_open_whenever_heater_may_not_run() -> None:
    out = SafetyFilter().apply(ALL_ON, trips=[_trip(Force.HEATER)], allow_process_outputs=True)
    assert out.heater_on_s == 0.0
    assert not out.contactor
    assert out.agitator
    assert out.fill_pump
    assert out.pump("P-201") == 4.0


def test_dosing_force_stops_every_pump_but_not_the_fill_pump() -> None:
    out = SafetyFilter().apply(ALL_ON, trips=[_trip(Force.DOSING)], allow_process_outputs=True)
    assert dict(out.pumps) == {"P-201": 0.0, "P-203": 0.0}
    assert out.fill_pump
    assert out.heater_on_s == 3.0


def test_forces_combine_across_trips_and_input_is_not_mutated() -> None:
    trips = [_trip(Force.AGITATOR), _trip(Force.INFLOWS)]
    out = SafetyFilter().apply(ALL_ON, trips=trips, allow_process_outputs=True)
    assert not out.agitator
    assert not out.fill_pump
    assert out.pump("P-203") == 0.0
    assert out.drain_valve
    assert out.purge_valve
    assert out.contactor
    assert ALL_ON.agitator
    assert ALL_ON.pump("P-203") == 1.0


def test_filter_never_turns_anything_on_but_the_jacket_when_too_hot() -> None:
    off = Outputs.safe()
    for force in Force:
        out = SafetyFilter().apply(off, trips=[_trip(force)], allow_process_outputs=True)
        expected = replace(off, cooling_valve=True) if force is Force.COOL else off
        assert out == expected


def test_too_hot_keeps_the_jacket_open_through_an_abort_and_an_estop() -> None:
    trips = [_trip(Force.HEATER, Force.CONTACTOR, Force.COOL), _trip(Force.ALL)]
    for allowed in (True, False):
        out = SafetyFilter().apply(ALL_ON, trips=trips, allow_process_outputs=allowed)
        assert out == replace(Outputs.safe(), cooling_valve=True)


def test_the_jacket_closes_with_everything_else_when_nothing_is_too_hot() -> None:
    cooling = replace(ALL_ON, cooling_valve=True)
    assert not SafetyFilter().apply(cooling, trips=[], allow_process_outputs=False).cooling_valve
