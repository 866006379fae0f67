"""MQTT store-and-forward outbox: each message waits in SQLite until the broker's PUBACK.

Never blocks the event loop (all SQLite work is on one worker thread) and never loses a commit
to kill -9 (WAL + synchronous=NORMAL; only a power cut can take back the last few commits).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from pathlib import Path
from types import TracebackType

import structlog

from unit_controller.mqtt.outbox_db import (
    Buffered,
    Flushed,
    LiveSizes,
    OutboxDb,
    OutboxError,
    OutboxRow,
)
from unit_controller.mqtt.replay import ReplayWindow

__all__ = ["Outbox", "OutboxError", "OutboxRow"]

log = structlog.get_logger(__name__)


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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes <= 0 or max_age_s <= 0:
            raise ValueError("max_bytes and max_age_s must be > 0")
        self._path = path
        self._max_bytes = max_bytes
        self._wall = wall
        self._store = OutboxDb(path=path, max_bytes=max_bytes, max_age_ms=round(max_age_s * 1000))
        self._worker = self._store.worker
        self._closing: asyncio.Task[None] | None = None
        self._buffer: list[Buffered] = []
        self._buffered_bytes = 0
        # Acks to commit: id -> whether the row was already taken out of the pending counts.
        self._acks: dict[int, bool] = {}
        self._sizes = LiveSizes()
        self._count = 0
        self._bytes = 0
        self._boot = 0
        self._dropped_total = 0
        # Drops of buffered rows while the disk failed, not yet added to the stored total.
        self._unsaved_drops = 0
        self._submitted_drops = 0
        self._wake = asyncio.Event()
        self.write_error: str | None = None
        """Why the last commit failed; None once one succeeds (the storage alarm reads it)."""
        self._replay_window = ReplayWindow(monotonic=monotonic)

    # --- life cycle ----------------------------------------------------------------------
    async def open(self) -> None:
        """Open (or create) the database and count this boot; OutboxError if it is unusable."""
        if self._worker.is_open or self._closing is not None:
            raise OutboxError(self._path, "already opened (an outbox opens once)")
        opened = await self._worker.open(self._store.prepare)
        self._sizes = opened.sizes
        self._count += opened.rows
        self._bytes += opened.nbytes
        self._boot = opened.boot
        self._dropped_total = opened.dropped_total
        journal_mode = self._worker.journal_mode
        if journal_mode.lower() != "wal":
            log.warning("outbox.not_wal", path=str(self._path), journal_mode=journal_mode)
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
        if not self._worker.is_open:
            return
        try:
            await self.flush()
        except OutboxError as exc:
            log.error("outbox.close_flush_failed", error=str(exc), lost=len(self._buffer))
        await self._worker.close()

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
            future = self._worker.submit(job)
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
        batch: list[Buffered],
        acks: dict[int, bool],
        unsaved: int,
        future: asyncio.Future[Flushed],
    ) -> None:
        self._submitted_drops -= unsaved
        if future.cancelled() or future.exception() is not None:
            if not future.cancelled():
                self.write_error = str(future.exception())
            self._requeue(batch, acks, unsaved)
            return
        self.write_error = None
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

    def _requeue(self, batch: list[Buffered], acks: dict[int, bool], unsaved: int) -> None:
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
        return await self._worker.submit(self._store.max_id)

    async def read(self, *, after_id: int, up_to_id: int, limit: int) -> list[OutboxRow]:
        """Stored rows with after_id < id <= up_to_id, oldest first, at most `limit`."""
        if limit <= 0 or up_to_id <= after_id:
            return []
        skip = frozenset(i for i in self._acks if after_id < i <= up_to_id)
        return await self._worker.submit(
            partial(self._store.read, after_id=after_id, up_to_id=up_to_id, limit=limit, skip=skip)
        )

    async def next_session(self) -> int:
        """Count one more broker session and return it (1, 2, 3, … across restarts)."""
        return await self._worker.submit(self._store.next_session)

    async def remember_command(self, command_id: str, exp_ms: int) -> bool:
        """True if `command_id` is new, False if it was seen before (ids are forgotten by count,
        never while they could still be valid on the monotonic clock)."""
        rowid = await self._worker.submit(
            partial(
                self._store.remember_command,
                command_id=command_id,
                exp_ms=exp_ms,
                keep_from_rowid=self._replay_window.keep_from(),
            )
        )
        if rowid is None:
            return False
        self._replay_window.seen(rowid)
        return True

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
