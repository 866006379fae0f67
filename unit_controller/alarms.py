"""Alarm management after ISA-18.2: states, acknowledge, latch and reset, first-out, history.

Keeps which interlock trips still force outputs (latched until reset); never writes outputs and
never resets a latch on its own: acknowledge and reset are separate operator acts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from hal.log import get_logger
from unit_controller.interlocks.trip import Priority, Trip

log = get_logger(__name__)


class AlarmState(StrEnum):
    """ISA-18.2 alarm states (NORMAL alarms are not listed as active)."""

    NORMAL = "normal"
    UNACK_ACTIVE = "unack_active"
    ACK_ACTIVE = "ack_active"
    UNACK_RETURNED = "unack_returned"  # returned to normal before it was acknowledged
    LATCHED = "latched"  # returned, but latched: forces its outputs until acknowledged and reset


_ACTIVE = (AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE)
# The alarms of an input that cannot be read now: a latched trip on that input (its tag) has
# not returned while one stands, so it is not reset.
INPUT_BAD_ALARMS = frozenset({"reading_bad", "device_lost"})


# Alarms the controller and daemon raise themselves (not from the cause-and-effect table).
# Raises kept in `history` (for a simulation's summary).
HISTORY_KEPT = 1000
BATCH_INTERRUPTED = "batch_interrupted"  # the last batch ended in a crash or power loss


class AlarmEventKind(StrEnum):
    """A transition worth journaling and publishing."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RETURNED = "returned"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm that is not normal, as operators and telemetry see it."""

    alarm_id: str
    tag: str
    priority: Priority
    state: AlarmState
    message: str
    latch: bool
    raised_at: float
    acked_at: float | None
    returned_at: float | None
    first_out: bool


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One alarm transition; `state` is the state after it."""

    kind: AlarmEventKind
    alarm_id: str
    tag: str
    priority: Priority
    state: AlarmState
    at: float
    message: str
    first_out: bool


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """One raise, for the batch summary."""

    alarm_id: str
    tag: str
    priority: Priority
    raised_at: float
    message: str
    first_out: bool


class _Entry:
    """The mutable state of one alarm (alarm_id, tag)."""

    def __init__(
        self,
        *,
        alarm_id: str,
        tag: str,
        priority: Priority,
        message: str,
        latch: bool,
        trip: Trip | None,
    ) -> None:
        self.alarm_id = alarm_id
        self.tag = tag
        self.priority = priority
        self.message = message
        self.latch = latch
        self.trip = trip  # None for alarms raised by code (raise_alarm), which force nothing
        self.state = AlarmState.NORMAL
        self.raised_at = 0.0
        self.acked_at: float | None = None
        self.returned_at: float | None = None
        self.first_out = False
        self.restored = False  # taken over from the run before; no scan has judged it yet
        # Latched: seen gone with its input readable. Until then (its input bad as it went, or
        # taken over from the run before) its cause coming back is the same occurrence, with
        # the acknowledgement it had, not a new one.
        self.return_seen = True
        # A RETURNED was said since the last RAISED: a cause coming back is then said again.
        self.returned_said = False

    def snapshot(self) -> Alarm:
        return Alarm(
            alarm_id=self.alarm_id,
            tag=self.tag,
            priority=self.priority,
            state=self.state,
            message=self.message,
            latch=self.latch,
            raised_at=self.raised_at,
            acked_at=self.acked_at,
            returned_at=self.returned_at,
            first_out=self.first_out,
        )


class AlarmManager:
    """Alarm states driven by interlock trips (each scan) and by code (`raise_alarm`).

    Every transition is logged and returned by the next `update()` (events of `acknowledge`,
    `reset`, `raise_alarm` and `clear` are queued until then), so the scan journals them all.
    A latched alarm that comes back while latched is active and unacknowledged again: an
    acknowledgement covers the occurrences before it, never the next.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._current: dict[tuple[str, str], Trip] = {}
        self._pending: list[AlarmEvent] = []
        # Bounded: an alarm that keeps coming back (a flaky switch) must not grow a daemon that
        # runs for months.
        self._history: deque[AlarmRecord] = deque(maxlen=HISTORY_KEPT)

    def update(self, trips: Iterable[Trip], now: float) -> list[AlarmEvent]:
        """Take this scan's trips; returns every transition since the last call."""
        current: dict[tuple[str, str], Trip] = {}
        for trip in trips:
            current.setdefault(trip.key, trip)
        self._current = current
        for key, trip in current.items():
            entry = self._entries.get(key)
            if entry is not None and entry.trip is not None:
                entry.trip = trip
            if entry is not None and (
                entry.restored or (entry.state is AlarmState.LATCHED and not entry.return_seen)
            ):
                # Taken over latched (or latched while its input could not be read), and its
                # cause still there: active again, as acknowledged as it was.
                entry.state = (
                    AlarmState.ACK_ACTIVE if entry.acked_at is not None else AlarmState.UNACK_ACTIVE
                )
                entry.returned_at = None
                entry.return_seen = True
                if not entry.restored and entry.returned_said:
                    # Said as it reads now (120 °C, not the 92 °C it latched at), and kept. A
                    # latch taken over from the last run and found still there was said once
                    # already, by the first scan: only its state changes.
                    entry.message = trip.message or entry.message
                    self._record(entry, now)
                    self._event(AlarmEventKind.RAISED, entry, now)
            # a trip that only forces (alarm False) raises nothing, but keeps an alarm active
            if trip.alarm and (entry is None or entry.state not in _ACTIVE):
                self._activate(
                    key,
                    trip=trip,
                    priority=trip.priority,
                    message=trip.message,
                    latch=trip.latch,
                    now=now,
                )
        for key, entry in list(self._entries.items()):
            if entry.restored:
                # Said once, by the first scan, in the state it found: active or latched.
                entry.restored = False
                self._event(AlarmEventKind.RAISED, entry, now)
                continue
            if entry.trip is not None and key not in current and entry.state in _ACTIVE:
                self._return(key, entry, now)
            elif not entry.return_seen and key not in current and not self._input_bad(entry):
                entry.return_seen = True
        events, self._pending = self._pending, []
        return events

    def raise_alarm(
        self,
        *,
        alarm_id: str,
        tag: str,
        priority: Priority,
        now: float,
        message: str = "",
        latch: bool = False,
    ) -> None:
        """Raise an alarm that is not an interlock (e.g. `phase_timeout`); it forces nothing.

        It stays active until `clear()`; raising an active alarm again only brings its message
        up to date (a count that grew), with no new transition.
        """
        key = (alarm_id, tag)
        entry = self._entries.get(key)
        if entry is None or entry.state not in _ACTIVE:
            self._activate(key, trip=None, priority=priority, message=message, latch=latch, now=now)
        elif message:
            entry.message = message

    def clear(self, alarm_id: str, tag: str, *, now: float) -> None:
        """The condition of an alarm raised by `raise_alarm` has returned to normal."""
        key = (alarm_id, tag)
        entry = self._entries.get(key)
        if entry is not None and entry.trip is None and entry.state in _ACTIVE:
            self._return(key, entry, now)

    def acknowledge(self, alarm_id: str | None, now: float) -> int:
        """Acknowledge unacknowledged alarms (None = all, an id = every tag of it); the count.

        Acknowledging never clears a latch: a latched alarm stays latched until `reset`.
        """
        count = 0
        for key, entry in list(self._entries.items()):
            if alarm_id not in (None, entry.alarm_id) or entry.acked_at is not None:
                continue
            entry.acked_at = now
            if entry.state is AlarmState.UNACK_ACTIVE:
                entry.state = AlarmState.ACK_ACTIVE
            elif entry.state is AlarmState.UNACK_RETURNED:
                entry.state = AlarmState.NORMAL
                del self._entries[key]
            self._event(AlarmEventKind.ACKNOWLEDGED, entry, now)
            count += 1
        return count

    def reset(self, alarm_id: str | None, now: float) -> int:
        """Reset latched alarms whose condition has returned (None = all); the count reset.

        An unacknowledged latched alarm is not reset (acknowledge first), nor an active one.
        """
        count = 0
        for key, entry in list(self._entries.items()):
            if alarm_id not in (None, entry.alarm_id):
                continue
            if self._input_bad(entry):
                continue  # its condition has not returned: it is not known (see held_latched)
            if entry.state is AlarmState.LATCHED and entry.acked_at is not None:
                entry.state = AlarmState.NORMAL
                del self._entries[key]
                self._event(AlarmEventKind.RESET, entry, now)
                count += 1
        return count

    def held_latched(self, alarm_id: str | None = None) -> list[tuple[str, str]]:
        """The latched interlock alarms (id, tag) a reset leaves, as their input is bad or lost
        now: a high-high whose RTD then failed has not returned, it is unknown."""
        return [
            (entry.alarm_id, entry.tag)
            for entry in self._entries.values()
            if alarm_id in (None, entry.alarm_id)
            and entry.state is AlarmState.LATCHED
            and self._input_bad(entry)
        ]

    def reset_leaves(self, alarm_id: str | None = None) -> list[tuple[str, str, str]]:
        """The latching alarms a reset leaves for a reason a person can act on (id, tag, why):
        its cause still there, or not acknowledged yet. Those held by an unreadable input are
        `held_latched`'s."""
        left = []
        for entry in self._entries.values():
            if not entry.latch or alarm_id not in (None, entry.alarm_id):
                continue
            if entry.state in _ACTIVE:
                left.append((entry.alarm_id, entry.tag, "its cause is still there"))
            elif (
                entry.state is AlarmState.LATCHED
                and entry.acked_at is None
                and not self._input_bad(entry)
            ):
                left.append((entry.alarm_id, entry.tag, "not acknowledged (ack it first)"))
        return left

    def _input_bad(self, entry: _Entry) -> bool:
        if entry.trip is None or entry.alarm_id in INPUT_BAD_ALARMS:
            return False
        judged_on = entry.trip.judged_on
        return any(
            trip.tag in judged_on and trip.alarm_id in INPUT_BAD_ALARMS
            for trip in self._current.values()
        )

    def latching(self) -> list[tuple[Trip, bool]]:
        """The trips that latch and are not reset yet (active or latched), each with whether it
        was acknowledged: what a restart must not forget."""
        return [
            (entry.trip, entry.acked_at is not None)
            for entry in self._entries.values()
            if entry.trip is not None and entry.latch and entry.state is not AlarmState.NORMAL
        ]

    def restore_latched(self, trips: Iterable[tuple[Trip, bool]], now: float) -> None:
        """Take over latched trips a previous run had not reset, forcing as before until
        acknowledged and reset. The next `update` raises each once: active if its cause is
        still there, else latched."""
        for trip, acked in trips:
            if trip.key in self._entries:
                continue
            entry = _Entry(
                alarm_id=trip.alarm_id,
                tag=trip.tag,
                priority=trip.priority,
                message=trip.message,
                latch=True,
                trip=trip,
            )
            entry.state = AlarmState.LATCHED
            entry.raised_at = now
            entry.returned_at = now
            entry.acked_at = now if acked else None
            entry.first_out = not self._trips_standing()
            entry.restored = True
            entry.return_seen = False
            self._entries[trip.key] = entry

    def _trips_standing(self) -> bool:
        # First-out names the trip that began a cascade: the first interlock alarm raised while
        # no other stands. Alarms raised by code (a calibration reminder up for days, a phase
        # timeout) neither take the mark nor keep it from the trip.
        return any(entry.trip is not None for entry in self._entries.values())

    def active(self) -> list[Alarm]:
        """Every alarm not normal, most urgent first, then oldest first."""
        entries = sorted(self._entries.values(), key=lambda e: (e.priority.rank, e.raised_at))
        return [e.snapshot() for e in entries]

    def in_effect(self) -> list[Trip]:
        """Trips whose forcing applies: this scan's trips, plus latched ones not yet reset."""
        trips = list(self._current.values())
        for key, entry in self._entries.items():
            if (
                entry.state is AlarmState.LATCHED
                and entry.trip is not None
                and key not in self._current
            ):
                trips.append(entry.trip)
        return trips

    @property
    def history(self) -> tuple[AlarmRecord, ...]:
        """The last HISTORY_KEPT raises since start (or `clear_history`), oldest first."""
        return tuple(self._history)

    def clear_history(self) -> None:
        """Forget the history (at the start of a batch)."""
        self._history.clear()

    def _activate(
        self,
        key: tuple[str, str],
        *,
        trip: Trip | None,
        priority: Priority,
        message: str,
        latch: bool,
        now: float,
    ) -> None:
        entry = self._entries.get(key)
        if entry is None:
            first_out = trip is not None and not self._trips_standing()
            entry = _Entry(
                alarm_id=key[0],
                tag=key[1],
                priority=priority,
                message=message,
                latch=latch,
                trip=trip,
            )
            entry.first_out = first_out
            entry.state = AlarmState.UNACK_ACTIVE
            entry.raised_at = now
            self._entries[key] = entry
        else:
            # Back while returned (unacknowledged, or latched awaiting reset): a new occurrence
            # nobody has acknowledged (ISA-18.2), so a reset cannot take it away unseen.
            entry.message = message
            entry.state = AlarmState.UNACK_ACTIVE
            entry.acked_at = None
            entry.returned_at = None
        self._record(entry, now)
        self._event(AlarmEventKind.RAISED, entry, now)

    def _record(self, entry: _Entry, now: float) -> None:
        """Keep a raise in the history (the batch summary's alarms)."""
        self._history.append(
            AlarmRecord(
                alarm_id=entry.alarm_id,
                tag=entry.tag,
                priority=entry.priority,
                raised_at=now,
                message=entry.message,
                first_out=entry.first_out,
            )
        )

    def _return(self, key: tuple[str, str], entry: _Entry, now: float) -> None:
        entry.returned_at = now
        entry.return_seen = not self._input_bad(entry)
        if entry.latch:
            entry.state = AlarmState.LATCHED
        elif entry.state is AlarmState.UNACK_ACTIVE:
            entry.state = AlarmState.UNACK_RETURNED
        else:
            entry.state = AlarmState.NORMAL
            del self._entries[key]
        self._event(AlarmEventKind.RETURNED, entry, now)

    def _event(self, kind: AlarmEventKind, entry: _Entry, now: float) -> None:
        if kind is AlarmEventKind.RETURNED:
            entry.returned_said = True
        elif kind is AlarmEventKind.RAISED:
            entry.returned_said = False
        event = AlarmEvent(
            kind=kind,
            alarm_id=entry.alarm_id,
            tag=entry.tag,
            priority=entry.priority,
            state=entry.state,
            at=now,
            message=entry.message,
            first_out=entry.first_out,
        )
        self._pending.append(event)
        log.info(
            f"alarm.{kind}",
            alarm_id=entry.alarm_id,
            tag=entry.tag,
            priority=str(entry.priority),
            state=str(entry.state),
            at=now,
            message=entry.message,
            first_out=entry.first_out,
        )
