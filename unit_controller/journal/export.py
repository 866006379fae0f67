"""A batch out of the journal: its record, phases, confirmations, events and trend as plain data
(JSON), or the trend alone as CSV.

Reads the file read-only, so it is safe beside a running daemon and changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unit_controller.journal.db import (
    ALSO_READS,
    INTERRUPTED,
    RATE_SCALE,
    SAME_COMMAND_MS,
    SCHEMA_VERSION,
    TOTAL_SCALE,
    TREND_SCALE,
    cut_short,
    is_untagged,
    read_batch,
    read_batch_rows,
    read_trend,
)
from unit_controller.machine import STATE_NUMBER

FORMAT = "unit-controller/batch-export/1"
# The trend's value columns, by the stored column they come from.
_VALUE_COLUMNS = {
    "t": "temperature_c",
    "t_sp": "temperature_sp_c",
    "ph": "ph",
    "ph_sp": "ph_sp",
    "duty": "heater_duty",
}
_UNITS = {
    "ts": "ms",
    "temperature_c": "°C",
    "temperature_sp_c": "°C",
    "ph": "pH",
    "ph_sp": "pH",
    "heater_duty": "fraction",
}
_PHASE_STATS = (
    "t_min", "t_max", "t_mean", "ph_min", "ph_max", "ph_mean", "ph_in_band_fraction"
)  # fmt: skip
_STATE_NAME = {number: state.value for state, number in STATE_NUMBER.items()}
# A batch still open: everything journaled since its start is its own.
_OPEN_END_MS = 2**62
_ENDING_COMMAND_MS = 5000
# A batch read by time: the command that ended it is journaled with its answer, a moment after.
_ENDING_COMMANDS = frozenset({"abort", "stop", "complete"})
# The start command's rows lie this close to the start of the batch it began.
_START_NEAR_MS = 5000


class ExportError(Exception):
    """The journal or the batch asked for cannot be exported; the message says why."""


def tag_key(tag: str) -> str:
    """A device tag as a plain identifier part: "P-201" -> "p201"."""
    key = re.sub(r"[^a-z0-9]", "", tag.lower())
    return key or "x"


def open_journal(path: Path) -> sqlite3.Connection:
    """The journal file opened read-only; ExportError when there is none or it cannot be read."""
    if not path.is_file():
        raise ExportError(
            f"no journal at {path}: run a batch first (unit-controller sim or run), or name the "
            "unit's state directory with --state-dir"
        )
    try:
        conn = _connect_read_only(path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise ExportError(f"cannot read the journal {path}: {exc}") from exc
    if version > SCHEMA_VERSION and version not in ALSO_READS:
        conn.close()
        raise ExportError(f"{path} was written by a later release (schema {version})")
    if version < SCHEMA_VERSION:
        conn.close()
        raise ExportError(
            f"{path} has schema {version}: start the controller once (run or sim) to bring it up "
            f"to schema {SCHEMA_VERSION}"
        )
    return conn


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Read-only; on read-only media too (a state directory copied off a unit, a backup)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        conn.execute("PRAGMA user_version").fetchone()
        return conn
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise
    # A WAL file is read through a shared-memory file next to it, which read-only media cannot
    # hold: without a log to read (a clean stop folds it in), the file alone is the journal.
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise ExportError(
            f"cannot read the journal {path} where it is: its newest rows are in {wal.name}, "
            "which SQLite reads only in a writable folder; copy the state directory somewhere "
            "writable and read it there"
        )
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, timeout=5.0)


def batch_id_of(conn: sqlite3.Connection, ref: str) -> int:
    """The id `ref` names ("last" or a number); ExportError when no such batch is journaled."""
    text = ref.strip().lower()
    if text in ("last", "latest"):
        row = conn.execute("SELECT max(id) FROM batches").fetchone()
        if row is None or row[0] is None:
            raise ExportError("the journal holds no batch yet")
        return int(row[0])
    if not text.isdigit() or len(text) > 12:
        raise ExportError(f"batch {ref[:40]!r}: give a batch number or 'last'")
    batch_id = int(text)
    if conn.execute("SELECT 1 FROM batches WHERE id = ?", (batch_id,)).fetchone() is None:
        last = conn.execute("SELECT max(id) FROM batches").fetchone()[0]
        known = f"batches 1 to {last}" if last else "no batch yet"
        raise ExportError(f"no batch {batch_id} in the journal ({known})")
    return batch_id


def batch_export(
    conn: sqlite3.Connection,
    batch_id: int,
    *,
    unit: str,
    site: str,
    run_alive: bool = True,
) -> dict[str, Any]:
    """The whole batch as plain data (see FORMAT and the README's journal section).

    `run_alive`: whether the process that journals this unit runs now; a batch left open by a
    run that is gone is shown as the next start will record it: interrupted, where it was cut.
    """
    batch = read_batch(conn, batch_id)
    if batch is None:
        raise ExportError(f"no batch {batch_id} in the journal")
    meta: Mapping[str, Any] = batch["trend_meta"]
    record: Mapping[str, Any] = batch["record"]
    start_ts = int(batch["start_ts"])
    end_ts = batch["end_ts"]
    running = batch["final_state"] is None and run_alive
    if batch["final_state"] is None and not run_alive:
        end_ts, record = cut_short(conn, batch_id)
        batch["final_state"] = INTERRUPTED
    pumps: list[str] = [str(tag) for tag in meta.get("pumps", [])]
    reagents: Mapping[str, Any] = meta.get("reagents", {})
    end = _OPEN_END_MS if end_ts is None else int(end_ts)
    if is_untagged(conn, batch_id):
        events, commands = _rows_by_time(conn, batch_id, start_ts=start_ts, end=end)
        end_of_commands = end
    else:
        events, commands = _own_rows(conn, batch_id, start_ts=start_ts)
        end_of_commands = _OPEN_END_MS
    # The record's times count from its own origin, a scan or two before `start_ts`.
    origin = int(meta.get("record_origin_ts", start_ts))
    phases = _phases(record, meta, origin, not_before=start_ts)
    # A batch ended early (a `complete`, a stop, an abort, a crash) says which of its recipe's
    # phases never ran: a COMPLETE alone would pass a half-made batch as a whole one.
    ran = {p["name"] for p in phases}
    not_run = (
        [name for name in meta.get("phases", []) if name not in ran]
        if batch["final_state"] is not None
        else []
    )
    return {
        "format": FORMAT,
        "clock": "unit",
        "unit": {"id": unit, "site": site},
        "pumps": {tag: {"key": tag_key(tag), "reagent": reagents.get(tag)} for tag in pumps},
        "batch": {
            "id": batch["id"],
            "recipe": batch["recipe"],
            "recipe_sha256": batch["recipe_sha256"],
            # What the unit's own probes read, never the process's true state (README).
            "basis": record.get("basis") or "measured",
            "start_ts": start_ts,
            "end_ts": end_ts,
            "detected_ts": batch["detected_ts"],
            "last_ts": batch["last_ts"],
            "final_state": batch["final_state"],
            "interrupted": batch["final_state"] == INTERRUPTED,
            "running": running,
            "reagents_ml": dict(record.get("reagents_ml") or {}),
            "alarms": _alarms(record, origin),
            "max_temperature_c": (record.get("temperature") or {}).get("max_c"),
            "overshoot_c": (record.get("temperature") or {}).get("overshoot_c"),
            "ph_band": (record.get("ph") or {}).get("band"),
            "ph_in_band_fraction": dict((record.get("ph") or {}).get("in_band_fraction") or {}),
            "phases_not_run": not_run,
        },
        "phases": phases,
        "confirmations": _confirmations(events, phases),
        "events": [
            {"ts": e["ts"], "kind": e["kind"], "text": e["text"]}
            for e in events
            if e["kind"] != "command"
        ],
        "commands": _commands(commands, events, end=end_of_commands),
        "trend": _trend(read_trend(conn, batch_id), pumps, meta.get("phases", [])),
    }


Rows = list[dict[str, Any]]


def _own_rows(conn: sqlite3.Connection, batch_id: int, *, start_ts: int) -> tuple[Rows, Rows]:
    """The batch's events and commands: those journaled as its own (the command that ended it
    too), with the start that began it, journaled just before its first row."""
    journaled = read_batch_rows(
        conn, batch_id, start_ts - _START_NEAR_MS, start_ts + _START_NEAR_MS
    )
    events: Rows = []
    start: dict[str, Any] | None = None
    for event in journaled["events"]:  # in journal order
        if event["batch_id"] == batch_id:
            events.append(event)
        elif not events and _is_start(event):
            start = event  # the last one before the batch's own rows: this run's
    if start is not None:
        events.insert(0, start)
    commands = [c for c in journaled["commands"] if c["batch_id"] == batch_id]
    if start is not None:
        source, ts = start["data"].get("source"), start["ts"]
        commands += [
            c
            for c in journaled["commands"]
            if c["batch_id"] is None
            and c["ok"]
            and c["command"] == "start"
            and c["source"] == source
            and ts <= c["ts"] <= ts + SAME_COMMAND_MS
        ][:1]
    return events, commands


def _rows_by_time(
    conn: sqlite3.Connection, batch_id: int, *, start_ts: int, end: int
) -> tuple[Rows, Rows]:
    """A batch whose rows name no batch (journaled before they did, or by a release rolled back
    to): its events and commands by time, never another batch's own."""
    journaled = read_batch_rows(
        conn, batch_id, start_ts - _ENDING_COMMAND_MS, min(_OPEN_END_MS, end + _ENDING_COMMAND_MS)
    )
    # The start that began it (a moment before Execute) is the batch's too.
    events = [
        e
        for e in journaled["events"]
        if start_ts <= e["ts"] <= end or (_is_start(e) and e["ts"] <= start_ts)
    ]
    commands = [
        c
        for c in journaled["commands"]
        if c["ts"] >= start_ts or (c["command"] == "start" and c["ok"])
    ]
    return events, commands


def _phases(
    record: Mapping[str, Any], meta: Mapping[str, Any], origin: int, *, not_before: int
) -> list[Any]:
    """The record's phases with their times on the unit's clock; the first begins as the batch
    does (the record starts it a moment earlier, in Starting)."""
    names: list[str] = list(meta.get("phases", []))
    tolerances: list[Mapping[str, Any]] = list(meta.get("tolerances", []))
    out = []
    for phase in record.get("phases") or []:
        name = phase.get("name")
        index = names.index(name) if name in names else None
        tolerance = tolerances[index] if index is not None and index < len(tolerances) else {}
        end_s = phase.get("end_s")
        out.append(
            {
                "name": name,
                "start_ts": max(
                    not_before, origin + round(float(phase.get("start_s", 0.0)) * 1000)
                ),
                "end_ts": None if end_s is None else origin + round(float(end_s) * 1000),
                "temperature_sp_c": phase.get("temperature_sp_c"),
                "temperature_tolerance_c": tolerance.get("temperature_c"),
                "ph_sp": phase.get("ph_sp"),
                "ph_tolerance": tolerance.get("ph"),
                **{key: phase.get(key) for key in _PHASE_STATS},
            }
        )
    return out


def _alarms(record: Mapping[str, Any], origin: int) -> list[dict[str, Any]]:
    return [
        {
            "ts": origin + round(float(alarm.get("raised_s", 0.0)) * 1000),
            "id": alarm.get("id"),
            "tag": alarm.get("tag"),
            "priority": alarm.get("priority"),
            "message": alarm.get("message"),
        }
        for alarm in record.get("alarms") or []
    ]


def _is_start(event: Mapping[str, Any]) -> bool:
    data = event.get("data")
    return event["kind"] == "command" and isinstance(data, dict) and data.get("command") == "start"


def _commands(
    rows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], *, end: int
) -> list[dict[str, Any]]:
    """Every command of the batch once: the journaled command rows (the one that ended it is
    journaled a moment after the end it caused), and the controller's account of commands that
    have no row of their own (a simulation's operator, the daemon's stop)."""
    kept = [
        dict(row)
        for row in rows
        if row["ts"] <= end or (row["command"] in _ENDING_COMMANDS and row["ok"])
    ]
    told = [e for e in events if e["kind"] == "command" and isinstance(e.get("data"), dict)]
    matched: set[int] = set()
    # The account of the same command first, then one named otherwise (jog_pump: jog), as the
    # journal's `recent` matches them.
    for same_name in (True, False):
        for row in kept:
            if "detail" in row:
                continue
            for i, event in enumerate(told):
                if (
                    i not in matched
                    and event["data"].get("source") == row["source"]
                    and (event["data"].get("command") == row["command"] or not same_name)
                    and row["ts"] - SAME_COMMAND_MS <= event["ts"] <= row["ts"]
                ):
                    matched.add(i)
                    row["detail"] = event["text"]
                    break
    for i, event in enumerate(told):
        if i in matched:
            continue
        data = event["data"]
        kept.append(
            {
                "ts": event["ts"],
                "source": data.get("source"),
                "command": data.get("command"),
                "args": None,
                "ok": bool(data.get("ok", True)),
                "error": None,
                "detail": event["text"],
            }
        )
    return sorted(kept, key=lambda c: int(c["ts"]))


def _confirmations(
    events: Sequence[Mapping[str, Any]], phases: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for event in events:
        data = event.get("data")
        if event["kind"] != "command" or not isinstance(data, dict):
            continue
        if data.get("command") != "confirm":
            continue
        ts = event["ts"]
        phase = data.get("phase")
        if not isinstance(phase, str):
            # Journaled before confirmations named their phase: the one under way before
            # `ts` (the confirmation ends its phase, so the next starts at the same moment).
            during = [p["name"] for p in phases if p["start_ts"] < ts] or [
                p["name"] for p in phases[:1]
            ]
            phase = during[-1] if during else None
        out.append(
            {
                "ts": ts,
                "phase": phase,
                "prompt": data.get("prompt"),
                "by": data.get("source"),
            }
        )
    return out


def trend_columns(pumps: Sequence[str]) -> list[str]:
    """The trend's columns for a unit with these dosing pumps."""
    keys = [tag_key(tag) for tag in pumps]
    return [
        "ts",
        "state",
        "phase",
        *_VALUE_COLUMNS.values(),
        *(f"pump_{key}_ml_min" for key in keys),
        *(f"reagent_{key}_ml" for key in keys),
    ]


def _trend(
    rows: Sequence[Sequence[Any]], pumps: Sequence[str], phase_names: Sequence[str]
) -> dict[str, Any]:
    columns = trend_columns(pumps)
    units = dict(_UNITS)
    for key in (tag_key(tag) for tag in pumps):
        units[f"pump_{key}_ml_min"] = "mL/min"
        units[f"reagent_{key}_ml"] = "mL"
    n = len(pumps)
    out_rows = []
    for ts, state_no, phase, *scaled, rates_text, totals_text in rows:
        values = [
            None if value is None else round(value / factor, 3)
            for value, factor in zip(scaled, TREND_SCALE.values(), strict=True)
        ]
        rates = _numbers(rates_text, n, RATE_SCALE)
        totals = _numbers(totals_text, n, TOTAL_SCALE)
        phase_name = (
            phase_names[phase] if isinstance(phase, int) and 0 <= phase < len(phase_names) else None
        )
        out_rows.append([ts, _STATE_NAME.get(state_no), phase_name, *values, *rates, *totals])
    return {"columns": columns, "units": units, "rows": out_rows}


def _numbers(text: str, n: int, scale: int) -> list[float | None]:
    try:
        raw = json.loads(text)
    except (TypeError, ValueError):
        raw = []
    values: list[float | None] = [
        round(v / scale, 3) if isinstance(v, int | float) else None for v in raw[:n]
    ]
    return values + [None] * (n - len(values))


def trend_csv(export: Mapping[str, Any]) -> str:
    """The export's trend as CSV: a header, then a row a second (empty = no value)."""
    trend = export["trend"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(trend["columns"])
    for row in trend["rows"]:
        writer.writerow(["" if value is None else value for value in row])
    return out.getvalue()
