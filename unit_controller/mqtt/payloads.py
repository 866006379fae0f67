"""JSON payloads of the fleet topics: telemetry, birth, alarms and events (DESIGN §6).

Pure functions of the controller's snapshots and events; never publishes, never blocks.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hal.clock import Clock, ScaledClock, SystemClock
from hal.log import get_logger
from hal.reading import Reading
from hal.wiring import BoardWiring, LevelPoint
from unit_controller.alarms import Alarm
from unit_controller.batch.phase_runner import progress_dict
from unit_controller.controller import Snapshot
from unit_controller.events import UnitEvent
from unit_controller.mqtt.metric_names import pump_ident

# The payloads' version, as in the default topic root `fleet/v2`: flat telemetry whose keys
# are identifiers and exactly the metrics the birth names (v1 nested pumps and `bad`).
PAYLOAD_FORMAT = 2

# Telemetry keys of the level switches, by point.
LEVEL_KEYS = {
    LevelPoint.LOW_LOW: "level_low_low",
    LevelPoint.LOW: "level_low",
    LevelPoint.HIGH: "level_high",
    LevelPoint.HIGH_HIGH: "level_high_high",
}


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON; anything that is not JSON (an enum, a path) is written as text."""
    return json.dumps(payload, separators=(",", ":"), default=str, allow_nan=False).encode()


_STAMPS_KEPT = 1024  # alarms' moments: far more than ever stand at once
# A wall clock this far behind the stamps is a step back, said in the log (NTP's slewing is
# milliseconds; below this the stamps simply keep their pace).
_STEP_BACK_S = 1.0

log = get_logger(__name__)


class EpochClock:
    """Turns the controller's monotonic clock into epoch milliseconds for payloads.

    Anchored once, so simulated time reads as wall time from the start of the run on.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        wall: Callable[[], float] = time.time,
        not_before_ms: int | None = None,
        live: bool | None = None,
    ) -> None:
        self._clock = clock
        self._wall = wall
        # In real time, each reading is placed against the wall clock of the moment, so an NTP
        # step (a Pi without a real-time clock) moves every stamp with it; simulated time keeps
        # its own pace from one anchor. `live` overrides what the clock's kind says (tests).
        if live is None:
            live = isinstance(clock, SystemClock) or (
                isinstance(clock, ScaledClock) and clock.speed == 1.0
            )
        self._live = live
        start = wall()
        if not self._live and not_before_ms is not None:
            # A sped-up run went ahead of the wall clock; the next one starts after it, so the
            # journal's stamps never go back across a restart.
            start = max(start, not_before_ms / 1000 + 1.0)
        self._offset = start - clock.monotonic()
        self._wall_offset = self._offset  # the wall clock's, as the last stamp found it
        # Moments stamped again and again (an alarm's raising, in every alarm list sent) keep
        # their first stamp, though the wall clock drifts against the monotonic one (NTP
        # slewing) in between: a dashboard keys on them.
        self._kept: OrderedDict[float, int] = OrderedDict()

    @property
    def live(self) -> bool:
        """True when stamps follow the wall clock (real time); False when sped up or virtual."""
        return self._live

    def ms(self, monotonic: float) -> int:
        """Epoch ms of a clock reading."""
        if self._live:
            # Forward steps are followed (NTP setting a Pi's clock after boot); a step back is
            # not: the stamps keep the monotonic clock's pace from where they were, so no
            # stream goes back (a batch ending before it started, `log` hiding the newest).
            offset = self._wall() - self._clock.monotonic()
            if offset < self._wall_offset - _STEP_BACK_S:  # a step back since the last stamp
                log.warning(
                    "clock.stepped_back",
                    by_s=round(self._wall_offset - offset, 1),
                    behind_stamps_s=round(self._offset - offset, 1),
                    stamps="kept going forward",
                )
            self._wall_offset = offset
            if offset > self._offset:
                self._offset = offset
            return round((self._offset + monotonic) * 1000)
        return round((self._offset + monotonic) * 1000)


    def kept_ms(self, monotonic: float) -> int:
        """Epoch ms of a moment named again and again: the same every time (the newest
        `_STAMPS_KEPT` moments asked about are remembered)."""
        stamped = self._kept.get(monotonic)
        if stamped is None:
            stamped = self._kept[monotonic] = self.ms(monotonic)
            if len(self._kept) > _STAMPS_KEPT:
                self._kept.popitem(last=False)
        else:
            self._kept.move_to_end(monotonic)
        return stamped


@dataclass(frozen=True, slots=True)
class Metric:
    """One telemetry value as the birth message declares it."""

    name: str
    type: str  # "float" | "bool" | "int" | "string"
    unit: str | None = None
    nullable: bool = False  # null when not known now (a bad reading, outside a batch)

    def as_json(self) -> dict[str, Any]:
        """The birth entry."""
        return {"name": self.name, "type": self.type, "unit": self.unit, "nullable": self.nullable}


def _reading(name: str, type_: str, unit: str | None = None) -> list[Metric]:
    """A measured value and, beside it, why it is null when it is (`<name>_bad`)."""
    return [Metric(name, type_, unit, nullable=True), Metric(f"{name}_bad", "string", None, True)]


def telemetry_metrics(wiring: BoardWiring) -> list[Metric]:
    """Every value a telemetry message carries, in its order, with its type and unit."""
    metrics = [
        Metric("ts", "int", "ms"),
        Metric("seq", "int"),
        Metric("sess", "int"),
        Metric("boot", "int"),
        Metric("state", "string"),
        # PackTags (ISA-TR88.00.02): state_no is StateCurrent, unit_mode_no UnitModeCurrent.
        Metric("state_no", "int"),
        Metric("unit_mode", "string"),
        Metric("unit_mode_no", "int"),
        Metric("authority", "string"),
        Metric("phase", "string", nullable=True),
        # Where the batch is: phase n of m, time in it, and the least time its timed
        # conditions still need (null outside a batch, or when only an event can end it).
        Metric("phase_no", "int", nullable=True),
        Metric("phase_count", "int", nullable=True),
        Metric("phase_elapsed_s", "float", "s", nullable=True),
        Metric("phase_remaining_s", "float", "s", nullable=True),
        Metric("phase_waits_on_event", "bool", nullable=True),
        Metric("phase_waits_for", "string", nullable=True),
        Metric("recipe", "string", nullable=True),
        *_reading("temperature_c", "float", "°C"),
        Metric("temperature_sp_c", "float", "°C", nullable=True),
        *_reading("ph", "float", "pH"),
        Metric("ph_sp", "float", "pH", nullable=True),
        *(m for key in LEVEL_KEYS.values() for m in _reading(key, "bool")),
        *_reading("estop_pressed", "bool"),
        Metric("heater_duty", "float", "fraction"),
        Metric("heater_on", "bool"),
        Metric("contactor", "bool"),
        Metric("agitator", "bool"),
        Metric("fill_pump", "bool"),
        Metric("drain_valve", "bool"),
        Metric("purge_valve", "bool"),
        Metric("cooling_valve", "bool"),
    ]
    for tag in sorted(wiring.pumps()):
        pump = f"pump_{pump_ident(tag)}"
        metrics += [
            Metric(f"{pump}_ml_min", "float", "mL/min"),
            *_reading(f"{pump}_dispensed_ml", "float", "mL"),
            Metric(f"{pump}_reagents_ml", "float", "mL"),
        ]
    metrics += [
        Metric("awaiting_confirmation", "string", nullable=True),
        Metric("alarms_active", "int"),
        Metric("outbox_backlog", "int"),
        Metric("outbox_dropped", "int"),
        Metric("clock_synchronized", "bool", nullable=True),
        Metric("storage_failing", "bool"),
    ]
    return metrics


@dataclass(frozen=True, slots=True)
class TelemetryHeader:
    """What numbers a telemetry message: when, its place in the stream, and the session."""

    ts: int
    seq: int
    sess: int
    boot: int


@dataclass(frozen=True, slots=True)
class LinkFigures:
    """Figures of the unit and its link that go with each telemetry message."""

    alarms_active: int
    outbox_backlog: int
    outbox_dropped: int
    reagents_ml: Mapping[str, float]
    clock_synchronized: bool | None = None  # None: not known here
    storage_failing: bool = False  # the journal or the outbox cannot write


def _value(reading: Reading[Any], digits: int) -> float | None:
    if not reading.good or reading.value is None:
        return None
    return round(float(reading.value), digits)


def _why(reading: Reading[Any] | None) -> str | None:
    """Why a reading's value is null, or None when it is good."""
    if reading is None:
        return "no reading yet"
    return None if reading.good else reading.why or "bad"


def pack_tags(snap: Snapshot) -> dict[str, Any]:
    """Our unit mode with the PackTags UnitModeCurrent number, and who may command."""
    mode = snap.unit_mode
    return {
        "unit_mode": mode.value,
        "unit_mode_no": mode.number,
        "authority": snap.authority.value,
    }


def telemetry_payload(
    snap: Snapshot, *, header: TelemetryHeader, figures: LinkFigures, pumps: Iterable[str]
) -> dict[str, Any]:
    """One telemetry message, flat: a bad reading is null, with its reason in `<key>_bad`."""
    image, targets, outputs = snap.image, snap.targets, snap.outputs
    payload: dict[str, Any] = {
        "ts": header.ts,
        "seq": header.seq,
        "sess": header.sess,
        "boot": header.boot,
        "state": snap.state.value,
        "state_no": snap.state_no,
        **pack_tags(snap),
        "phase": snap.phase,
        **progress_dict(snap.progress),
        "recipe": snap.recipe,
        "temperature_c": _value(image.temperature, 3),
        "temperature_c_bad": _why(image.temperature),
        "temperature_sp_c": targets.temperature_c,
        "ph": _value(image.ph, 4),
        "ph_bad": _why(image.ph),
        "ph_sp": targets.ph.setpoint if targets.ph is not None else None,
    }
    for point, key in LEVEL_KEYS.items():
        reading = image.level(point)
        payload[key] = reading.value if reading.good else None
        payload[f"{key}_bad"] = _why(reading)
    estop = image.estop
    payload["estop_pressed"] = estop.value if estop.good else None
    payload["estop_pressed_bad"] = _why(estop)
    payload |= {
        "heater_duty": round(snap.heater_duty, 4),
        "heater_on": outputs.heater_on,
        "contactor": outputs.contactor,
        "agitator": outputs.agitator,
        "fill_pump": outputs.fill_pump,
        "drain_valve": outputs.drain_valve,
        "purge_valve": outputs.purge_valve,
        "cooling_valve": outputs.cooling_valve,
    }
    for tag in sorted(pumps):
        pump = f"pump_{pump_ident(tag)}"
        volume = image.dispensed_ml.get(tag)
        payload[f"{pump}_ml_min"] = round(outputs.pump(tag), 3)
        payload[f"{pump}_dispensed_ml"] = None if volume is None else _value(volume, 2)
        payload[f"{pump}_dispensed_ml_bad"] = _why(volume)
        payload[f"{pump}_reagents_ml"] = round(figures.reagents_ml.get(tag, 0.0), 2)
    payload |= {
        "awaiting_confirmation": snap.awaiting_confirmation,
        "alarms_active": figures.alarms_active,
        "outbox_backlog": figures.outbox_backlog,
        "outbox_dropped": figures.outbox_dropped,
        "clock_synchronized": figures.clock_synchronized,
        "storage_failing": figures.storage_failing,
    }
    return payload


def birth_payload(
    *,
    unit: str,
    site: str,
    version: str,
    sess: int,
    boot: int,
    ts: int,
    metrics: Iterable[Metric],
    recipes: Iterable[str],
    telemetry_period_s: float,
    commands: Iterable[str],
    clock_synchronized: bool | None = None,
    authority: str = "local",
) -> dict[str, Any]:
    """The retained description of the unit sent on every connect (and when the authority
    changes: a dashboard sees at once whether this unit takes its commands)."""
    return {
        "format": PAYLOAD_FORMAT,
        "unit": unit,
        "site": site,
        "version": version,
        "sess": sess,
        "boot": boot,
        "ts": ts,
        "telemetry_period_s": telemetry_period_s,
        "metrics": [m.as_json() for m in metrics],
        "recipes": sorted(recipes),
        "commands": sorted(commands),
        "clock_synchronized": clock_synchronized,
        "authority": authority,
    }


def alarms_payload(alarms: Iterable[Alarm], *, ts: int, epoch: EpochClock) -> dict[str, Any]:
    """The retained list of alarms that are not normal, most urgent first."""
    return {
        "ts": ts,
        "alarms": [
            {
                "id": a.alarm_id,
                "tag": a.tag,
                "priority": str(a.priority),
                "state": str(a.state),
                "message": a.message,
                "first_out": a.first_out,
                "latched": a.latch,
                "raised_ts": epoch.kept_ms(a.raised_at),
                "acked_ts": None if a.acked_at is None else epoch.kept_ms(a.acked_at),
            }
            for a in alarms
        ],
    }


def event_payload(event: UnitEvent, *, epoch: EpochClock) -> dict[str, Any]:
    """One event: when, its kind, a line for people, and its facts."""
    header = {"ts": epoch.ms(event.at), "kind": str(event.kind), "text": event.text}
    # An event's facts never overwrite when and what it was.
    return header | {key: value for key, value in event.data.items() if key not in header}
