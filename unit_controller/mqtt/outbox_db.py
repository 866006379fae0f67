"""The outbox's SQLite side: schema, SQL, caps and the stored totals, run on its worker thread.

Never called from the event loop's thread (only through the worker), never deletes a row the
broker has not acked unless a cap (bytes or age) drops it, counted, and never scans the rows to
open: the totals live in `meta`, changed in the same transaction as the rows they count.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from unit_controller.sqlite_worker import SqliteWorker, StoreError, create_schema, transaction

# 2: `meta` holds the pending totals (pending_rows, pending_bytes); a file of version 1 gets
# them counted once, at its first open by this release.
SCHEMA_VERSION = 2
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL, created_ms INTEGER NOT NULL, size INTEGER NOT NULL,"
    " payload BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)",
    "CREATE TABLE IF NOT EXISTS seen_commands (id TEXT PRIMARY KEY, exp_ms INTEGER)",
)
_COUNTERS = ("boot", "session", "dropped_total")
_TOTALS = ("pending_rows", "pending_bytes")
# Command ids kept, newest first: commands are rare (a few a day), so this covers years.
MAX_SEEN_COMMANDS = 100_000
# SQLite's page cache for the outbox, in KiB.
CACHE_KIB = 256
# Between kinds in a page read as one row (char(31), the ASCII unit separator): never in a kind.
KIND_SEPARATOR = "\x1f"
# Sizes of rows recently handed out (committed or read), so an ack stops counting at once.
MEMO_ROWS = 2048


def id_runs(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted runs of consecutive ids as (first, last): [1, 2, 3, 7, 9, 8] -> [(1, 3), (7, 9)]."""
    runs: list[tuple[int, int]] = []
    low = high = None
    for row_id in sorted(set(ids)):
        if high is not None and row_id == high + 1:
            high = row_id
            continue
        if low is not None and high is not None:
            runs.append((low, high))
        low = high = row_id
    if low is not None and high is not None:
        runs.append((low, high))
    return runs


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


class SizeMemo:
    """Payload sizes of the rows last handed out, by id; at most MEMO_ROWS, oldest forgotten.

    Lets ack() take a row out of pending_count/pending_bytes at once; a row it has forgotten
    stops counting when its delete commits instead. Never holds an entry per stored row.
    """

    def __init__(self, limit: int = MEMO_ROWS) -> None:
        self._limit = limit
        self._sizes: OrderedDict[int, int] = OrderedDict()

    def add(self, rows: Iterable[tuple[int, int]]) -> None:
        """Remember (id, size) pairs, forgetting the oldest beyond the limit."""
        sizes = self._sizes
        sizes.update(rows)
        while len(sizes) > self._limit:
            sizes.popitem(last=False)

    def pop(self, row_id: int) -> int | None:
        """Forget one row; its size if it was remembered."""
        return self._sizes.pop(row_id, None)

    def forget_through(self, last_id: int) -> None:
        """Forget every row up to `last_id` (a cap dropped them)."""
        for row_id in [i for i in self._sizes if i <= last_id]:
            del self._sizes[row_id]

    def __len__(self) -> int:
        return len(self._sizes)


@dataclass(frozen=True, slots=True)
class Page:
    """Stored rows as one SQL row hands them over: each column joined, the payloads end to end.

    Split into rows by `rows` on the event loop's thread, so the outbox's thread holds the GIL
    only for a moment (a thread that holds it while the OS makes it wait stalls the loop).
    """

    ids: str  # "1,2,3"
    kinds: str  # joined by KIND_SEPARATOR
    created_ms: str  # "1700000000000,..."
    sizes: str  # "400,397,..."
    payloads: bytes

    def rows(self, *, skip: frozenset[int] = frozenset()) -> list[OutboxRow]:
        """The rows, oldest first, but those in `skip`."""
        ids = list(map(int, self.ids.split(",")))
        kinds = self.kinds.split(KIND_SEPARATOR)
        created = list(map(int, self.created_ms.split(",")))
        ends = list(accumulate(map(int, self.sizes.split(","))))
        payloads = self.payloads
        blobs = [payloads[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        if not len(ids) == len(kinds) == len(created) == len(blobs):
            raise ValueError(f"a page of {len(ids)} ids but {len(kinds)} kinds")
        # map: the loop runs in C; positional: a frozen dataclass takes keywords at twice the cost.
        found = list(map(OutboxRow, ids, kinds, created, blobs))
        if ids != sorted(ids):
            found.sort(key=lambda row: row.id)  # never seen; SQL does not promise the order
        if skip:
            found = [row for row in found if row.id not in skip]
        return found


@dataclass(frozen=True, slots=True)
class Opened:
    """What opening found: this boot's number and the stored backlog's totals."""

    boot: int
    rows: int
    nbytes: int
    dropped_total: int
    session: int  # the last broker session counted (0: none yet)
    last_id: int  # the highest row id ever given


@dataclass(frozen=True, slots=True)
class Drop:
    """Rows a cap dropped in one commit: every stored row up to `through_id`."""

    reason: str
    count: int
    through_id: int


@dataclass(frozen=True, slots=True)
class Flushed:
    """What one commit did, and the stored totals after it."""

    rows: list[OutboxRow]  # inserted and still stored
    drops: list[Drop]
    dropped_total: int
    stored_rows: int
    stored_bytes: int


class OutboxDb:
    """The SQLite side of the outbox; every method but `__init__` runs on the outbox thread."""

    def __init__(
        self,
        *,
        path: Path,
        max_bytes: int,
        max_age_ms: int,
        thread: ThreadPoolExecutor | None = None,
    ) -> None:
        self.worker = SqliteWorker(
            path=path,
            name="outbox",
            error=OutboxError,
            schema_version=SCHEMA_VERSION,
            thread=thread,
        )
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_ms = max_age_ms
        # Mirrors of the stored totals and the drop counter (the caps need no SUM over the rows).
        self._rows = 0
        self._bytes = 0
        self._dropped_total = 0

    def prepare(
        self, conn: sqlite3.Connection, *, floors: Mapping[str, int] | None = None
    ) -> Opened:
        """Create what is missing and count this boot (via `worker.open`); reads `meta` only.

        `floors`: what the counters (boot, session, dropped_total) and the last row id are at
        least, for a new file that replaces an unreadable one: it goes on from the old one.
        """
        # Rows are read once, oldest first, and deleted from the front: a small page cache
        # serves that as well as SQLite's default 2 MB, which a drain would fill and keep.
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        with transaction(conn):
            create_schema(conn, _SCHEMA, version=SCHEMA_VERSION)
            conn.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0)", [(k,) for k in _COUNTERS]
            )
            floors = floors or {}
            conn.executemany(
                "UPDATE meta SET value = max(value, ?) WHERE key = ?",
                [(floors[key], key) for key in _COUNTERS if key in floors],
            )
            if floors.get("last_id", 0) > _last_id(conn):
                # Ids go on from the old file's: the link sends live rows by id order.
                conn.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox'")
                conn.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)",
                    (floors["last_id"],),
                )
            boot = self._bump(conn, "boot", 1)
            self._dropped_total = self._bump(conn, "dropped_total", 0)
            session = self._bump(conn, "session", 0)
            self._rows, self._bytes = self._stored_totals(conn)
            last_id = _last_id(conn)
        return Opened(
            boot=boot,
            rows=self._rows,
            nbytes=self._bytes,
            dropped_total=self._dropped_total,
            session=session,
            last_id=last_id,
        )

    @staticmethod
    def _stored_totals(conn: sqlite3.Connection) -> tuple[int, int]:
        """The pending totals from `meta`; counted (once) for a file that has none yet."""
        kept = dict(
            conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?)", _TOTALS).fetchall()
        )
        if len(kept) == len(_TOTALS):
            return int(kept["pending_rows"]), int(kept["pending_bytes"])
        # A new file, or one an earlier release wrote: the only scan of the rows, ever.
        rows, nbytes = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM outbox"
        ).fetchone()
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("pending_rows", rows), ("pending_bytes", nbytes)],
        )
        return int(rows), int(nbytes)

    @staticmethod
    def _save_totals(conn: sqlite3.Connection, rows: int, nbytes: int) -> None:
        conn.execute(
            "UPDATE meta SET value = CASE key WHEN 'pending_rows' THEN ? ELSE ? END"
            " WHERE key IN ('pending_rows', 'pending_bytes')",
            (rows, nbytes),
        )

    @staticmethod
    def _bump(conn: sqlite3.Connection, key: str, by: int) -> int:
        rows = conn.execute(
            "UPDATE meta SET value = value + ? WHERE key = ? RETURNING value", (by, key)
        ).fetchall()
        return int(rows[0][0])

    def flush(
        self,
        *,
        batch: list[Buffered],
        acks: list[int],
        extra_dropped: int,
        now_ms: int,
        shifts: Sequence[tuple[int, int, int]] = (),
        expire: bool = True,
    ) -> Flushed:
        """Insert `batch`, delete the acked ids, apply the caps; each of `shifts` (step_ms,
        after_id, through_id) first moves the stamps of those rows by a step of the wall
        clock; `expire` False leaves the age cap for the next commit."""
        try:
            return self._flush(
                batch=batch,
                acks=acks,
                extra_dropped=extra_dropped,
                now_ms=now_ms,
                shifts=shifts,
                expire=expire,
            )
        except sqlite3.Error as exc:
            raise OutboxError(self.path, f"commit failed, will retry: {exc}") from exc

    def _flush(
        self,
        *,
        batch: list[Buffered],
        acks: list[int],
        extra_dropped: int,
        now_ms: int,
        shifts: Sequence[tuple[int, int, int]],
        expire: bool,
    ) -> Flushed:
        conn = self.worker.conn
        count, nbytes = self._rows, self._bytes
        first_id = 0
        drops: list[Drop] = []
        dropped_total = self._dropped_total
        with transaction(conn):
            for step_ms, after_id, through_id in shifts:
                conn.execute(
                    "UPDATE outbox SET created_ms = created_ms + ? WHERE id > ? AND id <= ?",
                    (step_ms, after_id, through_id),
                )
            if batch:
                conn.executemany(
                    "INSERT INTO outbox (kind, created_ms, size, payload) VALUES (?, ?, ?, ?)",
                    [(kind, created, len(payload), payload) for kind, created, payload in batch],
                )
                # One writer inside one transaction: AUTOINCREMENT ids are consecutive.
                first_id = conn.execute("SELECT last_insert_rowid()").fetchone()[0] - len(batch) + 1
                count += len(batch)
                nbytes += sum(len(payload) for _, _, payload in batch)
            for low, high in id_runs(acks):
                # Only ids all acked: a run never spans a row the broker has not acked. An id
                # already dropped or acked deletes nothing and counts nothing.
                # Counted first, then deleted: two steps a run (RETURNING would take one a row).
                gone, freed = conn.execute(
                    "SELECT count(*), coalesce(sum(size), 0) FROM outbox WHERE id BETWEEN ? AND ?",
                    (low, high),
                ).fetchone()
                if gone:
                    conn.execute("DELETE FROM outbox WHERE id BETWEEN ? AND ?", (low, high))
                    count -= gone
                    nbytes -= freed
            expired_through = (
                self._expired_through(conn, now_ms - self.max_age_ms) if expire else None
            )
            if expired_through:
                drop, freed = self._drop_through(conn, expired_through, "age")
                if drop is not None:
                    drops.append(drop)
                    count -= drop.count
                    nbytes -= freed
            if nbytes > self.max_bytes:
                drop, freed = self._drop_through(
                    conn, self._bytes_through(conn, nbytes - self.max_bytes), "bytes"
                )
                if drop is not None:
                    drops.append(drop)
                    count -= drop.count
                    nbytes -= freed
            added = extra_dropped + sum(drop.count for drop in drops)
            if added:
                dropped_total = self._bump(conn, "dropped_total", added)
            if (count, nbytes) != (self._rows, self._bytes):
                self._save_totals(conn, count, nbytes)
        self._rows, self._bytes = count, nbytes
        self._dropped_total = dropped_total
        kept_after = max((drop.through_id for drop in drops), default=0)
        rows = [
            OutboxRow(id=first_id + i, kind=kind, created_ms=created, payload=payload)
            for i, (kind, created, payload) in enumerate(batch)
            if first_id + i > kept_after
        ]
        return Flushed(
            rows=rows,
            drops=drops,
            dropped_total=dropped_total,
            stored_rows=count,
            stored_bytes=nbytes,
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
        # A running sum in SQL: one step, where a loop over the rows would take the GIL back
        # at each of them (a cap can cut hundreds of thousands).
        row = conn.execute(
            "SELECT id FROM (SELECT id, sum(size) OVER (ORDER BY id) AS freed FROM outbox)"
            " WHERE freed >= ? LIMIT 1",
            (excess,),
        ).fetchone()
        return 0 if row is None else int(row[0])  # 0: not reached, the rows hold more

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
        return _last_id(self.worker.conn)

    def read(self, *, after_id: int, up_to_id: int, limit: int) -> Page | None:
        """Rows after_id < id <= up_to_id, oldest first, at most `limit`, as one `Page`."""
        # The page comes back as one row (one sqlite3_step): the sqlite3 module gives the GIL
        # up and takes it back at every step, and with the event loop busy publishing, a step
        # per row cost more in thread hand-offs than the read itself. Every column is
        # aggregated in the same pass, so they line up row by row.
        found = self.worker.conn.execute(
            "SELECT group_concat(id), group_concat(kind, char(31)), group_concat(created_ms),"
            " group_concat(size), CAST(group_concat(payload, '') AS BLOB)"
            " FROM (SELECT id, kind, created_ms, size, payload FROM outbox"
            " WHERE id > ? AND id <= ? ORDER BY id LIMIT ?)",
            (after_id, up_to_id, limit),
        ).fetchone()
        return None if found[0] is None else Page(*found)

    def next_session(self, *, at_least: int = 0) -> int:
        """One more session, and at least `at_least` (sessions counted while the disk refused)."""
        conn = self.worker.conn
        with transaction(conn):
            rows = conn.execute(
                "UPDATE meta SET value = max(value + 1, ?) WHERE key = 'session' RETURNING value",
                (at_least,),
            ).fetchall()
            return int(rows[0][0])

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


def _last_id(conn: sqlite3.Connection) -> int:
    """The highest row id ever given (0 if none): AUTOINCREMENT never gives one again."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    return int(row[0]) if row is not None else 0
