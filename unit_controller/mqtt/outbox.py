"""MQTT store-and-forward outbox: each message waits in SQLite until the broker's PUBACK.

Never blocks the event loop (all SQLite work is on one worker thread) and never loses a commit
to kill -9 (WAL + synchronous=NORMAL; only a power cut can take back the last few commits).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import structlog

from unit_controller.errors import UnitControllerError

log = structlog.get_logger(__name__)

T = TypeVar("T")

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
# A command id is kept this long past its expiry, so a wall clock stepped back a little (NTP)
# cannot make a replay look new; the gate refuses it as expired anyway once truly past.
_SEEN_GRACE_MS = 60_000
_GONE = -1  # size-index mark of a row deleted, dropped or acked


class OutboxError(UnitControllerError):
    """The outbox database cannot be used; names the file and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"outbox {path}: {reason}")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored message."""

    id: int
    kind: str
    created_ms: int
    payload: bytes


_Buffered = tuple[str, int, bytes]  # kind, created_ms, payload: a row put but not committed


class _LiveSizes:
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
class _Opened:
    boot: int
    rows: int
    nbytes: int
    dropped_total: int
    journal_mode: str
    sizes: _LiveSizes


@dataclass(frozen=True, slots=True)
class _Drop:
    reason: str
    count: int
    through_id: int


@dataclass(frozen=True, slots=True)
class _Flushed:
    first_id: int  # id of the first inserted row (0 if none)
    rows: list[OutboxRow]  # inserted and still stored
    deleted: list[int]  # acked ids actually deleted
    drops: list[_Drop]
    dropped_total: int


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


class _Store:
    """The SQLite side of the outbox; every method runs on the outbox thread."""

    def __init__(self, *, path: Path, max_bytes: int, max_age_ms: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_ms = max_age_ms
        self._conn: sqlite3.Connection | None = None
        # Mirrors of the table and the drop counter, so the caps need no SUM over the backlog.
        self._bytes = 0
        self._dropped_total = 0

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutboxError(self.path, "not open")
        return self._conn

    def open(self) -> _Opened:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(self.path, f"cannot create or open the database: {exc}") from exc
        try:
            opened = self._prepare(conn)
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            raise OutboxError(self.path, f"cannot use the database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return opened

    def _prepare(self, conn: sqlite3.Connection) -> _Opened:
        journal_mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        conn.execute("PRAGMA synchronous=NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutboxError(
                self.path,
                f"schema version {version} was written by a later release (this one reads "
                f"{SCHEMA_VERSION})",
            )
        with _transaction(conn):
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0)", [(k,) for k in _COUNTERS]
            )
            boot = self._bump(conn, "boot", 1)
            self._dropped_total = self._bump(conn, "dropped_total", 0)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        sizes = _LiveSizes()
        rows = nbytes = 0
        for row_id, size in conn.execute("SELECT id, size FROM outbox ORDER BY id"):
            sizes.add(row_id, (size,))
            rows += 1
            nbytes += size
        self._bytes = nbytes
        return _Opened(
            boot=boot,
            rows=rows,
            nbytes=nbytes,
            dropped_total=self._dropped_total,
            journal_mode=journal_mode,
            sizes=sizes,
        )

    @staticmethod
    def _bump(conn: sqlite3.Connection, key: str, by: int) -> int:
        rows = conn.execute(
            "UPDATE meta SET value = value + ? WHERE key = ? RETURNING value", (by, key)
        ).fetchall()
        return int(rows[0][0])

    def flush(
        self, *, batch: list[_Buffered], acks: list[int], extra_dropped: int, now_ms: int
    ) -> _Flushed:
        try:
            return self._flush(batch=batch, acks=acks, extra_dropped=extra_dropped, now_ms=now_ms)
        except sqlite3.Error as exc:
            raise OutboxError(self.path, f"commit failed, will retry: {exc}") from exc

    def _flush(
        self, *, batch: list[_Buffered], acks: list[int], extra_dropped: int, now_ms: int
    ) -> _Flushed:
        conn = self.conn
        nbytes = self._bytes
        first_id = 0
        deleted: list[int] = []
        drops: list[_Drop] = []
        dropped_total = self._dropped_total
        with _transaction(conn):
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
        return _Flushed(
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
    ) -> tuple[_Drop | None, int]:
        count, freed = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM outbox WHERE id <= ?", (through_id,)
        ).fetchone()
        if not count:
            return None, 0
        conn.execute("DELETE FROM outbox WHERE id <= ?", (through_id,))
        return _Drop(reason=reason, count=int(count), through_id=through_id), int(freed)

    def max_id(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return int(row[0]) if row is not None else 0

    def read(
        self, *, after_id: int, up_to_id: int, limit: int, skip: frozenset[int]
    ) -> list[OutboxRow]:
        # Rows acked but not yet deleted are skipped; asking for len(skip) more keeps pages full.
        rows = self.conn.execute(
            "SELECT id, kind, created_ms, payload FROM outbox WHERE id > ? AND id <= ?"
            " ORDER BY id LIMIT ?",
            (after_id, up_to_id, limit + len(skip)),
        ).fetchall()
        found = [OutboxRow(id=r[0], kind=r[1], created_ms=r[2], payload=r[3]) for r in rows]
        return [row for row in found if row.id not in skip][:limit]

    def next_session(self) -> int:
        conn = self.conn
        with _transaction(conn):
            return self._bump(conn, "session", 1)

    def remember_command(self, *, command_id: str, exp_ms: int, now_ms: int) -> bool:
        conn = self.conn
        with _transaction(conn):
            conn.execute("DELETE FROM seen_commands WHERE exp_ms < ?", (now_ms - _SEEN_GRACE_MS,))
            cursor = conn.execute(
                "INSERT OR IGNORE INTO seen_commands (id, exp_ms) VALUES (?, ?)",
                (command_id, exp_ms),
            )
            return cursor.rowcount == 1

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the last connection out checkpoints the WAL
            self._conn = None


class Outbox:
    """On-disk queue of outgoing MQTT messages, each deleted only once the broker acked it.

    Call put/ack and the properties from the event loop's thread; the rest is awaited.
    """

    def __init__(
        self,
        *,
        path: Path,
        max_bytes: int,
        max_age_s: float,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes <= 0 or max_age_s <= 0:
            raise ValueError("max_bytes and max_age_s must be > 0")
        self._path = path
        self._max_bytes = max_bytes
        self._wall = wall
        self._store = _Store(path=path, max_bytes=max_bytes, max_age_ms=round(max_age_s * 1000))
        self._executor: ThreadPoolExecutor | None = None
        self._closing: asyncio.Task[None] | None = None
        self._buffer: list[_Buffered] = []
        self._buffered_bytes = 0
        # Acks to commit: id -> whether the row was already taken out of the pending counts.
        self._acks: dict[int, bool] = {}
        self._sizes = _LiveSizes()
        self._count = 0
        self._bytes = 0
        self._boot = 0
        self._dropped_total = 0
        # Drops of buffered rows while the disk failed, not yet added to the stored total.
        self._unsaved_drops = 0
        self._submitted_drops = 0
        self._wake = asyncio.Event()

    # --- life cycle ----------------------------------------------------------------------
    async def open(self) -> None:
        """Open (or create) the database and count this boot; OutboxError if it is unusable."""
        if self._executor is not None or self._closing is not None:
            raise OutboxError(self._path, "already opened (an outbox opens once)")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        try:
            opened = await asyncio.get_running_loop().run_in_executor(executor, self._store.open)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor
        self._sizes = opened.sizes
        self._count += opened.rows
        self._bytes += opened.nbytes
        self._boot = opened.boot
        self._dropped_total = opened.dropped_total
        if opened.journal_mode.lower() != "wal":
            log.warning("outbox.not_wal", path=str(self._path), journal_mode=opened.journal_mode)
        log.info(
            "outbox.opened",
            path=str(self._path),
            rows=opened.rows,
            bytes=opened.nbytes,
            boot=opened.boot,
        )

    async def close(self) -> None:
        """Commit what is buffered and the queued acks, then close; calling it again is harmless."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shut())
        await asyncio.shield(self._closing)

    async def _shut(self) -> None:
        executor = self._executor
        if executor is None:
            return
        try:
            await self.flush()
        except OutboxError as exc:
            log.error("outbox.close_flush_failed", error=str(exc), lost=len(self._buffer))
        try:
            await self._submit(self._store.close)
        finally:
            self._executor = None
            executor.shutdown(wait=False)

    async def __aenter__(self) -> Outbox:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- the hot path: never blocks --------------------------------------------------------
    def put(self, kind: str, payload: bytes) -> None:
        """Buffer one message for the next commit and wake the flusher; never blocks."""
        if self._closing is not None:
            raise OutboxError(self._path, f"closed: cannot keep a {kind!r} message")
        self._buffer.append((kind, self._now_ms(), payload))
        self._buffered_bytes += len(payload)
        self._count += 1
        self._bytes += len(payload)
        self._wake.set()

    def ack(self, row_id: int) -> None:
        """The broker acked `row_id`: it stops counting now and is deleted by the next commit."""
        if row_id in self._acks:
            return
        size = self._sizes.pop(row_id)
        if size is not None:
            self._count -= 1
            self._bytes -= size
        self._acks[row_id] = size is not None
        self._wake.set()

    # --- commits ---------------------------------------------------------------------------
    async def flush(self) -> list[OutboxRow]:
        """Commit buffered rows and queued acks in one transaction, then apply the caps.

        Returns the rows inserted (with their ids) that the caps kept, oldest first.
        """
        batch, self._buffer, self._buffered_bytes = self._buffer, [], 0
        acks, self._acks = self._acks, {}
        unsaved, self._unsaved_drops = self._unsaved_drops, 0
        job = partial(
            self._store.flush,
            batch=batch,
            acks=list(acks),
            extra_dropped=unsaved,
            now_ms=self._now_ms(),
        )
        try:
            future = self._submit(job)
        except BaseException:
            self._requeue(batch, acks, unsaved)
            raise
        self._submitted_drops += unsaved
        # The accounting runs as the commit's own callback, in commit order, and is shielded:
        # a caller cancelled mid-commit must neither stop the commit nor skip its accounting.
        future.add_done_callback(partial(self._settle, batch, acks, unsaved))
        flushed = await asyncio.shield(future)
        return flushed.rows

    def _settle(
        self,
        batch: list[_Buffered],
        acks: dict[int, bool],
        unsaved: int,
        future: asyncio.Future[_Flushed],
    ) -> None:
        self._submitted_drops -= unsaved
        if future.cancelled() or future.exception() is not None:
            self._requeue(batch, acks, unsaved)
            return
        flushed = future.result()
        self._dropped_total = flushed.dropped_total
        if batch:
            self._sizes.add(flushed.first_id, (len(payload) for _, _, payload in batch))
        for row_id in flushed.deleted:
            if not acks.get(row_id, False):  # acked before this outbox knew the row
                self._forget(self._sizes.pop(row_id))
        for drop in flushed.drops:
            count, nbytes = self._sizes.pop_through(drop.through_id)
            self._count -= count
            self._bytes -= nbytes
        # Logged only once the accounting is whole: a failing log sink must not leave it half.
        total = self.dropped_total - sum(drop.count for drop in flushed.drops)
        for drop in flushed.drops:
            total += drop.count
            log.warning("outbox.dropped", count=drop.count, reason=drop.reason, dropped_total=total)

    def _forget(self, size: int | None) -> None:
        if size is not None:
            self._count -= 1
            self._bytes -= size

    def _requeue(self, batch: list[_Buffered], acks: dict[int, bool], unsaved: int) -> None:
        """A commit failed: put its rows and acks back in front, for the next attempt."""
        self._buffer[:0] = batch
        self._buffered_bytes += sum(len(payload) for _, _, payload in batch)
        for row_id, counted in acks.items():
            self._acks[row_id] = counted or self._acks.get(row_id, False)
        self._unsaved_drops += unsaved
        # While the disk refuses, memory holds at most the cap: drop the oldest beyond it.
        if self._buffered_bytes > self._max_bytes:
            excess, freed, cut = self._buffered_bytes - self._max_bytes, 0, 0
            while freed < excess:
                freed += len(self._buffer[cut][2])
                cut += 1
            del self._buffer[:cut]
            self._buffered_bytes -= freed
            self._count -= cut
            self._bytes -= freed
            self._unsaved_drops += cut
            log.warning(
                "outbox.dropped", count=cut, reason="bytes", dropped_total=self.dropped_total
            )

    async def run_flusher(
        self, on_committed: Callable[[list[OutboxRow]], None], *, every_s: float = 0.2
    ) -> None:
        """Commit whenever something was put or acked (at least every `every_s`), until cancelled.

        Whatever arrives during a commit goes into the next one; `on_committed` gets the new rows.
        """
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(every_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                rows = await self.flush()
            except OutboxError as exc:
                log.error("outbox.flush_failed", error=str(exc), buffered=len(self._buffer))
                await asyncio.sleep(every_s)  # a failing disk must not make this spin
                continue
            if rows:
                try:
                    on_committed(rows)
                except Exception:
                    log.exception("outbox.on_committed_failed")

    # --- queries -----------------------------------------------------------------------------
    async def max_id(self) -> int:
        """The highest id committed so far (0 if none ever), after any commit already submitted."""
        return await self._submit(self._store.max_id)

    async def read(self, *, after_id: int, up_to_id: int, limit: int) -> list[OutboxRow]:
        """Stored rows with after_id < id <= up_to_id, oldest first, at most `limit`."""
        if limit <= 0 or up_to_id <= after_id:
            return []
        skip = frozenset(i for i in self._acks if after_id < i <= up_to_id)
        return await self._submit(
            partial(self._store.read, after_id=after_id, up_to_id=up_to_id, limit=limit, skip=skip)
        )

    async def next_session(self) -> int:
        """Count one more broker session and return it (1, 2, 3, … across restarts)."""
        return await self._submit(self._store.next_session)

    async def remember_command(self, command_id: str, exp_ms: int) -> bool:
        """True if `command_id` is new (kept until `exp_ms`), False if it was seen before."""
        return await self._submit(
            partial(
                self._store.remember_command,
                command_id=command_id,
                exp_ms=exp_ms,
                now_ms=self._now_ms(),
            )
        )

    # --- figures -----------------------------------------------------------------------------
    @property
    def boot(self) -> int:
        """How many times this outbox was opened (1 on the first open; 0 before it)."""
        return self._boot

    @property
    def pending_count(self) -> int:
        """Rows stored or buffered and not yet acked."""
        return self._count

    @property
    def pending_bytes(self) -> int:
        """Payload bytes of the rows counted by `pending_count`."""
        return self._bytes

    @property
    def dropped_total(self) -> int:
        """Rows ever dropped by the caps, across restarts."""
        return self._dropped_total + self._submitted_drops + self._unsaved_drops

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # --- helpers ------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._wall() * 1000)

    def _submit(self, job: Callable[[], T]) -> asyncio.Future[T]:
        # One worker thread: jobs run in the order submitted, which max_id() relies on.
        if self._executor is None:
            raise OutboxError(self._path, "not open")
        return asyncio.get_running_loop().run_in_executor(self._executor, job)
