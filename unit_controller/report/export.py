"""The batch export (`journal export --format json`) read into typed, checked records.

Checks every key the report uses and names the first one it cannot use: times, ids and the
format must be right; a descriptive text or figure the unit did not know may be null (the page
shows a dash). Never imports matplotlib and never changes the export it is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from unit_controller.errors import UnitControllerError

FORMAT = "unit-controller/batch-export/1"
CLOCK = "unit"

# Trend columns the report draws (others are ignored); reagent totals are `reagent_<key>_ml`.
TREND_NUMBERS = ("temperature_c", "temperature_sp_c", "ph", "ph_sp", "heater_duty")
REAGENT_PREFIX = "reagent_"
REAGENT_SUFFIX = "_ml"


class ReportError(UnitControllerError):
    """The report cannot be made: an export it cannot use, or a path it cannot write."""


@dataclass(frozen=True)
class Pump:
    """A dosing pump wired on the unit: its tag, its key in trend columns, its reagent."""

    tag: str
    key: str
    reagent: str | None


@dataclass(frozen=True)
class Alarm:
    """An alarm raised during the batch."""

    ts: int
    id: str
    tag: str | None
    priority: str | None
    message: str | None


@dataclass(frozen=True)
class Phase:
    """One phase as it ran: times, setpoints and measured statistics (None when not known)."""

    name: str
    start_ts: int
    end_ts: int | None
    temperature_sp_c: float | None
    temperature_tolerance_c: float | None
    ph_sp: float | None
    ph_tolerance: float | None
    t_min: float | None
    t_max: float | None
    t_mean: float | None
    ph_min: float | None
    ph_max: float | None
    ph_mean: float | None
    ph_in_band_fraction: float | None


@dataclass(frozen=True)
class Confirmation:
    """An operator's confirmation (e.g. "Black mass charged"): who, when, in which phase."""

    ts: int
    phase: str | None
    prompt: str | None
    by: str | None


@dataclass(frozen=True)
class Event:
    """A journaled event: state change, phase change, alarm transition…"""

    ts: int
    kind: str
    text: str


@dataclass(frozen=True)
class CommandRecord:
    """A command received during the batch and what became of it."""

    ts: int
    source: str
    command: str
    ok: bool
    error: str | None


@dataclass(frozen=True)
class Trend:
    """One row a second of unit time: `ts` ascending and each drawn column as floats or None."""

    ts: tuple[int, ...]
    numbers: Mapping[str, tuple[float | None, ...]]  # by column name, only the drawn ones

    def column(self, name: str) -> tuple[float | None, ...] | None:
        """The values of one column, or None when the export has no such column."""
        return self.numbers.get(name)


@dataclass(frozen=True)
class BatchExport:
    """Everything the report shows, checked."""

    unit_id: str
    site: str | None
    pumps: tuple[Pump, ...]
    batch_id: int
    recipe: str
    recipe_sha256: str
    start_ts: int
    end_ts: int | None
    detected_ts: int | None
    final_state: str | None
    reagents_ml: Mapping[str, float]
    alarms: tuple[Alarm, ...]
    max_temperature_c: float | None
    overshoot_c: float | None
    ph_band: float | None
    ph_in_band_fraction: Mapping[str, float]
    phases: tuple[Phase, ...]
    phases_not_run: tuple[str, ...]
    confirmations: tuple[Confirmation, ...]
    events: tuple[Event, ...]
    commands: tuple[CommandRecord, ...]
    trend: Trend

    @property
    def interrupted(self) -> bool:
        """The controller stopped during the batch; a restart found it and recorded so."""
        return self.final_state == "interrupted"

    @property
    def running(self) -> bool:
        """The batch had not ended when it was exported."""
        return self.final_state is None and self.end_ts is None

    @property
    def last_ts(self) -> int:
        """The batch's last known moment: its end, else its newest trend row, alarm or phase."""
        if self.end_ts is not None:
            return self.end_ts
        moments = [self.start_ts, *self.trend.ts[-1:], *(a.ts for a in self.alarms)]
        moments += [p.start_ts for p in self.phases]
        moments += [p.end_ts for p in self.phases if p.end_ts is not None]
        return max(moments)


def read_export(export: Mapping[str, Any]) -> BatchExport:
    """Check a batch export and return it typed; ReportError names the first problem found."""
    if not isinstance(export, Mapping):
        raise ReportError(f"the export is a {type(export).__name__}, not a JSON object")
    tag = export.get("format")
    if tag != FORMAT:
        raise ReportError(f"the export's format is {tag!r}: this report reads {FORMAT!r}")
    clock = export.get("clock")
    if clock != CLOCK:
        raise ReportError(f"clock: {clock!r}: this report reads times on the {CLOCK!r} clock")
    unit = _mapping(export, "unit", "")
    batch = _mapping(export, "batch", "")
    pumps = _pumps(_mapping(export, "pumps", ""))
    return BatchExport(
        unit_id=_str(unit, "id", "unit"),
        site=_opt_str(unit, "site", "unit"),
        pumps=pumps,
        batch_id=_int(batch, "id", "batch"),
        recipe=_str(batch, "recipe", "batch"),
        recipe_sha256=_str(batch, "recipe_sha256", "batch"),
        start_ts=_int(batch, "start_ts", "batch"),
        end_ts=_opt_int(batch, "end_ts", "batch"),
        detected_ts=_opt_int(batch, "detected_ts", "batch", required=False),
        final_state=_opt_str(batch, "final_state", "batch"),
        reagents_ml=_numbers(batch, "reagents_ml", "batch"),
        alarms=tuple(_alarm(a, w) for a, w in _items(batch, "alarms", "batch")),
        max_temperature_c=_opt_num(batch, "max_temperature_c", "batch"),
        overshoot_c=_opt_num(batch, "overshoot_c", "batch"),
        ph_band=_opt_num(batch, "ph_band", "batch"),
        ph_in_band_fraction=_numbers(batch, "ph_in_band_fraction", "batch"),
        phases=tuple(_phase(p, w) for p, w in _items(export, "phases", "")),
        phases_not_run=_names(batch, "phases_not_run", "batch"),
        confirmations=tuple(_confirmation(c, w) for c, w in _items(export, "confirmations", "")),
        events=tuple(
            Event(ts=_int(e, "ts", w), kind=_str(e, "kind", w), text=_str(e, "text", w))
            for e, w in _items(export, "events", "")
        ),
        commands=tuple(_command(c, w) for c, w in _items(export, "commands", "")),
        trend=_trend(_mapping(export, "trend", "")),
    )


def _pumps(pumps: Mapping[str, Any]) -> tuple[Pump, ...]:
    out = []
    for tag in sorted(pumps):
        where = f"pumps.{tag}"
        pump = pumps[tag]
        if not isinstance(pump, Mapping):
            raise ReportError(f"{where}: {pump!r} is not an object")
        out.append(
            Pump(tag=tag, key=_str(pump, "key", where), reagent=_opt_str(pump, "reagent", where))
        )
    return tuple(out)


def _alarm(a: Mapping[str, Any], where: str) -> Alarm:
    return Alarm(
        ts=_int(a, "ts", where),
        id=_str(a, "id", where),
        tag=_opt_str(a, "tag", where),
        priority=_opt_str(a, "priority", where),
        message=_opt_str(a, "message", where),
    )


def _phase(p: Mapping[str, Any], where: str) -> Phase:
    def num(key: str) -> float | None:
        return _opt_num(p, key, where)

    return Phase(
        name=_str(p, "name", where),
        start_ts=_int(p, "start_ts", where),
        end_ts=_opt_int(p, "end_ts", where),
        temperature_sp_c=num("temperature_sp_c"),
        temperature_tolerance_c=num("temperature_tolerance_c"),
        ph_sp=num("ph_sp"),
        ph_tolerance=num("ph_tolerance"),
        t_min=num("t_min"),
        t_max=num("t_max"),
        t_mean=num("t_mean"),
        ph_min=num("ph_min"),
        ph_max=num("ph_max"),
        ph_mean=num("ph_mean"),
        ph_in_band_fraction=num("ph_in_band_fraction"),
    )


def _confirmation(c: Mapping[str, Any], where: str) -> Confirmation:
    return Confirmation(
        ts=_int(c, "ts", where),
        phase=_opt_str(c, "phase", where),
        prompt=_opt_str(c, "prompt", where),
        by=_opt_str(c, "by", where),
    )


def _command(c: Mapping[str, Any], where: str) -> CommandRecord:
    ok = _field(c, "ok", where)
    if not isinstance(ok, bool):
        raise ReportError(f"{where}.ok: {ok!r} is not true or false")
    return CommandRecord(
        ts=_int(c, "ts", where),
        source=_str(c, "source", where),
        command=_str(c, "command", where),
        ok=ok,
        error=_opt_str(c, "error", where),
    )


def _trend(trend: Mapping[str, Any]) -> Trend:
    columns = _field(trend, "columns", "trend")
    if not _is_list(columns) or not all(isinstance(c, str) for c in columns):
        raise ReportError("trend.columns: not a list of column names")
    if "ts" not in columns:
        raise ReportError("trend.columns: no 'ts' column")
    rows = _field(trend, "rows", "trend")
    if not _is_list(rows):
        raise ReportError("trend.rows: not a list of rows")
    drawn = [
        c
        for c in columns
        if c in TREND_NUMBERS or (c.startswith(REAGENT_PREFIX) and c.endswith(REAGENT_SUFFIX))
    ]
    index = {c: columns.index(c) for c in ("ts", *drawn)}
    ts_i = index["ts"]
    width = len(columns)
    for n, row in enumerate(rows):
        if not _is_list(row) or len(row) != width:
            size = len(row) if _is_list(row) else type(row).__name__
            raise ReportError(f"trend.rows[{n}]: {size} values for {width} columns")
        ts = row[ts_i]
        if not _is_int(ts):
            raise ReportError(f"trend.rows[{n}].ts: {ts!r} is not epoch milliseconds")
        for c in drawn:
            value = row[index[c]]
            if value is not None and not _is_number(value):
                raise ReportError(f"trend.rows[{n}].{c}: {value!r} is not a number or null")
    ordered = sorted(rows, key=lambda r: r[ts_i])  # promised ascending; cheap to make sure
    return Trend(
        ts=tuple(r[ts_i] for r in ordered),
        numbers={c: tuple(_float(r[index[c]]) for r in ordered) for c in drawn},
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _items(obj: Mapping[str, Any], key: str, where: str) -> list[tuple[Mapping[str, Any], str]]:
    """The objects of a list field, each with where it is (`events[3]`)."""
    path = _path(where, key)
    value = _field(obj, key, where)
    if not _is_list(value):
        raise ReportError(f"{path}: not a list")
    out = []
    for n, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ReportError(f"{path}[{n}]: {item!r} is not an object")
        out.append((item, f"{path}[{n}]"))
    return out


def _numbers(obj: Mapping[str, Any], key: str, where: str) -> dict[str, float]:
    """An object of numbers by name (`reagents_ml`: mL by pump tag)."""
    value = _mapping(obj, key, where)
    return {name: _num(value, name, _path(where, key)) for name in value}


def _names(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A list of text (an export of an earlier release may lack it: none)."""
    if key not in obj:
        return ()
    value = obj[key]
    if not _is_list(value) or not all(isinstance(item, str) for item in value):
        raise ReportError(f"{_path(where, key)}: {value!r} is not a list of text")
    return tuple(value)


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _field(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise ReportError(f"{_path(where, key)}: missing")
    return obj[key]


def _mapping(obj: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = _field(obj, key, where)
    if not isinstance(value, Mapping):
        raise ReportError(f"{_path(where, key)}: {value!r} is not an object")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _field(obj, key, where)
    if not isinstance(value, str):
        raise ReportError(f"{_path(where, key)}: {value!r} is not text")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = _field(obj, key, where)
    return None if value is None else _str(obj, key, where)


def _int(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = _field(obj, key, where)
    if not _is_int(value):
        raise ReportError(f"{_path(where, key)}: {value!r} is not an integer")
    return int(value)


def _opt_int(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> int | None:
    if not required and key not in obj:
        return None
    value = _field(obj, key, where)
    return None if value is None else _int(obj, key, where)


def _num(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = _field(obj, key, where)
    if not _is_number(value):
        raise ReportError(f"{_path(where, key)}: {value!r} is not a number")
    return float(value)


def _opt_num(obj: Mapping[str, Any], key: str, where: str) -> float | None:
    value = _field(obj, key, where)
    return None if value is None else _num(obj, key, where)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)
