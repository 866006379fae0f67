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

import structlog

from unit_controller.sqlite_worker import SqliteWorker, StoreError, create_schema, transaction

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " kind TEXT NOT NULL, text TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ms)",
    "CREATE TABLE IF NOT EXISTS commands (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " source TEXT NOT NULL, command TEXT NOT NULL, args TEXT NOT NULL, ok INTEGER NOT NULL,"
    " error TEXT, result TEXT)",
    "CREATE INDEX IF NOT EXISTS commands_ts ON commands (ts_ms)",
    "CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, recipe TEXT NOT NULL,"
    " recipe_sha256 TEXT NOT NULL, start_ts INTEGER NOT NULL, end_ts INTEGER,"
    " final_state TEXT, record TEXT)",
    "CREATE TABLE IF NOT EXISTS calibrations (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " device TEXT NOT NULL, kind TEXT NOT NULL, action TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS calibrations_kind ON calibrations (kind, device, ts_ms)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
INSERT_EVENT = "INSERT INTO events (ts_ms, kind, text, data) VALUES (?, ?, ?, ?)"
INSERT_COMMAND = (
    "INSERT INTO commands (ts_ms, source, command, args, ok, error, result)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# A batch's rows are idempotent, so a commit retried after a failure can never duplicate or
# undo one: the start is ignored once the row exists, the finish carries the whole row; and
# a batch already marked interrupted stays so.
START_BATCH = (
    "INSERT OR IGNORE INTO batches (id, recipe, recipe_sha256, start_ts) VALUES (?, ?, ?, ?)"
)
FINISH_BATCH = (
    "INSERT INTO batches (id, recipe, recipe_sha256, start_ts, end_ts, final_state, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET end_ts = excluded.end_ts,"
    " final_state = excluded.final_state, record = excluded.record"
    " WHERE batches.final_state IS NULL"
)
PROGRESS_BATCH = "UPDATE batches SET record = ? WHERE id = ? AND final_state IS NULL"
RESET_INTERRUPTED = "UPDATE meta SET value = '[]' WHERE key = 'interrupted_unreset'"
INSERT_CALIBRATION = (
    "INSERT INTO calibrations (ts_ms, device, kind, action, data) VALUES (?, ?, ?, ?, ?)"
)
INTERRUPTED = "interrupted"
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


@dataclass(frozen=True, slots=True)
class Opened:
    """What opening found: the previous run, and the id the next batch gets."""

    opening: JournalOpening
    next_batch_id: int


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class JournalDb:
    """The SQLite side of the journal; every method but `__init__` runs on the journal thread."""

    def __init__(self, *, path: Path) -> None:
        self.worker = SqliteWorker(
            path=path, name="journal", error=JournalError, schema_version=SCHEMA_VERSION
        )
        self.path = path

    def prepare(self, conn: sqlite3.Connection, *, now_ms: int) -> Opened:
        """Create what is missing, mark unfinished batches interrupted and this run running."""
        with transaction(conn):
            create_schema(conn, _SCHEMA, version=SCHEMA_VERSION)
            row = conn.execute("SELECT value FROM meta WHERE key = 'running'").fetchone()
            clean = row is None or row[0] != "1"
            interrupted = tuple(
                int(r[0])
                for r in conn.execute(
                    "SELECT id FROM batches WHERE final_state IS NULL ORDER BY id"
                )
            )
            conn.execute(
                "UPDATE batches SET final_state = ?, end_ts = ? WHERE final_state IS NULL",
                (INTERRUPTED, now_ms),
            )
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
        return Opened(
            opening=JournalOpening(
                previous_run_clean=clean,
                interrupted_batches=interrupted,
                unreset_interrupted=unreset,
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
        conn = self.worker.conn
        row = conn.execute(
            "SELECT max(ts) FROM (SELECT max(ts_ms) AS ts FROM events"
            " UNION ALL SELECT max(ts_ms) FROM commands)"
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def recent(self, n: int) -> list[dict[str, Any]]:
        conn = self.worker.conn
        events = [
            ((ts, 0, row_id), {"ts": ts, "kind": kind, "text": text, "data": _load(data)})
            for row_id, ts, kind, text, data in conn.execute(
                "SELECT id, ts_ms, kind, text, data FROM events ORDER BY ts_ms DESC, id DESC"
                " LIMIT ?",
                (n,),
            )
        ]
        commands = [
            (
                (ts, 1, row_id),
                {
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
                },
            )
            for row_id, ts, source, command, args, ok, error, result in conn.execute(
                "SELECT id, ts_ms, source, command, args, ok, error, result FROM commands"
                " ORDER BY ts_ms DESC, id DESC LIMIT ?",
                (n,),
            )
        ]
        # At one timestamp the events come first: a command's result follows what it caused.
        merged = sorted(events + commands, key=itemgetter(0))
        return [entry for _, entry in merged[-n:]]

    def batch(self, batch_id: int | None) -> dict[str, Any] | None:
        columns = "id, recipe, recipe_sha256, start_ts, end_ts, final_state, record"
        if batch_id is None:
            row = self.worker.conn.execute(
                f"SELECT {columns} FROM batches ORDER BY id DESC LIMIT 1"
            ).fetchone()
        else:
            row = self.worker.conn.execute(
                f"SELECT {columns} FROM batches WHERE id = ?", (batch_id,)
            ).fetchone()
        if row is None:
            return None
        entry = self._batch_row(row[:6])
        entry["record"] = _load(row[6]) or {}
        return entry

    def batches(self, n: int) -> list[dict[str, Any]]:
        rows = self.worker.conn.execute(
            "SELECT id, recipe, recipe_sha256, start_ts, end_ts, final_state FROM batches"
            " ORDER BY id DESC LIMIT ?",
            (n,),
        )
        return [self._batch_row(row) for row in rows]

    @staticmethod
    def _batch_row(row: Sequence[Any]) -> dict[str, Any]:
        keys = ("id", "recipe", "recipe_sha256", "start_ts", "end_ts", "final_state")
        return dict(zip(keys, row, strict=True))

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
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(self.path, f"prune failed: {exc}") from exc
        return counts

    def mark_clean(self, conn: sqlite3.Connection) -> None:
        """Mark this run ended cleanly, so the next start finds no crash (run by `worker.close`)."""
        try:
            conn.execute("UPDATE meta SET value = '0' WHERE key = 'running'")
        except sqlite3.Error as exc:
            raise JournalError(self.path, f"cannot mark the run clean: {exc}") from exc
