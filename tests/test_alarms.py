"""AlarmManager: ISA-18.2 states, acknowledge vs reset, latching, first-out and history."""

from __future__ import annotations

from hal.outputs import Outputs
from hal.reading import BadReason, Reading
from unit_controller.alarms import HISTORY_KEPT, AlarmEventKind, AlarmManager, AlarmState
from unit_controller.interlocks import (
    Force,
    InterlockContext,
    Interlocks,
    Priority,
    SafetyFilter,
    Trip,
    TripAction,
)
from unit_controller.interlocks import table as row

from .interlocks import default_limits, make_image, sim_wiring


def _trip(
    alarm_id: str = "level_high_high",
    tag: str = "LSHH-101",
    *,
    latch: bool = False,
    alarm: bool = True,
) -> Trip:
    return Trip(
        alarm_id=alarm_id,
        tag=tag,
        priority=Priority.HIGH,
        action=TripAction.HOLD,
        forces=frozenset({Force.INFLOWS}),
        latch=latch,
        message="test",
        alarm=alarm,
    )


def _states(manager: AlarmManager) -> dict[tuple[str, str], AlarmState]:
    return {(a.alarm_id, a.tag): a.state for a in manager.active()}


def test_alarm_raised_acknowledged_and_returned_to_normal() -> None:
    manager = AlarmManager()
    events = manager.update([_trip()], 1.0)
    assert [(e.kind, e.state) for e in events] == [(AlarmEventKind.RAISED, AlarmState.UNACK_ACTIVE)]
    assert manager.acknowledge("level_high_high", 2.0) == 1
    assert _states(manager) == {("level_high_high", "LSHH-101"): AlarmState.ACK_ACTIVE}
    events = manager.update([], 3.0)
    kinds = [e.kind for e in events]
    assert kinds == [AlarmEventKind.ACKNOWLEDGED, AlarmEventKind.RETURNED]
    assert manager.active() == []


def test_alarm_returned_before_ack_stays_listed_until_acknowledged() -> None:
    manager = AlarmManager()
    manager.update([_trip()], 1.0)
    manager.update([], 2.0)
    [alarm] = manager.active()
    assert alarm.state is AlarmState.UNACK_RETURNED
    assert alarm.returned_at == 2.0
    assert manager.in_effect() == []  # not latched: nothing forced any more
    assert manager.acknowledge(None, 3.0) == 1
    assert manager.active() == []


def test_latched_interlock_keeps_forcing_after_return_until_ack_and_reset() -> None:
    manager = AlarmManager()
    trip = _trip(latch=True)
    manager.update([trip], 1.0)
    manager.update([], 2.0)
    assert _states(manager) == {trip.key: AlarmState.LATCHED}
    assert manager.in_effect() == [trip]
    assert manager.reset(None, 3.0) == 0  # refused: not acknowledged yet
    assert manager.acknowledge(None, 4.0) == 1
    assert _states(manager) == {trip.key: AlarmState.LATCHED}  # ack does not clear a latch
    assert manager.in_effect() == [trip]
    assert manager.reset(None, 5.0) == 1
    assert manager.active() == []
    assert manager.in_effect() == []
    kinds = [e.kind for e in manager.update([], 6.0)]
    assert kinds == [AlarmEventKind.ACKNOWLEDGED, AlarmEventKind.RESET]


def test_a_latched_alarm_back_after_its_ack_needs_a_new_ack_before_reset() -> None:
    # An acknowledgement covers the occurrence the operator saw, not one that comes after it.
    manager = AlarmManager()
    trip = _trip(latch=True)
    manager.update([trip], 1.0)
    manager.update([], 2.0)
    assert manager.acknowledge(None, 3.0) == 1
    events = manager.update([trip], 4.0)
    assert (events[-1].kind, events[-1].state) == (
        AlarmEventKind.RAISED,
        AlarmState.UNACK_ACTIVE,
    )
    manager.update([], 5.0)
    [alarm] = manager.active()
    assert (alarm.state, alarm.acked_at) == (AlarmState.LATCHED, None)
    assert manager.reset(None, 6.0) == 0  # refused: the second occurrence is not acknowledged
    assert manager.in_effect() == [trip]
    assert manager.acknowledge(None, 7.0) == 1
    assert manager.reset(None, 8.0) == 1
    assert manager.active() == []


def test_reset_refused_while_condition_still_active() -> None:
    manager = AlarmManager()
    trip = _trip(latch=True)
    manager.update([trip], 1.0)
    manager.acknowledge(None, 2.0)
    assert manager.reset(None, 3.0) == 0
    assert _states(manager) == {trip.key: AlarmState.ACK_ACTIVE}


def test_latched_temperature_high_high_keeps_heater_off_until_operator_resets() -> None:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    manager = AlarmManager()
    safety = SafetyFilter()
    ctx = InterlockContext(executing=True, temperature_setpoint_c=80.0, heat_wanted=True)
    wanted = Outputs(heater_on_s=2.0, contactor=True, agitator=True)

    def scan(now: float, temperature: float) -> Outputs:
        manager.update(interlocks.evaluate(make_image(now, temperature=temperature), ctx), now)
        return safety.apply(wanted, trips=manager.in_effect(), allow_process_outputs=True)

    assert scan(1.0, 91.0).heater_on_s == 0.0
    assert scan(2.0, 80.0).heater_on_s == 0.0  # returned, but latched
    manager.acknowledge("temperature_high_high", 3.0)
    assert not scan(4.0, 80.0).contactor
    assert manager.reset("temperature_high_high", 5.0) == 1
    assert scan(6.0, 80.0) == wanted


def test_a_latched_high_high_whose_rtd_then_fails_is_not_reset_and_keeps_cooling() -> None:
    # Found by a safety reviewer: a failed RTD stopped reporting the high-high, so ack and
    # reset went through and the jacket shut over a reactor last read at 92 °C, no alarm shown.
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    manager = AlarmManager()
    safety = SafetyFilter()
    ctx = InterlockContext()  # Aborted: no batch, no heat wanted

    def scan(now: float, temperature: float | Reading[float]) -> Outputs:
        manager.update(interlocks.evaluate(make_image(now, temperature=temperature), ctx), now)
        return safety.apply(Outputs.safe(), trips=manager.in_effect(), allow_process_outputs=False)

    assert scan(1.0, 92.0).cooling_valve
    dead = Reading[float].bad(BadReason.OUT_OF_RANGE, 2.0)
    assert scan(2.0, dead).cooling_valve
    manager.acknowledge(None, 3.0)
    assert manager.reset(None, 4.0) == 0
    assert manager.held_latched() == [("temperature_high_high", "TT-101")]
    assert scan(5.0, dead).cooling_valve
    # Read again, and below: it has returned, and resets.
    assert scan(6.0, 40.0).cooling_valve
    assert manager.reset(None, 7.0) == 1
    assert not scan(8.0, 40.0).cooling_valve


def test_a_latch_judged_on_another_devices_reading_is_held_while_that_reading_is_bad() -> None:
    # Found by a safety reviewer: a weld latched on E-101 is judged on TT-101. Reset while the
    # RTD was dead, it cleared; the contactor then closed over the welded SSR once TT-101 was
    # back, and only a fresh (slow) weld detection would have caught it again.
    manager = AlarmManager()
    weld = row.HEATER_STUCK_ON.trip("E-101", "heater on while off", also_reads=("TT-101",))
    dead = row.TEMPERATURE_UNREADABLE.trip("TT-101", "TT-101 device error")
    manager.update([weld], 1.0)
    manager.update([dead], 2.0)  # the watch cannot judge: no weld trip, the RTD's instead
    manager.acknowledge(None, 3.0)
    manager.update([dead], 4.0)
    assert manager.reset(None, 5.0) == 0
    assert manager.held_latched() == [("heater_stuck_on", "E-101")]
    assert ("heater_stuck_on", "E-101") in {t.key for t in manager.in_effect()}
    manager.update([], 6.0)  # read again, and no weld: it has returned, and resets
    assert manager.reset(None, 7.0) == 1
    assert manager.held_latched() == []


def test_a_latch_judged_on_no_reading_resets_while_its_device_is_lost() -> None:
    # A reagent cap is a volume the controller counted: P-201 answering nothing leaves it known.
    manager = AlarmManager()
    cap = row.REAGENT_CAP.trip("P-201", "2000 mL dosed this phase ≥ cap 2000 mL")
    assert cap.judged_on == ()
    lost = row.PUMP_LOST.trip("P-201", "P-201 answers nothing")
    manager.update([cap], 1.0)
    manager.update([lost], 2.0)
    manager.acknowledge(None, 3.0)
    assert manager.reset(None, 4.0) == 1
    assert manager.held_latched() == []


def test_a_latch_back_before_its_return_was_seen_says_what_it_reads_now() -> None:
    # Found by a reviewer: back at 120 °C it still said 92 °C, and the batch's alarms missed it.
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    manager = AlarmManager()
    ctx = InterlockContext()

    def scan(now: float, temperature: float | Reading[float]) -> None:
        manager.update(interlocks.evaluate(make_image(now, temperature=temperature), ctx), now)

    scan(1.0, 92.0)
    manager.acknowledge(None, 1.5)
    scan(2.0, Reading[float].bad(BadReason.DEVICE_ERROR, 2.0))
    scan(3.0, 120.0)
    (alarm,) = [a for a in manager.active() if a.alarm_id == "temperature_high_high"]
    assert alarm.state is AlarmState.ACK_ACTIVE
    assert alarm.message.startswith("120.0 °C")
    raises = [r.message for r in manager.history if r.alarm_id == "temperature_high_high"]
    assert [m[:8] for m in raises] == ["92.0 °C ", "120.0 °C"]


def test_an_acknowledged_estop_read_again_after_a_restart_keeps_its_acknowledgement() -> None:
    # Found by a batch operator: after a restart the E-stop input is not read yet at the first
    # scans, so the acknowledged latch was taken as returned, and the still-pressed button then
    # raised a new occurrence to acknowledge.
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    manager = AlarmManager()
    pressed = row.ESTOP_PRESSED.trip("HS-100", "E-stop pressed")
    manager.restore_latched([(pressed, True)], now=0.0)
    ctx = InterlockContext()

    raised: list[AlarmState] = []

    def scan(now: float, estop: bool | Reading[bool]) -> AlarmState:
        events = manager.update(interlocks.evaluate(make_image(now, estop=estop), ctx), now)
        raised.extend(
            e.state for e in events if e.kind is AlarmEventKind.RAISED and e.alarm_id == "estop"
        )
        return _states(manager)[pressed.key]

    unread = Reading[bool].bad(BadReason.NO_READING_YET, 0.0)
    assert scan(0.1, unread) is AlarmState.LATCHED
    assert scan(0.2, unread) is AlarmState.LATCHED
    assert scan(0.3, True) is AlarmState.ACK_ACTIVE
    # Said once, by the first scan after the restart; read pressed, only its state changes
    # (found by a reviewer: it was announced, and recorded, a second time).
    assert raised == [AlarmState.LATCHED]
    assert [r.alarm_id for r in manager.history] == []
    # Seen released with the input read, then pressed again: a new occurrence, unacknowledged.
    assert scan(0.4, False) is AlarmState.LATCHED
    assert scan(0.5, True) is AlarmState.UNACK_ACTIVE


def test_first_out_marks_only_the_first_alarm_of_a_cascade() -> None:
    manager = AlarmManager()
    manager.update([_trip("estop", "HS-100")], 1.0)
    manager.update([_trip("estop", "HS-100"), _trip("reading_bad", "TT-101")], 2.0)
    first = {a.alarm_id: a.first_out for a in manager.active()}
    assert first == {"estop": True, "reading_bad": False}
    manager.update([], 3.0)
    manager.acknowledge(None, 4.0)
    manager.update([_trip("reading_bad", "AT-101")], 5.0)
    assert [a.first_out for a in manager.active()] == [True]


def test_first_out_goes_to_the_trip_not_to_a_standing_reminder() -> None:
    # A never-calibrated probe's LOW reminder stands for days; an E-stop then is the first out.
    manager = AlarmManager()
    manager.raise_alarm(alarm_id="ph_calibration_due", tag="AT-101", priority=Priority.LOW, now=0.0)
    manager.update([_trip("estop", "HS-100")], 1.0)
    manager.update([_trip("estop", "HS-100"), _trip("reading_bad", "TT-101")], 2.0)
    first = {a.alarm_id: a.first_out for a in manager.active()}
    assert first == {"estop": True, "reading_bad": False, "ph_calibration_due": False}


def test_acknowledge_by_id_covers_every_tag_and_unknown_id_is_zero() -> None:
    manager = AlarmManager()
    manager.update(
        [
            _trip("reading_bad", "TT-101"),
            _trip("reading_bad", "AT-101"),
            _trip("reagent_cap", "P-201"),
        ],
        1.0,
    )
    assert manager.acknowledge("no_such_alarm", 2.0) == 0
    assert manager.acknowledge("reading_bad", 2.0) == 2
    assert manager.acknowledge("reading_bad", 3.0) == 0  # already acknowledged
    states = _states(manager)
    assert states[("reagent_cap", "P-201")] is AlarmState.UNACK_ACTIVE
    assert states[("reading_bad", "TT-101")] is AlarmState.ACK_ACTIVE


def test_trip_that_only_forces_raises_no_alarm_but_is_in_effect() -> None:
    manager = AlarmManager()
    trip = _trip("level_low_low", "LSLL-101", alarm=False)
    assert manager.update([trip], 1.0) == []
    assert manager.active() == []
    assert manager.in_effect() == [trip]


def test_phase_timeout_raised_and_cleared_by_code_with_events_on_next_update() -> None:
    manager = AlarmManager()
    manager.raise_alarm(
        alarm_id="phase_timeout",
        tag="heat_up",
        priority=Priority.MEDIUM,
        now=10.0,
        message="phase heat_up over its 2 h timeout",
    )
    manager.update([], 10.1)  # interlock updates do not return a code-raised alarm
    [alarm] = manager.active()
    assert (alarm.alarm_id, alarm.state, alarm.raised_at) == (
        "phase_timeout",
        AlarmState.UNACK_ACTIVE,
        10.0,
    )
    assert manager.in_effect() == []
    manager.clear("phase_timeout", "heat_up", now=20.0)
    events = manager.update([], 20.1)
    assert [e.kind for e in events] == [AlarmEventKind.RETURNED]
    assert _states(manager) == {("phase_timeout", "heat_up"): AlarmState.UNACK_RETURNED}


def test_raising_an_active_alarm_again_brings_its_message_up_to_date_only() -> None:
    # telemetry_dropped is raised again as the count grows: the count shown must be the newest.
    manager = AlarmManager()
    for count, now in ((49, 1.0), (380, 5.0)):
        manager.raise_alarm(
            alarm_id="telemetry_dropped",
            tag="outbox",
            priority=Priority.LOW,
            now=now,
            message=f"{count} telemetry messages dropped",
        )
    events = manager.update([], 5.1)
    assert [e.kind for e in events] == [AlarmEventKind.RAISED]  # one transition, not two
    [alarm] = manager.active()
    assert alarm.message == "380 telemetry messages dropped"
    assert alarm.raised_at == 1.0


def test_history_records_every_raise_for_the_batch_summary() -> None:
    manager = AlarmManager()
    manager.update([_trip()], 1.0)
    manager.update([], 2.0)
    manager.update([_trip()], 3.0)  # back before acknowledged: raised again
    assert [(r.alarm_id, r.raised_at) for r in manager.history] == [
        ("level_high_high", 1.0),
        ("level_high_high", 3.0),
    ]
    manager.clear_history()
    assert manager.history == ()


def test_active_lists_most_urgent_first() -> None:
    manager = AlarmManager()
    low = Trip(
        alarm_id="reagent_cap",
        tag="P-201",
        priority=Priority.MEDIUM,
        action=TripAction.HOLD,
        forces=frozenset(),
        latch=False,
        message="",
    )
    critical = Trip(
        alarm_id="estop",
        tag="HS-100",
        priority=Priority.CRITICAL,
        action=TripAction.ABORT,
        forces=frozenset({Force.ALL}),
        latch=True,
        message="",
    )
    manager.update([low], 1.0)
    manager.update([low, critical], 2.0)
    assert [a.alarm_id for a in manager.active()] == ["estop", "reagent_cap"]


def test_the_history_keeps_only_the_newest_raises() -> None:
    # An alarm that kept coming back grew a months-long daemon's memory without bound.
    manager = AlarmManager()
    trip = row.PH_UNREADABLE.trip("AT-101", "pH bad")
    for n in range(HISTORY_KEPT + 5):
        manager.update([trip], now=2.0 * n)
        manager.update([], now=2.0 * n + 1)
    assert len(manager.history) == HISTORY_KEPT
    assert manager.history[-1].raised_at == 2.0 * (HISTORY_KEPT + 4)
