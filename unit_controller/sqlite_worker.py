"""One SQLite file on one worker thread: the machinery the outbox and the journal share.

Never runs SQL on the event loop's thread, and never lets a second thread use the connection.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import ClassVar, TypeVar

from unit_controller.errors import UnitControllerError

T = TypeVar("T")


class StoreError(UnitControllerError):
    """A store's database cannot be used; names the store, the file and the reason."""

    store: ClassVar[str] = "store"  # each kind of store names itself: "outbox", "journal"

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{self.store} {path}: {reason}")


# A full or failing disk: neither the config nor the command line is at fault.
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})
_STORAGE_SQLITE = ("disk is full", "disk i/o error", "readonly database", "read-only file system")


def storage_may_recover(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is the disk full or failing, not a bad input."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _STORAGE_ERRNOS:
            return True
        if type(seen).__module__ == "sqlite3" and any(
            words in str(seen).lower() for words in _STORAGE_SQLITE
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, locked at once (BEGIN IMMEDIATE); any exception rolls it back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


def create_schema(conn: sqlite3.Connection, statements: Iterable[str], *, version: int) -> None:
    """Create the tables and indexes still missing and stamp the file with `version`.

    Call it inside `transaction`, so the stamp and the tables commit together.
    """
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")


class SqliteWorker:
    """One SQLite connection and the one thread that uses it; jobs run there in submit order.

    Call `open`, `submit` and `close` from the event loop; use `conn` only inside a job.
    """

    def __init__(
        self,
        *,
        path: Path,
        name: str,
        error: type[StoreError],
        schema_version: int,
        thread: ThreadPoolExecutor | None = None,
        also_reads: frozenset[int] = frozenset(),
    ) -> None:
        """`thread`: a one-thread executor shared with other stores (the fleet test rig's many
        outboxes), which this worker uses and never shuts down; default: a thread of its own.
        `also_reads`: later versions this release still opens (its `prepare` stamps them back)."""
        self.path = path
        self._name = name
        self._error = error
        self._schema_version = schema_version
        self._also_reads = also_reads
        self._shared = thread
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._journal_mode = ""

    # --- the event loop's side -------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        """Opened and not yet closed."""
        return self._executor is not None

    @property
    def journal_mode(self) -> str:
        """What SQLite answered when asked for WAL ("" before `open`); "wal" unless it refused."""
        return self._journal_mode

    async def open(self, prepare: Callable[[sqlite3.Connection], T]) -> T:
        """Start the thread and open the file there, then return `prepare(conn)` run there too.

        The file gets WAL and synchronous=NORMAL, and is refused if a later release wrote it;
        the store's error type says why it cannot be used.
        """
        executor = self._shared or ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        try:
            prepared = await asyncio.get_running_loop().run_in_executor(
                executor, partial(self._connect, prepare)
            )
        except BaseException:
            if executor is not self._shared:
                executor.shutdown(wait=False)
            raise
        self._executor = executor
        return prepared

    def submit(self, job: Callable[[], T]) -> asyncio.Future[T]:
        """Queue `job` on the thread; it runs after every job submitted before it."""
        # One worker thread: jobs run in the order submitted, so a read follows every write.
        if self._executor is None:
            raise self._error(self.path, "not open")
        return asyncio.get_running_loop().run_in_executor(self._executor, job)

    async def close(self, last: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Run `last` on the connection, close it and stop the thread; once closed, harmless."""
        executor = self._executor
        if executor is None:
            return
        try:
            await self.submit(partial(self._disconnect, last))
        finally:
            self._executor = None
            if executor is not self._shared:
                executor.shutdown(wait=False)

    # --- the worker thread's side ----------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection; the store's error ("not open") before `open` or after `close`."""
        if self._conn is None:
            raise self._error(self.path, "not open")
        return self._conn

    def _connect(self, prepare: Callable[[sqlite3.Connection], T]) -> T:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(self.path, f"cannot create or open the database: {exc}") from exc
        try:
            self._journal_mode = self._configure(conn)
            prepared = prepare(conn)
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            raise self._error(self.path, f"cannot use the database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return prepared

    def _configure(self, conn: sqlite3.Connection) -> str:
        journal_mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        conn.execute("PRAGMA synchronous=NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > self._schema_version and version not in self._also_reads:
            raise self._error(
                self.path,
                f"schema version {version} was written by a later release (this one reads "
                f"{self._schema_version})",
            )
        return journal_mode

    def _disconnect(self, last: Callable[[sqlite3.Connection], None] | None) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        try:
            if last is not None:
                last(conn)
        finally:
            conn.close()  # the last connection out checkpoints the WAL
