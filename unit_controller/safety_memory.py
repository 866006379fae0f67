"""What a restart must not forget (DESIGN §5): the latched trips nobody has reset yet, and
whether the reactor may hold acid (the N2 purge's safe state). Kept in the journal's meta table.

A crash, a watchdog restart or `systemctl restart` must not turn a latched heater-stuck-on
into a unit that starts again, nor close the purge on a reactor still full of acid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from hal.log import get_logger
from unit_controller.interlocks.trip import Force, Priority, Trip, TripAction

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LatchedTrip:
    """A latched trip not yet reset, and whether it was acknowledged."""

    trip: Trip
    acked: bool


@dataclass(frozen=True, slots=True)
class SafetyMemory:
    """What the next start takes over: latched trips and the reactor's charge."""

    reactor_charged: bool
    latched: tuple[LatchedTrip, ...] = ()
    # The unit was Aborted (a trip, a command, a service stop mid-batch) and nobody cleared
    # it: a clean restart comes back Aborted too, not Stopped past the Clear.
    aborted: bool = False

    def to_json(self) -> str:
        """The memory as one JSON document (the journal's meta value)."""
        return json.dumps(
            {
                "reactor_charged": self.reactor_charged,
                "latched": [_trip_json(entry) for entry in self.latched],
                "aborted": self.aborted,
            },
            sort_keys=True,
        )

    @classmethod
    def unknown(cls, why: str) -> SafetyMemory:
        """The memory of a last run whose journal cannot be read at all, taken the worst way:
        the reactor charged, and a latched trip forcing every output safe until reset."""
        log.error("safety_memory.journal_unreadable", error=why)
        trip = _unreadable("journal", why).trip
        trip = replace(
            trip,
            message=(
                f"the journal cannot be read ({why[:120]}): what the last run kept (latched "
                "trips, the reactor's charge, an interrupted batch) is not known: check the "
                "unit, then acknowledge and reset"
            ),
        )
        return cls(reactor_charged=True, latched=(LatchedTrip(trip=trip, acked=False),))

    @classmethod
    def from_json(cls, text: str | None) -> SafetyMemory | None:
        """The memory a previous run kept; None when it kept none. What cannot be read is
        taken the worst way, never dropped: the reactor charged, and each unreadable trip (or
        the whole memory) a latched trip that forces every output safe until reset."""
        if text is None:
            return None
        try:
            document = json.loads(text)
            if not isinstance(document, dict) or not isinstance(document.get("latched"), list):
                raise ValueError("not an object with a list of latched trips")
        except (ValueError, RecursionError, MemoryError) as exc:
            log.error("safety_memory.unreadable", error=str(exc))
            return cls(reactor_charged=True, latched=(_unreadable("memory", str(exc)),))
        charged = document.get("reactor_charged")
        latched = []
        for item in document["latched"]:
            try:
                latched.append(_trip_from(item))
            except (ValueError, TypeError, KeyError) as exc:
                log.error("safety_memory.trip_unreadable", error=str(exc), item=str(item)[:200])
                latched.append(_unreadable(_tag_of(item), f"{type(exc).__name__}: {exc}"))
        # An earlier release kept no `aborted`: as before, Stopped after a clean stop.
        return cls(
            reactor_charged=charged is not False,
            latched=tuple(latched),
            aborted=document.get("aborted") is True,
        )


UNREADABLE = "latched_unreadable"


def _unreadable(tag: str, why: str) -> LatchedTrip:
    """A latched trip the last run kept that this release cannot read: every output safe."""
    trip = Trip(
        alarm_id=UNREADABLE,
        tag=tag,
        priority=Priority.CRITICAL,
        action=TripAction.ABORT,
        forces=frozenset({Force.ALL}),
        latch=True,
        message=(
            f"a latched trip kept across the restart cannot be read ({why[:120]}): check the "
            "unit, then acknowledge and reset"
        ),
        cause=UNREADABLE,
    )
    return LatchedTrip(trip=trip, acked=False)


def _tag_of(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("alarm_id"), str):
        return f"{item['alarm_id'][:40]}:{str(item.get('tag', '?'))[:40]}"
    return "?"


def _trip_json(entry: LatchedTrip) -> dict[str, Any]:
    trip = entry.trip
    return {
        "alarm_id": trip.alarm_id,
        "tag": trip.tag,
        "priority": str(trip.priority),
        "action": str(trip.action),
        "forces": sorted(str(force) for force in trip.forces),
        "latch": trip.latch,
        "message": trip.message,
        "alarm": trip.alarm,
        "cause": trip.cause,
        "inputs": None if trip.inputs is None else list(trip.inputs),
        "acked": entry.acked,
    }


def _trip_from(item: Any) -> LatchedTrip:
    if not isinstance(item, dict):
        raise TypeError("a latched trip is not an object")
    trip = Trip(
        alarm_id=str(item["alarm_id"]),
        tag=str(item["tag"]),
        priority=Priority(item["priority"]),
        action=TripAction(item["action"]),
        forces=frozenset(Force(force) for force in item["forces"]),
        latch=bool(item["latch"]),
        message=str(item["message"]),
        alarm=bool(item["alarm"]),
        cause=str(item["cause"]),
        # Absent in what an older release kept: its own tag, as that release judged it.
        inputs=_inputs_from(item.get("inputs")),
    )
    return LatchedTrip(trip=trip, acked=item["acked"] is True)  # "false" is no acknowledgement


def _inputs_from(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise TypeError("a latched trip's inputs are not a list of tags")
    return tuple(value)


def charged_at_start(
    memory: SafetyMemory | None, *, batch_interrupted: bool, previous_run_clean: bool = True
) -> bool:
    """Whether the reactor may hold acid as a run starts: the last run's word, an interrupted
    batch, or, with nothing known, yes (the level switches reading it empty then clear it).
    After an unclean end the last run's "no" may be stale (a full disk kept its newer word in
    memory only): yes too, and `charge_assumed` says so."""
    return memory is None or memory.reactor_charged or batch_interrupted or not previous_run_clean


def charge_assumed(
    memory: SafetyMemory | None, *, batch_interrupted: bool, previous_run_clean: bool = True
) -> bool:
    """Whether the charge a run starts with is only assumed (nothing known, or a "no" that may be
    stale): the level switches reading dry then clear it alone, liquor seen makes it real."""
    if batch_interrupted:
        return False
    return memory is None or (not previous_run_clean and not memory.reactor_charged)
