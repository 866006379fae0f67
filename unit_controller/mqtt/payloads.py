"""JSON payloads of the fleet topics: telemetry, birth, alarms and events (DESIGN §6).

Pure functions of the controller's snapshots and events; never publishes, never blocks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hal.clock import Clock, ScaledClock, SystemClock
from hal.reading import Reading
from hal.wiring import BoardWiring, LevelPoint
from unit_controller.alarms import Alarm
from unit_controller.batch.phase_runner import progress_dict
from unit_controller.controller import Snapshot
from unit_controller.events import UnitEvent

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
    ) -> None:
        self._clock = clock
        self._wall = wall
        # In real time, each reading is placed against the wall clock of the moment, so an NTP
        # step (a Pi without a real-time clock) moves every stamp with it; simulated time keeps
        # its own pace from one anchor.
        self._live = isinstance(clock, SystemClock) or (
            isinstance(clock, ScaledClock) and clock.speed == 1.0
        )
        start = wall()
        if not self._live and not_before_ms is not None:
            # A sped-up run went ahead of the wall clock; the next one starts after it, so the
            # journal's stamps never go back across a restart.
            start = max(start, not_before_ms / 1000 + 1.0)
        self._offset = start - clock.monotonic()

    @property
    def live(self) -> bool:
        """True when stamps follow the wall clock (real time); False when sped up or virtual."""
        return self._live

    def ms(self, monotonic: float) -> int:
        """Epoch ms of a clock reading."""
        if self._live:
            return round((self._wall() - (self._clock.monotonic() - monotonic)) * 1000)
        return round((self._offset + monotonic) * 1000)


@dataclass(frozen=True, slots=True)
class Metric:
    """One telemetry value as the birth message declares it."""

    name: str
    type: str  # "float" | "bool" | "int" | "string"
    unit: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The birth entry."""
        return {"name": self.name, "type": self.type, "unit": self.unit}


def telemetry_metrics(wiring: BoardWiring) -> list[Metric]:
    """Every value a telemetry message carries, with its type and unit."""
    metrics = [
        Metric("ts", "int", "ms"),
        Metric("seq", "int"),
        Metric("sess", "int"),
        Metric("boot", "int"),
        Metric("state", "string"),
        Metric("state_no", "int"),
        Metric("unit_mode", "string"),
        # PackTags names (ISA-TR88.00.02) beside ours, for fleet tools that speak PackML.
        Metric("StateCurrent", "int"),
        Metric("UnitModeCurrent", "int"),
        Metric("phase", "string"),
        # Where the batch is: phase n of m, time in it, and the least time its timed
        # conditions still need (null outside a batch, or when only an event can end it).
        Metric("phase_no", "int"),
        Metric("phase_count", "int"),
        Metric("phase_elapsed_s", "float", "s"),
        Metric("phase_remaining_s", "float", "s"),
        Metric("phase_waits_on_event", "bool"),
        Metric("phase_waits_for", "string"),
        Metric("recipe", "string"),
        Metric("temperature_c", "float", "°C"),
        Metric("temperature_sp_c", "float", "°C"),
        Metric("ph", "float", "pH"),
        Metric("ph_sp", "float", "pH"),
        *(Metric(key, "bool") for key in LEVEL_KEYS.values()),
        Metric("estop_pressed", "bool"),
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
        metrics += [
            Metric(f"pumps_ml_min.{tag}", "float", "mL/min"),
            Metric(f"dispensed_ml.{tag}", "float", "mL"),
            Metric(f"reagents_ml.{tag}", "float", "mL"),
        ]
    metrics += [
        Metric("awaiting_confirmation", "string"),
        Metric("alarms_active", "int"),
        Metric("outbox_backlog", "int"),
        Metric("outbox_dropped", "int"),
        Metric("clock_synchronized", "bool"),
        Metric("storage_failing", "bool"),
        Metric("authority", "string"),
        Metric("bad", "object"),
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


def pack_tags(snap: Snapshot) -> dict[str, Any]:
    """Our unit mode with the PackTags StateCurrent and UnitModeCurrent numbers."""
    mode = snap.unit_mode
    return {
        "unit_mode": mode.value,
        "StateCurrent": snap.state_no,
        "UnitModeCurrent": mode.number,
        "authority": snap.authority.value,
    }


def telemetry_payload(
    snap: Snapshot, *, header: TelemetryHeader, figures: LinkFigures, pumps: Iterable[str]
) -> dict[str, Any]:
    """One telemetry message: a bad reading is null, with its reason under `bad`."""
    image, targets, outputs = snap.image, snap.targets, snap.outputs
    bad: dict[str, str] = {}

    def flag(key: str, reading: Reading[Any]) -> None:
        if not reading.good:
            bad[key] = reading.why or "bad"

    flag("temperature_c", image.temperature)
    flag("ph", image.ph)
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
        "temperature_sp_c": targets.temperature_c,
        "ph": _value(image.ph, 4),
        "ph_sp": targets.ph.setpoint if targets.ph is not None else None,
    }
    for point, key in LEVEL_KEYS.items():
        reading = image.level(point)
        payload[key] = reading.value if reading.good else None
        flag(key, reading)
    payload["estop_pressed"] = image.estop.value if image.estop.good else None
    flag("estop_pressed", image.estop)
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
    tags = sorted(pumps)
    payload["pumps_ml_min"] = {tag: round(outputs.pump(tag), 3) for tag in tags}
    dispensed: dict[str, float | None] = {}
    for tag in tags:
        volume = image.dispensed_ml.get(tag)
        dispensed[tag] = None if volume is None else _value(volume, 2)
        if volume is not None:
            flag(f"dispensed_ml.{tag}", volume)
    payload["dispensed_ml"] = dispensed
    payload["reagents_ml"] = {tag: round(figures.reagents_ml.get(tag, 0.0), 2) for tag in tags}
    payload |= {
        "awaiting_confirmation": snap.awaiting_confirmation,
        "alarms_active": figures.alarms_active,
        "outbox_backlog": figures.outbox_backlog,
        "outbox_dropped": figures.outbox_dropped,
        "clock_synchronized": figures.clock_synchronized,
        "storage_failing": figures.storage_failing,
        "bad": bad,
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
                "raised_ts": epoch.ms(a.raised_at),
                "acked_ts": None if a.acked_at is None else epoch.ms(a.acked_at),
            }
            for a in alarms
        ],
    }


def event_payload(event: UnitEvent, *, epoch: EpochClock) -> dict[str, Any]:
    """One event: when, its kind, a line for people, and its facts."""
    header = {"ts": epoch.ms(event.at), "kind": str(event.kind), "text": event.text}
    # An event's facts never overwrite when and what it was.
    return header | {key: value for key, value in event.data.items() if key not in header}
