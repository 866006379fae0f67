"""Each interlock forces its outputs within one scan (evaluate + safety filter)."""

from __future__ import annotations

from hal.outputs import Outputs
from hal.reading import BadReason, Reading
from hal.wiring import LevelPoint
from unit_controller.interlocks import (
    InterlockContext,
    Interlocks,
    Priority,
    SafetyFilter,
    Trip,
    TripAction,
    strongest_action,
)
from unit_controller.process_image import ProcessImage

from . import default_limits, make_image, sim_wiring

EXECUTING = InterlockContext(
    executing=True, temperature_setpoint_c=60.0, heat_wanted=True, agitator_wanted=True
)
EVERYTHING_ON = Outputs(
    heater_on_s=3.0,
    contactor=True,
    agitator=True,
    fill_pump=True,
    drain_valve=True,
    purge_valve=True,
).with_pumps({"P-201": 4.0, "P-205": 2.0})


def _scan(image: ProcessImage, ctx: InterlockContext = EXECUTING) -> tuple[list[Trip], Outputs]:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    trips = interlocks.evaluate(image, ctx)
    return trips, SafetyFilter().apply(EVERYTHING_ON, trips=trips, allow_process_outputs=True)


def _only(trips: list[Trip]) -> Trip:
    assert len(trips) == 1, trips
    return trips[0]


def test_no_trips_and_outputs_untouched_in_normal_conditions() -> None:
    trips, out = _scan(make_image(10.0, temperature=55.0))
    assert trips == []
    assert out == EVERYTHING_ON


def test_heater_forced_off_within_one_scan_when_level_low_low() -> None:
    trips, out = _scan(make_image(10.0, levels={LevelPoint.LOW_LOW: False, LevelPoint.LOW: False}))
    trip = _only(trips)
    assert (trip.alarm_id, trip.tag) == ("level_low_low", "LSLL-101")
    assert trip.alarm
    assert trip.action is TripAction.HOLD
    assert trip.priority is Priority.HIGH
    assert out.heater_on_s == 0.0
    assert not out.contactor
    assert not out.agitator
    assert out.fill_pump
    assert out.pump("P-201") == 4.0


def test_level_low_low_forces_but_does_not_alarm_when_nothing_needs_the_level() -> None:
    ctx = InterlockContext(executing=True)  # e.g. draining at the end of a batch
    trips, out = _scan(
        make_image(10.0, levels={LevelPoint.LOW_LOW: False, LevelPoint.LOW: False}), ctx
    )
    trip = _only(trips)
    assert not trip.alarm
    assert trip.action is TripAction.NONE
    assert out.heater_on_s == 0.0
    assert not out.agitator


def test_low_low_dry_while_low_wet_acts_as_low_low_and_flags_the_switch() -> None:
    trips, out = _scan(make_image(10.0, levels={LevelPoint.LOW_LOW: False}))
    assert {(t.alarm_id, t.tag) for t in trips} == {
        ("reading_bad", "LSLL-101"),
        ("level_low_low", "LSLL-101"),
    }
    assert out.heater_on_s == 0.0
    assert not out.agitator


def test_level_low_low_switch_unreadable_forces_heater_and_agitator_off() -> None:
    bad = Reading[bool].bad(BadReason.NO_RESPONSE, 9.9)
    trips, out = _scan(make_image(10.0, levels={LevelPoint.LOW_LOW: bad}))
    assert _only(trips).alarm_id == "reading_bad"
    assert out.heater_on_s == 0.0
    assert not out.agitator


def test_inflows_off_within_one_scan_when_level_high_high() -> None:
    trips, out = _scan(make_image(10.0, levels={LevelPoint.HIGH: True, LevelPoint.HIGH_HIGH: True}))
    trip = _only(trips)
    assert trip.alarm_id == "level_high_high"
    assert trip.latch
    assert not out.fill_pump
    assert out.pump("P-201") == 0.0
    assert out.pump("P-205") == 0.0
    assert out.heater_on_s == 3.0
    assert out.agitator
    assert out.drain_valve


def test_temperature_high_high_opens_contactor_and_aborts() -> None:
    trips, out = _scan(make_image(10.0, temperature=90.0))
    trip = _only(trips)
    assert trip.alarm_id == "temperature_high_high"
    assert trip.priority is Priority.CRITICAL
    assert trip.action is TripAction.ABORT
    assert trip.latch
    assert out.heater_on_s == 0.0
    assert not out.contactor
    assert strongest_action(trips) is TripAction.ABORT


def test_a_temperature_above_the_rtds_range_is_taken_as_high_high() -> None:
    # Found by a safety reviewer: 151 °C (range ≤ 150) was only a bad reading: the batch held,
    # the jacket shut, no latch, no high-high.
    trips, out = _scan(make_image(10.0, temperature=151.0))
    high_high = [t for t in trips if t.alarm_id == "temperature_high_high"]
    assert len(high_high) == 1
    assert "above its range" in high_high[0].message
    assert high_high[0].latch
    assert strongest_action(trips) is TripAction.ABORT
    assert not out.contactor
    # Below the range is a broken probe, not heat: bad, but no high-high.
    trips, _ = _scan(make_image(10.0, temperature=-300.0))
    assert not [t for t in trips if t.alarm_id == "temperature_high_high"]


def test_everything_off_when_estop_pressed() -> None:
    trips, out = _scan(make_image(10.0, estop=True))
    trip = _only(trips)
    assert trip.alarm_id == "estop"
    assert trip.action is TripAction.ABORT
    assert trip.latch
    assert out == Outputs.safe()


def test_estop_bad_reading_acts_as_pressed_but_says_it_is_a_bad_reading() -> None:
    trips, out = _scan(make_image(10.0, estop=Reading[bool].bad(BadReason.DEVICE_ERROR, 10.0)))
    trip = _only(trips)
    assert (trip.alarm_id, trip.tag) == ("reading_bad", "HS-100")
    assert trip.action is TripAction.ABORT
    assert out == Outputs.safe()


def test_estop_not_read_yet_at_start_acts_as_pressed_without_an_alarm() -> None:
    # The daemon scans from its start; the relay board's first poll comes a moment later. A
    # restart must not raise a critical alarm, abort, or take the unit's authority.
    not_yet = Reading[bool].bad(BadReason.NO_READING_YET, 0.0)
    trips, out = _scan(make_image(0.1, estop=not_yet), InterlockContext())
    trip = _only(trips)
    assert (trip.alarm_id, trip.tag) == ("reading_bad", "HS-100")
    assert not trip.alarm
    assert trip.action is TripAction.NONE
    assert out == Outputs.safe()


def test_estop_never_read_within_its_stale_limit_alarms_and_aborts() -> None:
    limit = default_limits().discrete_stale_s
    not_yet = Reading[bool].bad(BadReason.NO_READING_YET, 0.0)
    trips, out = _scan(make_image(limit + 0.5, estop=not_yet), InterlockContext())
    trip = _only(trips)
    assert (trip.alarm_id, trip.action) == ("reading_bad", TripAction.ABORT)
    assert trip.alarm
    assert "no reading in" in trip.message
    assert out == Outputs.safe()


def test_inputs_not_read_yet_force_their_outputs_but_alarm_only_once_overdue() -> None:
    # Even a batch in progress (a restart mid-batch): not read yet is not yet a fault.
    not_yet_f = Reading[float].bad(BadReason.NO_READING_YET, 0.0)
    not_yet_b = Reading[bool].bad(BadReason.NO_READING_YET, 0.0)
    image = make_image(
        0.1, temperature=not_yet_f, ph=not_yet_f, levels={LevelPoint.LOW_LOW: not_yet_b}
    )
    trips, out = _scan(image)
    assert {(t.alarm_id, t.tag) for t in trips} >= {
        ("reading_bad", "TT-101"),
        ("reading_bad", "AT-101"),
        ("reading_bad", "LSLL-101"),
    }
    assert not any(t.alarm for t in trips), [t for t in trips if t.alarm]
    assert out.heater_on_s == 0.0
    assert not out.agitator
    overdue = make_image(
        30.0, temperature=not_yet_f, ph=not_yet_f, levels={LevelPoint.LOW_LOW: not_yet_b}
    )
    alarmed = {(t.alarm_id, t.tag) for t in _scan(overdue)[0] if t.alarm}
    assert alarmed >= {
        ("reading_bad", "TT-101"),
        ("reading_bad", "AT-101"),
        ("reading_bad", "LSLL-101"),
    }


def test_estop_stale_good_reading_acts_as_pressed() -> None:
    trips, out = _scan(make_image(10.0, estop=Reading.ok(False, 0.0)))
    trip = _only(trips)
    assert (trip.alarm_id, trip.action) == ("reading_bad", TripAction.ABORT)
    assert "stale" in trip.message
    assert out == Outputs.safe()


def test_stale_good_temperature_is_bad_and_never_used_as_a_number() -> None:
    # 95 °C taken 30 s ago: stale, so neither high-high nor anything else may use it
    trips, out = _scan(make_image(40.0, temperature=Reading.ok(95.0, 10.0)))
    trip = _only(trips)
    assert (trip.alarm_id, trip.tag) == ("reading_bad", "TT-101")
    assert "stale" in trip.message
    assert trip.action is TripAction.HOLD
    assert out.heater_on_s == 0.0
    assert not out.contactor
    assert out.pump("P-201") == 4.0


def test_out_of_range_temperature_is_bad() -> None:
    trips, out = _scan(make_image(10.0, temperature=-40.0))  # an open RTD reading nonsense
    assert "out of range" in _only(trips).message
    assert out.heater_on_s == 0.0


def test_bad_temperature_forces_heater_off_but_alarms_only_when_it_matters() -> None:
    idle = InterlockContext()
    trips, out = _scan(
        make_image(10.0, temperature=Reading[float].bad(BadReason.DEVICE_ERROR, 10.0)), idle
    )
    assert not _only(trips).alarm
    assert out.heater_on_s == 0.0


def test_bad_ph_forces_dosing_off_when_ph_matters() -> None:
    ctx = InterlockContext(
        executing=True, ph_setpoint=11.0, ph_pump="P-203", dosing=True, agitator_wanted=True
    )
    trips, out = _scan(make_image(30.0, ph=Reading.ok(11.0, 5.0)), ctx)
    trip = _only(trips)
    assert (trip.alarm_id, trip.tag) == ("reading_bad", "AT-101")
    assert trip.alarm
    assert out.pump("P-201") == 0.0
    assert out.pump("P-205") == 0.0
    assert out.heater_on_s == 3.0


def test_bad_ph_does_not_alarm_when_idle() -> None:
    trips, _ = _scan(
        make_image(30.0, ph=Reading[float].bad(BadReason.DEVICE_ERROR, 30.0)), InterlockContext()
    )
    assert not _only(trips).alarm


def test_reagent_cap_forces_dosing_off_and_holds() -> None:
    ctx = InterlockContext(
        executing=True,
        dosed_this_phase_ml={"P-202": 5000.0},
        cap_ml={"P-202": 5000.0, "P-201": 9000.0},
        dosing=True,
        agitator_wanted=True,  # a recipe phase that doses runs the agitator
    )
    trips, out = _scan(make_image(10.0), ctx)
    trip = _only(trips)
    assert (trip.alarm_id, trip.tag) == ("reagent_cap", "P-202")
    assert trip.priority is Priority.MEDIUM
    assert trip.latch
    assert trip.action is TripAction.HOLD
    assert out.pump("P-201") == 0.0
    assert out.fill_pump


def test_device_lost_only_after_its_stale_limit() -> None:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    ctx = InterlockContext()
    silent = {"P-203": Reading[float].bad(BadReason.NO_RESPONSE, 0.0)}
    first = interlocks.evaluate(make_image(0.0, dispensed=silent), ctx)
    assert first == []
    later = interlocks.evaluate(make_image(11.0, dispensed=silent), ctx)
    trip = _only(later)
    assert (trip.alarm_id, trip.tag) == ("device_lost", "P-203")
    assert trip.action is TripAction.HOLD
    answered = {"P-203": Reading.ok(12.0, 12.0)}
    assert interlocks.evaluate(make_image(12.0, dispensed=answered), ctx) == []


def test_a_device_a_driver_says_lost_is_timed_from_its_last_answer() -> None:
    # A serial driver says 'lost' after its own limit (15 s for a pump), stamped with the last
    # answer: the pump's 10 s limit has passed by then, so the trip comes in that scan, not
    # 10 s after it.
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    detail = "no valid answer for 15 s (its limit 15 s): no response"
    lost = {"P-203": Reading[float].bad(BadReason.DEVICE_LOST, 100.0, detail)}
    trip = _only(interlocks.evaluate(make_image(115.0, dispensed=lost), InterlockContext()))
    assert (trip.alarm_id, trip.tag) == ("device_lost", "P-203")
    # The driver's limit, which set when it fired, not the pump's 10 s stale limit.
    assert trip.message.endswith(f"device lost: {detail}")
    # Heard from 6 s ago: lost by the driver's count, not yet past this limit.
    other = Interlocks(limits=default_limits(), wiring=sim_wiring())
    recent = {"P-203": Reading[float].bad(BadReason.DEVICE_LOST, 109.0, "no response for 6 s")}
    assert other.evaluate(make_image(115.0, dispensed=recent), InterlockContext()) == []
    assert _only(other.evaluate(make_image(119.5, dispensed=recent), InterlockContext()))


def test_lost_temperature_probe_raises_device_lost_and_reading_bad() -> None:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    lost = Reading[float].bad(BadReason.DEVICE_LOST, 0.0)
    interlocks.evaluate(make_image(0.0, temperature=lost), EXECUTING)
    trips = interlocks.evaluate(make_image(6.0, temperature=lost), EXECUTING)
    assert {(t.alarm_id, t.tag) for t in trips} == {
        ("reading_bad", "TT-101"),
        ("device_lost", "TT-101"),
    }


# --- the dosing permissive --------------------------------------------------------------------
DOSING = InterlockContext(
    executing=True, agitator_wanted=True, reactor_dose_wanted=True, dosing=True
)


def test_a_recipe_dose_into_a_reactor_below_the_low_switch_is_stopped_and_alarms() -> None:
    trips, out = _scan(make_image(10.0, levels={LevelPoint.LOW: False}), DOSING)
    trip = _only(trips)
    assert (trip.cause, trip.alarm_id, trip.tag) == (
        "dosing_not_permitted",
        "dosing_not_permitted",
        "LSL-101",
    )
    assert trip.alarm
    assert trip.action is TripAction.HOLD
    assert "LSL-101 reads dry" in trip.message
    assert set(out.pumps.values()) == {0.0}
    assert out.agitator  # only the pumps
    assert out.heater_on_s > 0


def test_a_dose_without_the_agitator_is_stopped() -> None:
    ctx = InterlockContext(executing=True, reactor_dose_wanted=True, dosing=True)
    trips, out = _scan(make_image(10.0), ctx)
    assert "the agitator is not running" in _only(trips).message
    assert set(out.pumps.values()) == {0.0}


def test_the_permissive_is_quiet_when_nothing_is_to_go_in_or_manual_mode_judges_it() -> None:
    dry = make_image(10.0, levels={LevelPoint.LOW: False})
    assert _scan(dry, InterlockContext(executing=True))[0] == []
    manual = InterlockContext(manual_jogs=True, dosing=True)
    assert _scan(dry, manual)[0] == []


def test_no_consequence_alarm_when_another_cause_already_stops_the_pumps() -> None:
    trips, _ = _scan(make_image(10.0, estop=True, levels={LevelPoint.LOW: False}), DOSING)
    assert [t.cause for t in trips] == ["estop_pressed"]
