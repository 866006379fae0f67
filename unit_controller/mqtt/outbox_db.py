"""The outbox's SQLite side: schema, SQL, caps and the live-size index, run on its worker thread.

Never called from the event loop's thread (only through the worker), and never deletes a row
the broker has not acked unless a cap (bytes or age) drops it, counted.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from unit_controller.sqlite_worker import SqliteWorker, StoreError, create_schema, transaction

SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL, created_ms INTEGER NOT NULL, size INTEGER NOT NULL,"
    " payload BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)",
    "CREATE TABLE IF NOT EXISTS seen_commands (id TEXT PRIMARY KEY, exp_ms INTEGER)",
)
_COUNTERS = ("boot", "session", "dropped_total")
# Ids per `DELETE ... IN (...)`: far below SQLite's limit of bound variables.
_CHUNK = 500
# Command ids kept, newest first: commands are rare (a few a day), so this covers years.
MAX_SEEN_COMMANDS = 100_000
_GONE = -1  # size-index mark of a row deleted, dropped or acked


class OutboxError(StoreError):
    """The outbox database cannot be used; names the file and the reason."""

    store = "outbox"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored message."""

    id: int
    kind: str
    created_ms: int
    payload: bytes


Buffered = tuple[str, int, bytes]  # kind, created_ms, payload: a row put but not committed


class LiveSizes:
    """Payload size of every stored row not yet acked, by id: 4 bytes a row, never payloads.

    It lets ack() take a row out of pending_count/pending_bytes at once, before the delete commits.
    """

    def __init__(self) -> None:
        self._base = 0  # id of _sizes[0]
        self._head = 0  # first slot that may still be live
        self._sizes = array("i")

    def add(self, first_id: int, sizes: Iterable[int]) -> None:
        """Index rows with consecutive ids from `first_id` (ids only grow)."""
        if not self._sizes:
            self._base, self._head = first_id, 0
        else:
            gap = first_id - (self._base + len(self._sizes))
            self._sizes.extend(repeat(_GONE, max(0, gap)))
        self._sizes.extend(sizes)

    def pop(self, row_id: int) -> int | None:
        """Mark one row gone; its size if it was live."""
        i = row_id - self._base
        if not self._head <= i < len(self._sizes) or self._sizes[i] == _GONE:
            return None
        size = self._sizes[i]
        self._sizes[i] = _GONE
        self._advance()
        return size

    def pop_through(self, last_id: int) -> tuple[int, int]:
        """Mark every row up to `last_id` gone; the count and bytes of those that were live."""
        count = nbytes = 0
        sizes = self._sizes
        for i in range(self._head, min(last_id - self._base + 1, len(sizes))):
            if sizes[i] != _GONE:
                count += 1
                nbytes += sizes[i]
                sizes[i] = _GONE
        self._advance()
        return count, nbytes

    def _advance(self) -> None:
        sizes, head = self._sizes, self._head
        while head < len(sizes) and sizes[head] == _GONE:
            head += 1
        # Cut the dead prefix only now and then: a memmove per ack would make acks O(n²).
        if head == len(sizes) or (head >= 4096 and 2 * head >= len(sizes)):
            del sizes[:head]
            self._base += head
            head = 0
        self._head = head


@dataclass(frozen=True, slots=True)
class Opened:
    """What opening found: this boot's number and the stored backlog."""

    boot: int
    rows: int
    nbytes: int
    dropped_total: int
    sizes: LiveSizes


@dataclass(frozen=True, slots=True)
class Drop:
    """Rows a cap dropped in one commit: every stored row up to `through_id`."""

    reason: str
    count: int
    through_id: int


@dataclass(frozen=True, slots=True)
class Flushed:
    """What one commit did."""

    first_id: int  # id of the first inserted row (0 if none)
    rows: list[OutboxRow]  # inserted and still stored
    deleted: list[int]  # acked ids actually deleted
    drops: list[Drop]
    dropped_total: int


class OutboxDb:
    """The SQLite side of the outbox; every method but `__init__` runs on the outbox thread."""

    def __init__(self, *, path: Path, max_bytes: int, max_age_ms: int) -> None:
        self.worker = SqliteWorker(
            path=path, name="outbox", error=OutboxError, schema_version=SCHEMA_VERSION
        )
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_ms = max_age_ms
        # Mirrors of the table and the drop counter, so the caps need no SUM over the backlog.
        self._bytes = 0
        self._dropped_total = 0

    def prepare(self, conn: sqlite3.Connection) -> Opened:
        """Create what is missing, count this boot and index the backlog (via `worker.open`)."""
        with transaction(conn):
            create_schema(conn, _SCHEMA, version=SCHEMA_VERSION)
            conn.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0)", [(k,) for k in _COUNTERS]
            )
            boot = self._bump(conn, "boot", 1)
            self._dropped_total = self._bump(conn, "dropped_total", 0)
        sizes = LiveSizes()
        rows = nbytes = 0
        for row_id, size in conn.execute("SELECT id, size FROM outbox ORDER BY id"):
            sizes.add(row_id, (size,))
            rows += 1
            nbytes += size
        self._bytes = nbytes
        return Opened(
            boot=boot, rows=rows, nbytes=nbytes, dropped_total=self._dropped_total, sizes=sizes
        )

    @staticmethod
    def _bump(conn: sqlite3.Connection, key: str, by: int) -> int:
        rows = conn.execute(
            "UPDATE meta SET value = value + ? WHERE key = ? RETURNING value", (by, key)
        ).fetchall()
        return int(rows[0][0])

    def flush(
        self, *, batch: list[Buffered], acks: list[int], extra_dropped: int, now_ms: int
    ) -> Flushed:
        try:
            return self._flush(batch=batch, acks=acks, extra_dropped=extra_dropped, now_ms=now_ms)
        except sqlite3.Error as exc:
            raise OutboxError(self.path, f"commit failed, will retry: {exc}") from exc

    def _flush(
        self, *, batch: list[Buffered], acks: list[int], extra_dropped: int, now_ms: int
    ) -> Flushed:
        conn = self.worker.conn
        nbytes = self._bytes
        first_id = 0
        deleted: list[int] = []
        drops: list[Drop] = []
        dropped_total = self._dropped_total
        with transaction(conn):
            if batch:
                conn.executemany(
                    "INSERT INTO outbox (kind, created_ms, size, payload) VALUES (?, ?, ?, ?)",
                    [(kind, created, len(payload), payload) for kind, created, payload in batch],
                )
                # One writer inside one transaction: AUTOINCREMENT ids are consecutive.
                first_id = conn.execute("SELECT last_insert_rowid()").fetchone()[0] - len(batch) + 1
                nbytes += sum(len(payload) for _, _, payload in batch)
            for start in range(0, len(acks), _CHUNK):
                chunk = acks[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                # RETURNING: an id already dropped or acked deletes nothing and counts nothing.
                for row_id, size in conn.execute(
                    f"DELETE FROM outbox WHERE id IN ({marks}) RETURNING id, size", chunk
                ).fetchall():
                    deleted.append(row_id)
                    nbytes -= size
            expired_through = self._expired_through(conn, now_ms - self.max_age_ms)
            if expired_through:
                drop, freed = self._drop_through(conn, expired_through, "age")
                if drop is not None:
                    drops.append(drop)
                    nbytes -= freed
            if nbytes > self.max_bytes:
                drop, freed = self._drop_through(
                    conn, self._bytes_through(conn, nbytes - self.max_bytes), "bytes"
                )
                if drop is not None:
                    drops.append(drop)
                    nbytes -= freed
            added = extra_dropped + sum(drop.count for drop in drops)
            if added:
                dropped_total = self._bump(conn, "dropped_total", added)
        self._bytes = nbytes
        self._dropped_total = dropped_total
        kept_after = max((drop.through_id for drop in drops), default=0)
        rows = [
            OutboxRow(id=first_id + i, kind=kind, created_ms=created, payload=payload)
            for i, (kind, created, payload) in enumerate(batch)
            if first_id + i > kept_after
        ]
        return Flushed(
            first_id=first_id, rows=rows, deleted=deleted, drops=drops, dropped_total=dropped_total
        )

    @staticmethod
    def _expired_through(conn: sqlite3.Connection, cutoff_ms: int) -> int:
        """The id up to which the oldest rows are all older than `cutoff_ms` (0 if none)."""
        # Walks the oldest rows by id and stops at the first one young enough.
        row = conn.execute(
            "SELECT id FROM outbox WHERE created_ms >= ? ORDER BY id LIMIT 1", (cutoff_ms,)
        ).fetchone()
        if row is not None:
            return int(row[0]) - 1
        newest = conn.execute("SELECT max(id) FROM outbox").fetchone()[0]
        return int(newest or 0)

    @staticmethod
    def _bytes_through(conn: sqlite3.Connection, excess: int) -> int:
        """The id up to which the oldest rows hold at least `excess` payload bytes."""
        freed = 0
        with closing(conn.execute("SELECT id, size FROM outbox ORDER BY id")) as cursor:
            for row_id, size in cursor:
                freed += size
                if freed >= excess:
                    return int(row_id)
        return 0  # not reached: the caller knows the rows hold more than `excess`

    @staticmethod
    def _drop_through(
        conn: sqlite3.Connection, through_id: int, reason: str
    ) -> tuple[Drop | None, int]:
        count, freed = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM outbox WHERE id <= ?", (through_id,)
        ).fetchone()
        if not count:
            return None, 0
        conn.execute("DELETE FROM outbox WHERE id <= ?", (through_id,))
        return Drop(reason=reason, count=int(count), through_id=through_id), int(freed)

    def max_id(self) -> int:
        row = self.worker.conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"
        ).fetchone()
        return int(row[0]) if row is not None else 0

    def read(
        self, *, after_id: int, up_to_id: int, limit: int, skip: frozenset[int]
    ) -> list[OutboxRow]:
        # Rows acked but not yet deleted are skipped; asking for len(skip) more keeps pages full.
        rows = self.worker.conn.execute(
            "SELECT id, kind, created_ms, payload FROM outbox WHERE id > ? AND id <= ?"
            " ORDER BY id LIMIT ?",
            (after_id, up_to_id, limit + len(skip)),
        ).fetchall()
        found = [OutboxRow(id=r[0], kind=r[1], created_ms=r[2], payload=r[3]) for r in rows]
        return [row for row in found if row.id not in skip][:limit]

    def next_session(self) -> int:
        conn = self.worker.conn
        with transaction(conn):
            return self._bump(conn, "session", 1)

    def remember_command(
        self, *, command_id: str, exp_ms: int, keep_from_rowid: int | None
    ) -> int | None:
        """The new id's rowid, or None if it was seen before. Ids beyond the newest
        MAX_SEEN_COMMANDS are forgotten, except those from `keep_from_rowid` on (None: all)."""
        conn = self.worker.conn
        with transaction(conn):
            cursor = conn.execute(
                "INSERT OR IGNORE INTO seen_commands (id, exp_ms) VALUES (?, ?)",
                (command_id, exp_ms),
            )
            if cursor.rowcount != 1:
                return None
            rowid = cursor.lastrowid
            (count,) = conn.execute("SELECT COUNT(*) FROM seen_commands").fetchone()
            if count > MAX_SEEN_COMMANDS and keep_from_rowid is not None:
                # Never by the wall clock: a clock stepped forward would forget live ids.
                conn.execute(
                    "DELETE FROM seen_commands WHERE rowid IN (SELECT rowid FROM seen_commands"
                    " WHERE rowid < ? ORDER BY rowid LIMIT ?)",
                    (keep_from_rowid, count - MAX_SEEN_COMMANDS),
                )
            return rowid
