"""The journal's SQLite side: schema, statements and reads, run on the journal's worker thread.

Never runs on the event loop's thread (only in worker jobs), and never lets one refused row
hold back the rows committed with it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from hal.log import get_logger
from unit_controller.sqlite_worker import SqliteWorker, StoreError, create_schema, transaction

log = get_logger(__name__)

# Stamped by builds of 2026-12-06 that tagged rows as schema 3: the same file as schema 2 now
# (prepare stamps it back to 2).
ALSO_READS = frozenset({3})
# Counts incompatible changes only. Columns added in place (events' and commands' batch_id)
# leave it as it was, so the release before can still open the file: a rollback keeps working.
SCHEMA_VERSION = 2
# SQLite's page cache for the journal, in KiB. The journal appends and is read rarely (reports,
# export); SQLite's default 2 MB cache would fill over the first batches and stay resident.
CACHE_KIB = 256
_SCHEMA = (
    # `batch_id`: the batch open when the row was journaled (NULL between batches), so a
    # batch's rows are its own however its stamps overlap another's (a sped-up run, then a
    # real-time one; a wall clock stepped back).
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " kind TEXT NOT NULL, text TEXT NOT NULL, data TEXT NOT NULL, batch_id INTEGER)",
    "CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ms)",
    "CREATE INDEX IF NOT EXISTS events_batch ON events (batch_id) WHERE batch_id IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS commands (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " source TEXT NOT NULL, command TEXT NOT NULL, args TEXT NOT NULL, ok INTEGER NOT NULL,"
    " error TEXT, result TEXT, batch_id INTEGER)",
    "CREATE INDEX IF NOT EXISTS commands_ts ON commands (ts_ms)",
    "CREATE INDEX IF NOT EXISTS commands_batch ON commands (batch_id) WHERE batch_id IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, recipe TEXT NOT NULL,"
    " recipe_sha256 TEXT NOT NULL, start_ts INTEGER NOT NULL, end_ts INTEGER,"
    " final_state TEXT, record TEXT, detected_ts INTEGER, last_ts INTEGER, trend_meta TEXT)",
    # One row a second of a batch, values as scaled integers (TREND_SCALE): about 40 bytes a
    # row, so a ten-hour batch keeps its curves in about 1.5 MB.
    "CREATE TABLE IF NOT EXISTS trend (batch_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
    " state_no INTEGER, phase INTEGER, t INTEGER, t_sp INTEGER, ph INTEGER, ph_sp INTEGER,"
    " duty INTEGER, rates TEXT NOT NULL, totals TEXT NOT NULL,"
    " PRIMARY KEY (batch_id, ts_ms)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS calibrations (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " device TEXT NOT NULL, kind TEXT NOT NULL, action TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS calibrations_kind ON calibrations (kind, device, ts_ms)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
INSERT_EVENT = "INSERT INTO events (ts_ms, kind, text, data, batch_id) VALUES (?, ?, ?, ?, ?)"
INSERT_COMMAND = (
    "INSERT INTO commands (ts_ms, source, command, args, ok, error, result, batch_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# A batch's rows are idempotent, so a commit retried after a failure can never duplicate or
# undo one: the start is ignored once the row exists, the finish carries the whole row; and
# a batch already marked interrupted stays so.
START_BATCH = (
    "INSERT OR IGNORE INTO batches (id, recipe, recipe_sha256, start_ts, trend_meta, last_ts)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
FINISH_BATCH = (
    "INSERT INTO batches (id, recipe, recipe_sha256, start_ts, trend_meta, end_ts, final_state,"
    " record, last_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " end_ts = excluded.end_ts, final_state = excluded.final_state, record = excluded.record,"
    " last_ts = excluded.last_ts WHERE batches.final_state IS NULL"
)
PROGRESS_BATCH = (
    "UPDATE batches SET record = ?, last_ts = max(coalesce(last_ts, 0), ?)"
    " WHERE id = ? AND final_state IS NULL"
)
INSERT_TREND = (
    "INSERT OR REPLACE INTO trend (batch_id, ts_ms, state_no, phase, t, t_sp, ph, ph_sp, duty,"
    " rates, totals) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The batch's last journaled moment, kept with each trend row: where a crash ends it.
TOUCH_BATCH = (
    "UPDATE batches SET last_ts = max(coalesce(last_ts, 0), ?) WHERE id = ? AND final_state IS NULL"
)
# Columns of the trend table and the factor each value was multiplied by before rounding.
TREND_SCALE = {"t": 100, "t_sp": 100, "ph": 1000, "ph_sp": 1000, "duty": 1000}
RATE_SCALE = 100  # pump rates in 0.01 mL/min
TOTAL_SCALE = 10  # reagent totals in 0.1 mL
# The unit's clock as of now, so a restart of a sped-up run goes on from past it.
MARK_CLOCK = (
    "INSERT INTO meta (key, value) VALUES ('clock_ms', ?) ON CONFLICT (key) DO UPDATE SET"
    " value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))"
)
RESET_INTERRUPTED = "UPDATE meta SET value = '[]' WHERE key = 'interrupted_unreset'"
MARK_SAFETY = (
    "INSERT INTO meta (key, value) VALUES ('safety', ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
INSERT_CALIBRATION = (
    "INSERT INTO calibrations (ts_ms, device, kind, action, data) VALUES (?, ?, ?, ?, ?)"
)
INTERRUPTED = "interrupted"
# A command's row is journaled once its answer is known: the controller's event about it comes
# at most this long before.
SAME_COMMAND_MS = 10_000
# Errors in the rows themselves: retrying the same commit cannot help, so rows go one by one.
_ROW_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    OverflowError,
    ValueError,
)

Op = tuple[str, tuple[Any, ...]]  # one statement and its parameters, not yet committed


class JournalError(StoreError):
    """The journal database cannot be used; names the file and the reason."""

    store = "journal"


@dataclass(frozen=True, slots=True)
class JournalOpening:
    """What opening the journal found about the previous run."""

    previous_run_clean: bool
    interrupted_batches: tuple[int, ...]
    # Interrupted batches (now or in an earlier run) whose alarm nobody has reset yet: the unit
    # must keep saying so across restarts, clean or not.
    unreset_interrupted: tuple[int, ...] = ()
    # What the previous run's controller said a restart must not forget (latched trips, the
    # reactor's charge) as it kept it (SafetyMemory's JSON); None when it kept nothing.
    safety: str | None = None
    # Why the journal could not be read at all (a failing disk): nothing is known of the last
    # run, its safety memory included, which the daemon then takes the worst way.
    unreadable: str | None = None


@dataclass(frozen=True, slots=True)
class Opened:
    """What opening found: the previous run, and the id the next batch gets."""

    opening: JournalOpening
    next_batch_id: int


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _has_table(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute(f"PRAGMA table_info({table})").fetchone() is not None


def has_batch_column(conn: sqlite3.Connection) -> bool:
    """Whether events and commands name their batch (a file this release has opened)."""
    return any(row[1] == "batch_id" for row in conn.execute("PRAGMA table_info(events)"))


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file of an earlier schema up to this one, keeping every row."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 1:
        # Schema 1 had no trend and no record of when a batch was last heard of.
        for column in ("detected_ts INTEGER", "last_ts INTEGER", "trend_meta TEXT"):
            conn.execute(f"ALTER TABLE batches ADD COLUMN {column}")
    for table in ("events", "commands"):
        # Rows journaled before (or by a release rolled back to) name no batch: their batches
        # are read by time, as before (`is_untagged`).
        if _has_table(conn, table) and not any(
            row[1] == "batch_id" for row in conn.execute(f"PRAGMA table_info({table})")
        ):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN batch_id INTEGER")


# Trend rows whose batch is gone, found by walking the distinct batch ids along the key (a few
# lookups a batch) rather than every row of months of curves.
_DELETE_ORPHAN_TREND = (
    "DELETE FROM trend WHERE (batch_id, ts_ms) IN ("
    "WITH RECURSIVE ids(id) AS (SELECT min(batch_id) FROM trend UNION ALL"
    " SELECT (SELECT min(batch_id) FROM trend WHERE batch_id > ids.id) FROM ids"
    " WHERE ids.id IS NOT NULL),"
    " orphans AS (SELECT id FROM ids WHERE id IS NOT NULL AND id NOT IN (SELECT id FROM batches))"
    " SELECT batch_id, ts_ms FROM trend WHERE batch_id IN orphans LIMIT ?)"
)


def _latest_ts(conn: sqlite3.Connection) -> int | None:
    """The newest stamp the unit wrote: events, commands, trend, batch ends and the clock's own
    mark (a sped-up run that journals nothing for a while still moves its clock on)."""
    row = conn.execute(
        "SELECT max(ts) FROM (SELECT max(ts_ms) AS ts FROM events"
        " UNION ALL SELECT max(ts_ms) FROM commands"
        # The newest batch holds the newest trend: found along the key, not by reading every row
        # (a journal of months of batches made each start take seconds).
        " UNION ALL SELECT max(ts_ms) FROM trend WHERE batch_id = (SELECT max(batch_id) FROM trend)"
        " UNION ALL SELECT max(max(coalesce(last_ts, 0), coalesce(end_ts, 0),"
        " coalesce(detected_ts, 0))) FROM batches"
        " UNION ALL SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'clock_ms')"
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def cut_short(conn: sqlite3.Connection, batch_id: int) -> tuple[int, dict[str, Any]]:
    """Where a batch its run never finished ends, and its record then: its last journaled
    moment (not the start that finds it, which may be hours later), with what it had dosed up
    to then (the trend's last totals) and its last phase ended there."""
    start_ts, last_ts, record_text, meta_text = conn.execute(
        "SELECT start_ts, last_ts, record, trend_meta FROM batches WHERE id = ?", (batch_id,)
    ).fetchone()
    # Its own rows; for a batch journaled before rows named their batch, everything since it
    # started belongs to the run that died with it.
    where, key = (
        ("ts_ms >= ?", start_ts) if is_untagged(conn, batch_id) else ("batch_id = ?", batch_id)
    )
    later = conn.execute(
        f"SELECT max(ts) FROM (SELECT max(ts_ms) AS ts FROM events WHERE {where}"
        f" UNION ALL SELECT max(ts_ms) FROM commands WHERE {where}"
        " UNION ALL SELECT max(ts_ms) FROM trend WHERE batch_id = ?)",
        (key, key, batch_id),
    ).fetchone()[0]
    end_ts = max(int(start_ts), int(last_ts or 0), int(later or 0))
    record = _load(record_text) or {}
    meta = _load(meta_text) or {}
    totals_row = conn.execute(
        "SELECT totals FROM trend WHERE batch_id = ? ORDER BY ts_ms DESC LIMIT 1", (batch_id,)
    ).fetchone()
    if totals_row is not None and meta.get("pumps"):
        # The trend's last row knows doses the last progress record had not seen yet.
        reagents = dict(record.get("reagents_ml") or {})
        for tag, total in zip(meta["pumps"], json.loads(totals_row[0]), strict=False):
            ml = round(total / TOTAL_SCALE, 1)
            if ml > reagents.get(tag, 0.0):
                reagents[tag] = ml
        record["reagents_ml"] = dict(sorted(reagents.items()))
    phases = record.get("phases") or []
    _widen_from_trend(conn, batch_id, phases, meta, record)
    if phases and phases[-1].get("end_s") is None:
        origin = int(meta.get("record_origin_ts", start_ts))
        phases[-1]["end_s"] = round((end_ts - origin) / 1000, 3)
    return end_ts, record


def _widen_from_trend(
    conn: sqlite3.Connection,
    batch_id: int,
    phases: list[dict[str, Any]],
    meta: dict[str, Any],
    record: dict[str, Any],
) -> None:
    """A record is written once a minute: widen each phase's extremes (and the batch's highest
    temperature) to what the trend saw since, so an excursion just before the cut is in it.
    Means and the overshoot stay as of the last record."""
    names = meta.get("phases") or []
    by_name = {phase.get("name"): phase for phase in phases}
    t_scale, ph_scale = TREND_SCALE["t"], TREND_SCALE["ph"]
    highest: float | None = None
    for index, t_min, t_max, ph_min, ph_max in conn.execute(
        "SELECT phase, min(t), max(t), min(ph), max(ph) FROM trend WHERE batch_id = ?"
        " GROUP BY phase",
        (batch_id,),
    ):
        phase = by_name.get(names[index]) if isinstance(index, int) and index < len(names) else None
        if phase is None:
            continue
        for key, value, scale, pick in (
            ("t_min", t_min, t_scale, min),
            ("t_max", t_max, t_scale, max),
            ("ph_min", ph_min, ph_scale, min),
            ("ph_max", ph_max, ph_scale, max),
        ):
            if value is not None and key in phase:
                seen = value / scale
                phase[key] = seen if phase[key] is None else pick(phase[key], seen)
        if t_max is not None:
            highest = t_max / t_scale if highest is None else max(highest, t_max / t_scale)
    temperature = record.get("temperature")
    if highest is not None and isinstance(temperature, dict):
        kept = temperature.get("max_c")
        temperature["max_c"] = highest if kept is None else max(kept, highest)


def _close_interrupted(conn: sqlite3.Connection, batch_id: int, *, detected_ms: int) -> None:
    """Mark a batch the previous run never finished interrupted, where it was cut short."""
    end_ts, record = cut_short(conn, batch_id)
    conn.execute(
        "UPDATE batches SET final_state = ?, end_ts = ?, detected_ts = ?, record = ? WHERE id = ?",
        (INTERRUPTED, end_ts, detected_ms, json.dumps(record), batch_id),
    )


_BATCH_COLUMNS = (
    "id", "recipe", "recipe_sha256", "start_ts", "end_ts", "final_state", "detected_ts", "last_ts"
)  # fmt: skip


def read_batch(conn: sqlite3.Connection, batch_id: int | None) -> dict[str, Any] | None:
    """One batch with its record and trend_meta (None = the latest); None if there is none."""
    columns = ", ".join((*_BATCH_COLUMNS, "record", "trend_meta"))
    if batch_id is None:
        row = conn.execute(f"SELECT {columns} FROM batches ORDER BY id DESC LIMIT 1").fetchone()
    else:
        row = conn.execute(f"SELECT {columns} FROM batches WHERE id = ?", (batch_id,)).fetchone()
    if row is None:
        return None
    n = len(_BATCH_COLUMNS)
    entry = dict(zip(_BATCH_COLUMNS, row[:n], strict=True))
    entry["record"] = _load(row[n]) or {}
    entry["trend_meta"] = _load(row[n + 1]) or {}
    return entry


def read_batches(conn: sqlite3.Connection, n: int) -> list[dict[str, Any]]:
    """The last `n` batches, newest first, without their records."""
    rows = conn.execute(
        f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches ORDER BY id DESC LIMIT ?", (n,)
    )
    return [dict(zip(_BATCH_COLUMNS, row, strict=True)) for row in rows]


def read_trend(conn: sqlite3.Connection, batch_id: int) -> list[tuple[Any, ...]]:
    """A batch's trend rows as stored (scaled integers; see TREND_SCALE), oldest first."""
    return conn.execute(
        "SELECT ts_ms, state_no, phase, t, t_sp, ph, ph_sp, duty, rates, totals FROM trend"
        " WHERE batch_id = ? ORDER BY ts_ms",
        (batch_id,),
    ).fetchall()


def read_batch_rows(
    conn: sqlite3.Connection, batch_id: int | None, start_ms: int, end_ms: int
) -> dict[str, list[dict[str, Any]]]:
    """Events and commands tagged with `batch_id`, and the untagged ones (journaled between
    batches, or by a release that did not tag them) stamped from `start_ms` to `end_ms`; in
    journal order, each with its `batch_id`."""
    params: tuple[int | None, ...]
    if has_batch_column(conn):
        tag, where = "batch_id", "batch_id = ? OR (batch_id IS NULL AND ts_ms BETWEEN ? AND ?)"
        params = (batch_id, start_ms, end_ms)
    else:  # a file no release of ours has opened since rows were tagged
        tag, where, params = "NULL AS batch_id", "ts_ms BETWEEN ? AND ?", (start_ms, end_ms)
    events = [
        {"ts": ts, "kind": kind, "text": text, "data": _load(data), "batch_id": batch}
        for ts, kind, text, data, batch in conn.execute(
            f"SELECT ts_ms, kind, text, data, {tag} FROM events WHERE {where} ORDER BY id", params
        )
    ]
    commands = [
        {
            "ts": ts,
            "source": source,
            "command": command,
            "args": _load(args),
            "ok": bool(ok),
            "error": error,
            "batch_id": batch,
        }
        for ts, source, command, args, ok, error, batch in conn.execute(
            f"SELECT ts_ms, source, command, args, ok, error, {tag} FROM commands WHERE {where}"
            " ORDER BY id",
            params,
        )
    ]
    return {"events": events, "commands": commands}


def is_untagged(conn: sqlite3.Connection, batch_id: int) -> bool:
    """Whether the batch's rows name no batch: journaled before this release, or by a release
    rolled back to (every batch this release journals has its state changes tagged)."""
    if not has_batch_column(conn):
        return True
    return (
        conn.execute("SELECT 1 FROM events WHERE batch_id = ? LIMIT 1", (batch_id,)).fetchone()
        is None
    )


def _read_only(path: Path) -> sqlite3.Connection | None:
    uri = path.resolve().as_uri()
    if (conn := _readable(f"{uri}?mode=ro")) is not None:
        return conn
    # A read-only WAL reader needs a sound -shm file; a full disk may have left it cut short.
    # With nothing in the WAL the file alone is the whole story, read as it lies; with rows
    # there (a crash) it is not known, and the caller assumes the worst.
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return None
    return _readable(f"{uri}?mode=ro&immutable=1")


def _readable(uri: str) -> sqlite3.Connection | None:
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        conn.close()
        return None
    return conn


def peek(path: Path) -> tuple[Opened, int | None] | None:
    """What `JournalDb.prepare` would find, and the newest stamp, read without writing a byte
    (a full disk): None when the file is there but cannot be read."""
    if not path.exists():
        return Opened(opening=JournalOpening(previous_run_clean=True, interrupted_batches=()),
                      next_batch_id=1), None  # fmt: skip
    conn = _read_only(path)
    if conn is None:
        return None
    try:
        if not _has_table(conn, "meta") or not _has_table(conn, "batches"):
            # Made, never prepared: a first start that failed before it wrote anything.
            opening = JournalOpening(previous_run_clean=True, interrupted_batches=())
            return Opened(opening=opening, next_batch_id=1), None
        row = conn.execute("SELECT value FROM meta WHERE key = 'running'").fetchone()
        interrupted = tuple(
            int(r[0])
            for r in conn.execute("SELECT id FROM batches WHERE final_state IS NULL ORDER BY id")
        )
        unreset_row = conn.execute(
            "SELECT value FROM meta WHERE key = 'interrupted_unreset'"
        ).fetchone()
        unreset = tuple(sorted({*json.loads(unreset_row[0] if unreset_row else "[]"),
                                *interrupted}))  # fmt: skip
        safety = conn.execute("SELECT value FROM meta WHERE key = 'safety'").fetchone()
        last = conn.execute("SELECT max(id) FROM batches").fetchone()[0]
        latest = _latest_ts(conn) if _has_table(conn, "trend") else None
    except (sqlite3.Error, ValueError):
        return None
    finally:
        conn.close()
    opening = JournalOpening(
        previous_run_clean=row is None or row[0] != "1",
        interrupted_batches=interrupted,
        unreset_interrupted=unreset,
        safety=None if safety is None else str(safety[0]),
    )
    return Opened(opening=opening, next_batch_id=int(last or 0) + 1), latest


class JournalDb:
    """The SQLite side of the journal; every method but `__init__` runs on the journal thread."""

    def __init__(self, *, path: Path) -> None:
        self.worker = SqliteWorker(
            path=path,
            name="journal",
            error=JournalError,
            schema_version=SCHEMA_VERSION,
            also_reads=ALSO_READS,
        )
        self.path = path

    def prepare(self, conn: sqlite3.Connection, *, now_ms: int) -> Opened:
        """Create what is missing, mark unfinished batches interrupted and this run running."""
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        with transaction(conn):
            _migrate(conn)
            create_schema(conn, _SCHEMA, version=SCHEMA_VERSION)
            row = conn.execute("SELECT value FROM meta WHERE key = 'running'").fetchone()
            clean = row is None or row[0] != "1"
            interrupted = tuple(
                int(r[0])
                for r in conn.execute(
                    "SELECT id FROM batches WHERE final_state IS NULL ORDER BY id"
                )
            )
            # Found by this start, on the unit's clock: a sped-up run's clock goes on from past
            # its last stamp (as EpochClock does), a real unit's is the wall clock.
            latest = _latest_ts(conn)
            detected_ms = now_ms if latest is None else max(now_ms, latest + 1000)
            for batch_id in interrupted:
                _close_interrupted(conn, batch_id, detected_ms=detected_ms)
            row = conn.execute(
                "SELECT value FROM meta WHERE key = 'interrupted_unreset'"
            ).fetchone()
            unreset = tuple(sorted({*json.loads(row[0] if row else "[]"), *interrupted}))
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('interrupted_unreset', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (json.dumps(unreset),),
            )
            # Set before the caller gets control: a crash from here on is an unclean run.
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('running', '1')"
                " ON CONFLICT (key) DO UPDATE SET value = '1'"
            )
            last = conn.execute("SELECT max(id) FROM batches").fetchone()[0]
            safety = conn.execute("SELECT value FROM meta WHERE key = 'safety'").fetchone()
        return Opened(
            opening=JournalOpening(
                previous_run_clean=clean,
                interrupted_batches=interrupted,
                unreset_interrupted=unreset,
                safety=None if safety is None else str(safety[0]),
            ),
            next_batch_id=int(last or 0) + 1,
        )

    def write(self, ops: Sequence[Op]) -> int:
        """Commit `ops` in one transaction; returns how many rows were rejected as unusable."""
        if not ops:
            return 0
        conn = self.worker.conn
        try:
            try:
                with transaction(conn):
                    for sql, group in groupby(ops, key=itemgetter(0)):
                        conn.executemany(sql, [params for _, params in group])
                return 0
            except _ROW_ERRORS:
                return self._write_each(conn, ops)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(self.path, f"commit failed, will retry: {exc}") from exc

    def _write_each(self, conn: sqlite3.Connection, ops: Sequence[Op]) -> int:
        # A row the database refuses must not hold back every row behind it forever.
        rejected = 0
        with transaction(conn):
            for sql, params in ops:
                try:
                    conn.execute(sql, params)
                except _ROW_ERRORS as exc:
                    rejected += 1
                    log.error("journal.row_rejected", statement=sql.split("(")[0], error=str(exc))
        return rejected

    def latest_ts(self) -> int | None:
        return _latest_ts(self.worker.conn)

    def recent(self, n: int) -> list[dict[str, Any]]:
        """The last `n` entries, oldest first: a command once (its row, with the controller's
        own account of it as `detail`), every other event as it was journaled."""
        conn = self.worker.conn
        events = [
            (row_id, ts, kind, text, _load(data))
            for row_id, ts, kind, text, data in conn.execute(
                "SELECT id, ts_ms, kind, text, data FROM events ORDER BY ts_ms DESC, id DESC"
                " LIMIT ?",
                (2 * n,),
            )
        ]
        commands = [
            {
                "ref": f"c{row_id}",
                "ts": ts,
                "kind": "command",
                "text": f"{command} by {source} "
                + ("ok" if ok else f"refused: {error or 'no reason given'}"),
                "source": source,
                "command": command,
                "args": _load(args),
                "ok": bool(ok),
                "error": error,
                "result": _load(result),
            }
            for row_id, ts, source, command, args, ok, error, result in conn.execute(
                "SELECT id, ts_ms, source, command, args, ok, error, result FROM commands"
                " ORDER BY ts_ms DESC, id DESC LIMIT ?",
                (n,),
            )
        ]
        # The controller also reports each command it carried out as an event; one entry a
        # command: the event becomes the command row's `detail`.
        # An event of the same command first (two sessions' start and hold a moment apart
        # must not swap accounts), then one whose name differs from the op's (jog_pump: jog).
        told: set[int] = set()
        for same_name in (True, False):
            # Oldest first, and only commands carried out: a refused one has no account, and a
            # refused repeat must not take the account of the one before it.
            for entry in reversed(commands):
                if "detail" in entry or not entry["ok"]:
                    continue
                for row_id, ts, kind, text, data in reversed(events):
                    if (
                        kind == "command"
                        and row_id not in told
                        and isinstance(data, dict)
                        and data.get("source") == entry["source"]
                        and (data.get("command") == entry["command"] or not same_name)
                        and entry["ts"] - SAME_COMMAND_MS <= ts <= entry["ts"]
                    ):
                        told.add(row_id)
                        entry["detail"] = text
                        break
        keyed = [((entry["ts"], 1, int(entry["ref"][1:])), entry) for entry in commands]
        keyed += [
            (
                (ts, 0, row_id),
                {"ref": f"e{row_id}", "ts": ts, "kind": kind, "text": text, "data": data},
            )
            for row_id, ts, kind, text, data in events
            if row_id not in told
        ]
        # At one timestamp the events come first: a command's result follows what it caused.
        merged = sorted(keyed, key=itemgetter(0))
        return [entry for _, entry in merged[-n:]]

    def batch(self, batch_id: int | None) -> dict[str, Any] | None:
        return read_batch(self.worker.conn, batch_id)

    def batches(self, n: int) -> list[dict[str, Any]]:
        return read_batches(self.worker.conn, n)

    def trend(self, batch_id: int) -> list[tuple[Any, ...]]:
        """The batch's trend rows as stored (scaled integers; see TREND_SCALE), oldest first."""
        return read_trend(self.worker.conn, batch_id)

    def last_calibration(
        self, *, kind: str, device: str | None, actions: Sequence[str] | None
    ) -> int | None:
        sql = "SELECT max(ts_ms) FROM calibrations WHERE kind = ?"
        params: list[object] = [kind]
        if device is not None:
            sql += " AND device = ?"
            params.append(device)
        if actions is not None:
            sql += f" AND action IN ({', '.join('?' * len(actions))})"
            params.extend(actions)
        value = self.worker.conn.execute(sql, params).fetchone()[0]
        return None if value is None else int(value)

    def prune(self, *, events_before_ms: int, batches_before_ms: int, limit: int) -> dict[str, int]:
        """Delete up to `limit` rows a table older than its window; the counts deleted.

        Never a batch still open or interrupted and not yet reset, nor the newest calibration
        of each probe and action (the calibration-due check reads it, however old). Bounded, so
        the journal's writes wait behind one short transaction, not one long one.
        """
        conn = self.worker.conn
        try:
            with transaction(conn):
                row = conn.execute(
                    "SELECT value FROM meta WHERE key = 'interrupted_unreset'"
                ).fetchone()
                unreset = [int(i) for i in json.loads(row[0] if row else "[]")]
                keep = f"({', '.join('?' * len(unreset))})"
                selects = {
                    "events": ("SELECT id FROM events WHERE ts_ms < ?", (events_before_ms,)),
                    "commands": ("SELECT id FROM commands WHERE ts_ms < ?", (events_before_ms,)),
                    "batches": (
                        "SELECT id FROM batches WHERE final_state IS NOT NULL"
                        f" AND coalesce(end_ts, start_ts) < ? AND id NOT IN {keep}",
                        (batches_before_ms, *unreset),
                    ),
                    "calibrations": (
                        "SELECT id FROM calibrations WHERE ts_ms < ? AND id NOT IN"
                        " (SELECT max(id) FROM calibrations GROUP BY device, kind, action)",
                        (batches_before_ms,),
                    ),
                }
                counts = {
                    table: conn.execute(
                        f"DELETE FROM {table} WHERE id IN ({select} LIMIT ?)", (*params, limit)
                    ).rowcount
                    for table, (select, params) in selects.items()
                }
                # A batch's curves go with its record.
                counts["trend"] = conn.execute(_DELETE_ORPHAN_TREND, (limit,)).rowcount
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(self.path, f"prune failed: {exc}") from exc
        return counts

    def mark_clean(self, conn: sqlite3.Connection) -> None:
        """Mark this run ended cleanly, so the next start finds no crash (run by `worker.close`)."""
        try:
            conn.execute("UPDATE meta SET value = '0' WHERE key = 'running'")
        except sqlite3.Error as exc:
            raise JournalError(self.path, f"cannot mark the run clean: {exc}") from exc
