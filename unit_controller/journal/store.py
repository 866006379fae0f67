"""The journal store: events, commands, batches and calibrations in one SQLite WAL file.

Never blocks the event loop (writers only buffer; one worker thread commits and reads) and
never corrupts the file on kill -9: WAL + synchronous=NORMAL keep every committed row.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import structlog

from unit_controller.errors import UnitControllerError

log = structlog.get_logger(__name__)

T = TypeVar("T")

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
_INSERT_EVENT = "INSERT INTO events (ts_ms, kind, text, data) VALUES (?, ?, ?, ?)"
_INSERT_COMMAND = (
    "INSERT INTO commands (ts_ms, source, command, args, ok, error, result)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# A batch's rows are idempotent, so a commit retried after a failure can never duplicate or
# undo one: the start is ignored once the row exists, the finish carries the whole row; and
# a batch already marked interrupted stays so.
_START_BATCH = (
    "INSERT OR IGNORE INTO batches (id, recipe, recipe_sha256, start_ts) VALUES (?, ?, ?, ?)"
)
_FINISH_BATCH = (
    "INSERT INTO batches (id, recipe, recipe_sha256, start_ts, end_ts, final_state, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET end_ts = excluded.end_ts,"
    " final_state = excluded.final_state, record = excluded.record"
    " WHERE batches.final_state IS NULL"
)
_PROGRESS_BATCH = "UPDATE batches SET record = ? WHERE id = ? AND final_state IS NULL"
_RESET_INTERRUPTED = "UPDATE meta SET value = '[]' WHERE key = 'interrupted_unreset'"
_INSERT_CALIBRATION = (
    "INSERT INTO calibrations (ts_ms, device, kind, action, data) VALUES (?, ?, ?, ?, ?)"
)
INTERRUPTED = "interrupted"
# Rows kept in memory while the disk refuses them; beyond this the oldest go (counted, logged).
MAX_BUFFERED = 10_000
_RETRY_MAX_S = 5.0
# Errors in the rows themselves: retrying the same commit cannot help, so rows go one by one.
_ROW_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    OverflowError,
    ValueError,
)

_Op = tuple[str, tuple[Any, ...]]  # one statement and its parameters, not yet committed


class JournalError(UnitControllerError):
    """The journal database cannot be used; names the file and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"journal {path}: {reason}")


@dataclass(frozen=True, slots=True)
class JournalOpening:
    """What opening the journal found about the previous run."""

    previous_run_clean: bool
    interrupted_batches: tuple[int, ...]
    # Interrupted batches (now or in an earlier run) whose alarm nobody has reset yet: the unit
    # must keep saying so across restarts, clean or not.
    unreset_interrupted: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class _Opened:
    opening: JournalOpening
    next_batch_id: int
    journal_mode: str


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _json(value: object) -> str:
    # Mappings of any kind (MappingProxyType in events) become objects; the rest becomes text.
    return json.dumps(_plain(value) if isinstance(value, Mapping) else value, default=_plain)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


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


class _Db:
    """The SQLite side of the journal; every method runs on the journal thread."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(self.path, "not open")
        return self._conn

    def open(self, now_ms: int) -> _Opened:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=5.0, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(self.path, f"cannot create or open the database: {exc}") from exc
        try:
            opened = self._prepare(conn, now_ms)
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            raise JournalError(self.path, f"cannot use the database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return opened

    def _prepare(self, conn: sqlite3.Connection, now_ms: int) -> _Opened:
        journal_mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        conn.execute("PRAGMA synchronous=NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(
                self.path,
                f"schema version {version} was written by a later release (this one reads "
                f"{SCHEMA_VERSION})",
            )
        with _transaction(conn):
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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
        return _Opened(
            opening=JournalOpening(
                previous_run_clean=clean,
                interrupted_batches=interrupted,
                unreset_interrupted=unreset,
            ),
            next_batch_id=int(last or 0) + 1,
            journal_mode=journal_mode,
        )

    def write(self, ops: Sequence[_Op]) -> int:
        """Commit `ops` in one transaction; returns how many rows were rejected as unusable."""
        if not ops:
            return 0
        conn = self.conn
        try:
            try:
                with _transaction(conn):
                    for sql, group in groupby(ops, key=itemgetter(0)):
                        conn.executemany(sql, [params for _, params in group])
                return 0
            except _ROW_ERRORS:
                return self._write_each(conn, ops)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(self.path, f"commit failed, will retry: {exc}") from exc

    def _write_each(self, conn: sqlite3.Connection, ops: Sequence[_Op]) -> int:
        # A row the database refuses must not hold back every row behind it forever.
        rejected = 0
        with _transaction(conn):
            for sql, params in ops:
                try:
                    conn.execute(sql, params)
                except _ROW_ERRORS as exc:
                    rejected += 1
                    log.error("journal.row_rejected", statement=sql.split("(")[0], error=str(exc))
        return rejected

    def recent(self, n: int) -> list[dict[str, Any]]:
        conn = self.conn
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
            row = self.conn.execute(
                f"SELECT {columns} FROM batches ORDER BY id DESC LIMIT 1"
            ).fetchone()
        else:
            row = self.conn.execute(
                f"SELECT {columns} FROM batches WHERE id = ?", (batch_id,)
            ).fetchone()
        if row is None:
            return None
        entry = self._batch_row(row[:6])
        entry["record"] = _load(row[6]) or {}
        return entry

    def batches(self, n: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
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
        value = self.conn.execute(sql, params).fetchone()[0]
        return None if value is None else int(value)

    def close(self, *, clean: bool) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        try:
            if clean:
                conn.execute("UPDATE meta SET value = '0' WHERE key = 'running'")
        except sqlite3.Error as exc:
            raise JournalError(self.path, f"cannot mark the run clean: {exc}") from exc
        finally:
            conn.close()  # the last connection out checkpoints the WAL


class Journal:
    """The unit's journal in one SQLite file; writers never block, readers are awaited.

    Call the writers from the event loop's thread; a row may be lost only if the process dies
    within about 0.2 s of recording it, and the file is never left corrupt.
    """

    def __init__(
        self, *, path: Path, wall: Callable[[], float] = time.time, every_s: float = 0.2
    ) -> None:
        if every_s <= 0:
            raise ValueError("every_s must be > 0")
        self._path = path
        self._wall = wall
        self._every_s = every_s
        self._db = _Db(path=path)
        self._executor: ThreadPoolExecutor | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._buffer: list[_Op] = []
        self._wake = asyncio.Event()
        self._next_batch_id = 1
        # Batches started and not finished by this process: id -> (recipe, sha256, start_ts).
        self._open_batches: dict[int, tuple[str, str, int]] = {}
        self._dropped_total = 0
        self._dropped_unlogged = 0

    # --- life cycle ----------------------------------------------------------------------
    async def open(self) -> JournalOpening:
        """Open (or create) the file, mark unfinished batches interrupted and this run running."""
        if self._executor is not None or self._closing is not None:
            raise JournalError(self._path, "already opened (a journal opens once)")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        try:
            opened = await asyncio.get_running_loop().run_in_executor(
                executor, partial(self._db.open, self._now_ms())
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor
        self._next_batch_id = opened.next_batch_id
        opening = opened.opening
        if opened.journal_mode.lower() != "wal":
            log.warning("journal.not_wal", path=str(self._path), journal_mode=opened.journal_mode)
        log.info(
            "journal.opened",
            path=str(self._path),
            previous_run_clean=opening.previous_run_clean,
            interrupted=list(opening.interrupted_batches),
        )
        for batch_id in opening.interrupted_batches:
            log.warning("journal.batch_interrupted", id=batch_id)
        self._writer = asyncio.create_task(self._run_writer(), name="journal-writer")
        return opening

    async def close(self, *, clean: bool = True) -> None:
        """Commit what is buffered, mark the run clean (unless `clean=False`: the process is
        failing and the next start must treat it as a crash) and close; again is harmless."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shut(clean=clean))
        await asyncio.shield(self._closing)

    async def _shut(self, *, clean: bool) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            await asyncio.wait([writer])
        executor = self._executor
        if executor is None:
            return
        try:
            await self._commit()
        except JournalError:
            clean = False  # logged by _settle; the lost rows make this run not a clean one
            log.error("journal.close_flush_failed", lost=len(self._buffer))
        try:
            await self._submit(partial(self._db.close, clean=clean))
        except JournalError as exc:
            log.error("journal.close_failed", error=str(exc))
        finally:
            self._executor = None
            executor.shutdown(wait=False)

    # --- writers: never block --------------------------------------------------------------
    def record_event(self, *, ts_ms: int, kind: str, text: str, data: Mapping[str, Any]) -> None:
        """Journal one controller event (state, phase, alarm transition, prompt, command)."""
        self._put((_INSERT_EVENT, (int(ts_ms), str(kind), str(text), _json(data))))

    def record_command(
        self,
        *,
        ts_ms: int,
        source: str,
        command: str,
        args: Mapping[str, Any],
        ok: bool,
        error: str | None,
        result: Mapping[str, Any] | None,
    ) -> None:
        """Journal one command: who sent it, its arguments and its result."""
        params = (
            int(ts_ms),
            str(source),
            str(command),
            _json(args),
            int(bool(ok)),
            None if error is None else str(error),
            None if result is None else _json(result),
        )
        self._put((_INSERT_COMMAND, params))

    def batch_started(self, *, ts_ms: int, recipe: str, recipe_sha256: str) -> int:
        """Journal the start of a batch; returns its id at once."""
        self._check_open()
        batch_id = self._next_batch_id
        self._next_batch_id += 1
        row = (str(recipe), str(recipe_sha256), int(ts_ms))
        self._open_batches[batch_id] = row
        self._put((_START_BATCH, (batch_id, *row)))
        return batch_id

    def batch_finished(
        self, batch_id: int, *, ts_ms: int, final_state: str, record: Mapping[str, Any]
    ) -> None:
        """Journal the end of a batch started by this run, with its record (BatchRecord.summary)."""
        self._check_open()
        row = self._open_batches.pop(batch_id, None)
        if row is None:
            # Not started by this run (or finished already): an interrupted batch stays so.
            log.warning("journal.batch_not_open", id=batch_id, final_state=final_state)
            return
        params = (batch_id, *row, int(ts_ms), str(final_state), _json(record))
        self._put((_FINISH_BATCH, params))

    def batch_progress(self, batch_id: int, *, record: Mapping[str, Any]) -> None:
        """The record so far of a batch under way, so a crash leaves what it had done."""
        self._check_open()
        if batch_id in self._open_batches:
            self._put((_PROGRESS_BATCH, (_json(record), batch_id)))

    def interrupted_reset(self) -> None:
        """The operator reset the batch_interrupted alarm: stop raising it at start-up."""
        self._check_open()
        self._put((_RESET_INTERRUPTED, ()))

    def record_calibration(
        self, *, ts_ms: int, device: str, kind: str, action: str, data: Mapping[str, Any]
    ) -> None:
        """Journal one calibration act (kind "ph" or "pump"; action "mid", "clear", "cal", …)."""
        params = (int(ts_ms), str(device), str(kind), str(action), _json(data))
        self._put((_INSERT_CALIBRATION, params))

    # --- readers: after every write recorded before them ------------------------------------
    async def flush(self) -> None:
        """Commit everything recorded so far; JournalError if the disk refused (rows are kept)."""
        await self._commit()

    async def recent(self, n: int) -> list[dict[str, Any]]:
        """The last `n` events and commands, oldest first, each with "ts", "kind" and "text"."""
        if n <= 0:
            return []
        return await self._read(partial(self._db.recent, n))

    async def batch(self, batch_id: int | None = None) -> dict[str, Any] | None:
        """One batch with its record (None = the latest); None if there is no such batch."""
        return await self._read(partial(self._db.batch, batch_id))

    async def batches(self, n: int = 20) -> list[dict[str, Any]]:
        """The last `n` batches, newest first, without their records."""
        if n <= 0:
            return []
        return await self._read(partial(self._db.batches, n))

    async def last_calibration(
        self, *, kind: str, device: str | None = None, actions: Collection[str] | None = None
    ) -> int | None:
        """Epoch ms of the newest calibration of `kind` (and `device`, one of `actions`)."""
        if actions is not None and not actions:
            return None
        chosen = None if actions is None else sorted(actions)
        return await self._read(
            partial(self._db.last_calibration, kind=kind, device=device, actions=chosen)
        )

    # --- figures -----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def dropped_total(self) -> int:
        """Rows this run could not journal: too many buffered on a failing disk, or refused."""
        return self._dropped_total

    # --- helpers ------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._wall() * 1000)

    def _check_open(self) -> None:
        if self._executor is None or self._closing is not None:
            raise JournalError(self._path, "not open: cannot record")

    def _put(self, op: _Op) -> None:
        self._check_open()
        self._buffer.append(op)
        self._cap()
        self._wake.set()

    def _cap(self) -> None:
        excess = len(self._buffer) - MAX_BUFFERED
        if excess <= 0:
            return
        del self._buffer[:excess]
        self._dropped_total += excess
        if not self._dropped_unlogged:
            log.warning(
                "journal.dropped", count=excess, dropped_total=self._dropped_total, reason="full"
            )
        self._dropped_unlogged += excess

    async def _run_writer(self) -> None:
        """Commit whatever was recorded, as soon as the loop is free; back off on a failing disk."""
        delay = self._every_s
        while True:
            if not self._buffer:
                await self._wake.wait()
            self._wake.clear()
            try:
                await self._commit()
            except Exception as exc:
                if not isinstance(exc, JournalError):  # a disk error is logged by _settle
                    log.exception("journal.writer_failed")
                await asyncio.sleep(delay)  # a failing disk must not make this spin
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            delay = self._every_s

    async def _commit(self) -> None:
        """Commit the buffered rows; JournalError if the disk refused them (they are kept)."""
        await asyncio.shield(self._start_commit())

    def _start_commit(self) -> asyncio.Future[int]:
        """Submit the buffered rows as one commit, queued behind every job submitted before."""
        ops, self._buffer = self._buffer, []
        try:
            future = self._submit(partial(self._db.write, ops))
        except BaseException:
            self._requeue(ops)
            raise
        # The settling runs as the commit's own callback, in commit order: a caller cancelled
        # mid-commit can neither stop the commit nor lose its rows.
        future.add_done_callback(partial(self._settle, ops))
        return future

    def _settle(self, ops: list[_Op], future: asyncio.Future[int]) -> None:
        if future.cancelled():
            self._requeue(ops)
            return
        exc = future.exception()
        if exc is not None:
            self._requeue(ops)
            log.error("journal.write_failed", error=str(exc), buffered=len(self._buffer))
            return
        rejected = future.result()
        if rejected:
            self._dropped_total += rejected
        if self._dropped_unlogged and ops:
            log.warning(
                "journal.dropped",
                count=self._dropped_unlogged,
                dropped_total=self._dropped_total,
                reason="full",
            )
            self._dropped_unlogged = 0

    def _requeue(self, ops: list[_Op]) -> None:
        """A commit failed: put its rows back in front for the next try, within the cap."""
        self._buffer[:0] = ops
        self._cap()
        self._wake.set()  # the writer task takes over the retries

    def _submit(self, job: Callable[[], T]) -> asyncio.Future[T]:
        # One worker thread: jobs run in the order submitted, so a read follows every write.
        if self._executor is None:
            raise JournalError(self._path, "not open")
        return asyncio.get_running_loop().run_in_executor(self._executor, job)

    async def _read(self, job: Callable[[], T]) -> T:
        with suppress(JournalError):
            # Not awaited: the read queues behind it, and _settle keeps the rows if it fails.
            self._start_commit()
        try:
            return await self._submit(job)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(self._path, f"read failed: {exc}") from exc
