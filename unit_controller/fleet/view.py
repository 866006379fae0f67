"""What the fleet view knows of each unit, from the messages the units publish (README §Fleet).

Pure: fed (topic, payload, receipt time) and asked for rows; never connects. Garbage on any
topic is counted and ignored: one broken unit or a stray publisher never blanks the view.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# ISA-18.2 priorities as units publish them, most urgent first.
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
# Telemetry not seen for this many periods: the unit is online but not reporting.
STALE_PERIODS = 3.0
# A birth's telemetry_period_s, as [mqtt] telemetry_period_s allows it.
MIN_PERIOD_S, MAX_PERIOD_S = 0.1, 3600.0
DEFAULT_PERIOD_S = 1.0
# Lags kept for the figures (the most recent), enough for a p99 over a few seconds of a fleet.
LAGS_KEPT = 20_000
_LEAVES = ("status", "birth", "telemetry", "alarms")


@dataclass(slots=True)
class UnitSeen:
    """One unit as the view last heard of it."""

    unit: str
    status: str | None = None  # "online" / "offline" (retained), None: not seen
    birth: dict[str, Any] | None = None
    telemetry: dict[str, Any] | None = None
    telemetry_at: float | None = None  # receipt, the view's monotonic clock
    # When the view saw it come online (or first saw its retained "online"): a unit that says it
    # is online and sends no telemetry goes stale as one whose telemetry stopped.
    online_at: float | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)

    @property
    def period_s(self) -> float:
        """The unit's telemetry period, from its birth."""
        period = (self.birth or {}).get("telemetry_period_s")
        if isinstance(period, int | float) and not isinstance(period, bool) and period > 0:
            return float(period)
        return DEFAULT_PERIOD_S

    @property
    def empty(self) -> bool:
        """Nothing retained or live left of it (its retained topics were cleared)."""
        return self.status is None and self.birth is None and self.telemetry is None


@dataclass(frozen=True, slots=True)
class UnitRow:
    """One line of the fleet view."""

    unit: str
    online: bool
    stale: bool
    state: str | None
    phase: str | None
    phase_no: int | None
    phase_count: int | None
    phase_elapsed_s: float | None
    recipe: str | None
    temperature_c: float | None
    ph: float | None
    unit_mode: str | None
    authority: str | None
    alarms: list[dict[str, Any]]
    age_s: float | None
    outbox_backlog: int | None
    site: str | None
    version: str | None

    @property
    def worst_rank(self) -> int:
        """The most urgent active alarm's rank (0 critical), or a rank past every priority."""
        ranks = [PRIORITY_RANK.get(str(a.get("priority")), 9) for a in self.alarms]
        return min(ranks, default=len(PRIORITY_RANK) + 1)

    def sort_key(self) -> tuple[int, int, str]:
        """Alarms first (most urgent first), then offline or stale, then by unit id."""
        return (self.worst_rank, 0 if (not self.online or self.stale) else 1, self.unit)

    def as_json(self) -> dict[str, Any]:
        """The `--json` object of this unit."""
        return {
            "unit": self.unit,
            "online": self.online,
            "stale": self.stale,
            "state": self.state,
            "phase": self.phase,
            "phase_no": self.phase_no,
            "phase_count": self.phase_count,
            "phase_elapsed_s": self.phase_elapsed_s,
            "recipe": self.recipe,
            "temperature_c": self.temperature_c,
            "ph": self.ph,
            "unit_mode": self.unit_mode,
            "authority": self.authority,
            "alarms": self.alarms,
            "age_s": self.age_s,
            "outbox_backlog": self.outbox_backlog,
            "site": self.site,
            "version": self.version,
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class FleetView:
    """Every unit seen under one topic root, with the lag of their telemetry."""

    def __init__(self, root: str) -> None:
        self.root = root.strip("/")
        self._prefix = self.root + "/"
        self.units: dict[str, UnitSeen] = {}
        self.rejected = 0  # messages that were not what their topic promises
        self.received = 0
        self.lags_s: deque[float] = deque(maxlen=LAGS_KEPT)  # receipt wall - message ts

    @property
    def subscriptions(self) -> list[str]:
        """The topic filters the view needs."""
        return [f"{self.root}/+/{leaf}" for leaf in _LEAVES]

    def ingest(self, topic: str, payload: bytes, *, now: float, wall: float) -> None:
        """Take one message; `now` the view's monotonic clock, `wall` epoch seconds."""
        self.received += 1
        if not topic.startswith(self._prefix):
            self.rejected += 1
            return
        unit, _, leaf = topic[len(self._prefix) :].partition("/")
        if not unit or leaf not in _LEAVES:
            self.rejected += 1
            return
        seen = self.units.get(unit)
        if seen is None:
            if not payload:
                return  # clearing a retained topic of a unit never seen
            seen = self.units[unit] = UnitSeen(unit)
        try:
            self._take(seen, leaf, payload, now=now, wall=wall)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            self.rejected += 1
        if seen.empty:
            del self.units[unit]  # decommissioned: its retained status and birth were cleared

    def _take(self, seen: UnitSeen, leaf: str, payload: bytes, *, now: float, wall: float) -> None:
        if leaf == "status":
            if not payload:
                seen.status = None
                return
            status = payload.decode().strip()
            if status not in ("online", "offline"):
                raise ValueError(f"status {status!r}")
            if status == "online" and seen.status != "online":
                seen.online_at = now
            seen.status = status
            return
        if not payload:  # a cleared retained birth or alarm list
            if leaf == "birth":
                seen.birth = None
            elif leaf == "alarms":
                seen.alarms = []
            return
        document = json.loads(payload)
        if not isinstance(document, dict):
            raise ValueError(f"{leaf} is not a JSON object")
        if leaf == "birth":
            period = _number(document.get("telemetry_period_s", DEFAULT_PERIOD_S))
            # A unit's own config bounds it (0.1..3600 s): anything else would keep a silent
            # unit from ever going stale, or make a live one stale at once.
            if period is None or not MIN_PERIOD_S <= period <= MAX_PERIOD_S:
                raise ValueError(f"telemetry_period_s {document.get('telemetry_period_s')!r}")
            seen.birth = document
        elif leaf == "alarms":
            alarms = document["alarms"]
            if not isinstance(alarms, list):
                raise ValueError("alarms is not a list")
            seen.alarms = sorted(
                (a for a in alarms if isinstance(a, dict)),
                key=lambda a: PRIORITY_RANK.get(str(a.get("priority")), 9),
            )
        else:
            seen.telemetry = document
            seen.telemetry_at = now
            ts = _number(document.get("ts"))
            if ts is not None:
                self.lags_s.append(wall - ts / 1000.0)

    def rows(self, *, now: float) -> list[UnitRow]:
        """Every unit, alarms first (most urgent first), then offline or stale, then by id."""
        rows = [self._row(seen, now) for seen in self.units.values()]
        rows.sort(key=UnitRow.sort_key)
        return rows

    def snapshot(self, *, now: float) -> list[dict[str, Any]]:
        """The `--json` list: one object per unit."""
        return [row.as_json() for row in self.rows(now=now)]

    def _row(self, seen: UnitSeen, now: float) -> UnitRow:
        t = seen.telemetry or {}
        birth = seen.birth or {}
        age = None if seen.telemetry_at is None else round(max(0.0, now - seen.telemetry_at), 1)
        # With its retained status cleared (a hand at the broker) a unit whose telemetry keeps
        # coming is plainly connected: online, not OFFLINE, until its `rebirth` says so again.
        fresh = seen.telemetry_at is not None and (
            now - seen.telemetry_at <= STALE_PERIODS * seen.period_s
        )
        online = seen.status == "online" or (seen.status is None and fresh)
        temperature, ph = _number(t.get("temperature_c")), _number(t.get("ph"))
        # Heard from last: its telemetry, or its coming online if that was later (a unit back
        # from an outage has a period to report before it counts as stale).
        heard = [at for at in (seen.telemetry_at, seen.online_at) if at is not None]
        return UnitRow(
            unit=seen.unit,
            online=online,
            stale=online and bool(heard) and now - max(heard) > STALE_PERIODS * seen.period_s,
            state=_text(t.get("state")),
            phase=_text(t.get("phase")),
            phase_no=_integer(t.get("phase_no")),
            phase_count=_integer(t.get("phase_count")),
            phase_elapsed_s=_number(t.get("phase_elapsed_s")),
            recipe=_text(t.get("recipe")),
            temperature_c=None if temperature is None else round(temperature, 2),
            ph=None if ph is None else round(ph, 3),
            unit_mode=_text(t.get("unit_mode")),
            authority=_text(t.get("authority")) or _text(birth.get("authority")),
            alarms=[_alarm(a) for a in seen.alarms],
            age_s=age,
            outbox_backlog=_integer(t.get("outbox_backlog")),
            site=_text(birth.get("site")),
            version=_text(birth.get("version")),
        )


def _alarm(alarm: dict[str, Any]) -> dict[str, Any]:
    """What the view shows of one alarm."""
    return {
        "id": _text(alarm.get("id")),
        "tag": _text(alarm.get("tag")),
        "priority": _text(alarm.get("priority")),
        "state": _text(alarm.get("state")),
        "message": _text(alarm.get("message")),
    }


def lag_figures(lags: list[float]) -> dict[str, float | int | None]:
    """p50, p99 and max of telemetry lags (s), and how many."""
    if not lags:
        return {"count": 0, "p50_s": None, "p99_s": None, "max_s": None}
    ordered = sorted(lags)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {"count": len(ordered), "p50_s": at(0.5), "p99_s": at(0.99), "max_s": at(1.0)}
