"""MQTT store-and-forward outbox: each message waits in SQLite until the broker's PUBACK.

Never blocks the event loop (all SQLite work is on one worker thread) and never loses a commit
to kill -9 (WAL + synchronous=NORMAL; only a power cut can take back the last few commits).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType

from hal.log import get_logger
from unit_controller.failure_log import DropLog, FailureLog
from unit_controller.mqtt.outbox_db import (
    KIND_SEPARATOR,
    Buffered,
    Flushed,
    Opened,
    OutboxDb,
    OutboxError,
    OutboxRow,
    SizeMemo,
)
from unit_controller.mqtt.replay import KEEP_S, ReplayWindow

__all__ = ["Outbox", "OutboxError", "OutboxRow"]

log = get_logger(__name__)

# Acks waiting past this many wake the flusher; fewer ride with the next put or wait
# IDLE_COMMIT_S (commits in batches).
ACK_BATCH = 1000
# With no row waiting in memory, acks and stored rows wait this long for a put to carry them into
# a commit. An acked row still on disk goes out again after a crash: at most this long of acks
# (or ACK_BATCH) is sent twice, which at-least-once delivery allows.
IDLE_COMMIT_S = 2.0
# While the disk refuses commits, what waits in memory is capped below the outbox's own cap
# (256 MiB by default, days of telemetry): RAM is the controller's too. About three hours of
# 1 Hz telemetry; beyond it the oldest go, counted as drops.
MEMORY_HOLD_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class _Step:
    """A step of the wall clock the stored rows of this run still wait for."""

    step_ms: int
    after_jobs: int  # the commits submitted when it was found: their rows move too
    through_id: int | None  # the last row id they left; None until they have all settled


# The wall clock moving this much more (or less) than the monotonic clock between two readings
# is a step (NTP setting a Pi without a clock), not time passing.
CLOCK_STEP_S = 60.0


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
        thread: ThreadPoolExecutor | None = None,
    ) -> None:
        """`thread`: a one-thread executor shared with other outboxes (see SqliteWorker)."""
        if max_bytes <= 0 or max_age_s <= 0:
            raise ValueError("max_bytes and max_age_s must be > 0")
        self._path = path
        self._counters = path.with_name(path.name + ".counters")
        self._max_bytes = max_bytes
        self._wall = wall
        # The wall and monotonic clocks at the last stamp, to tell a step of the wall clock from
        # time passing; steps not yet applied to the stored rows, and all of them this run.
        self._clock_at: tuple[float, float] | None = None
        self._shifted_ms = 0
        # Steps to apply to the stored rows of this run. Only rows this run stamped move: ids
        # above the last at open (a file set aside keeps the ids going on).
        self._steps: list[_Step] = []
        self._run_first_id = 0
        self._jobs_submitted = 0
        self._jobs_settled = 0
        self._shifting_jobs = 0  # commits in flight carrying a step
        self._store = OutboxDb(
            path=path, max_bytes=max_bytes, max_age_ms=round(max_age_s * 1000), thread=thread
        )
        self._worker = self._store.worker
        self._closing: asyncio.Task[None] | None = None
        self._buffer: list[Buffered] = []
        self._buffered_bytes = 0
        # The pending figures are the stored totals as of the last settled commit, plus rows put
        # since and not yet settled, minus acks counted since and not yet settled.
        self._stored_rows = 0
        self._stored_bytes = 0
        self._unsettled_rows = 0
        self._unsettled_bytes = 0
        self._acks: dict[int, None] = {}  # acked ids for the next commit, in ack order
        self._acked: dict[int, int] = {}  # acked and counted (id -> size) until settled
        self._acked_bytes = 0
        self._sizes = SizeMemo()
        self._boot = 0
        self._last_session = 0
        self._session = 0  # the last session counted, written or not
        self._last_id = 0  # the highest row id committed in this run
        # Bumped when a damaged file is replaced: a failure met on an older file is said once.
        self._file_generation = 0
        self._replacing = asyncio.Lock()
        self._dropped_total = 0
        # Drops of buffered rows while the disk failed, not yet added to the stored total.
        self._unsaved_drops = 0
        # A cap reached drops the oldest at every commit: said once a minute, not each time.
        self._drop_log = DropLog("outbox.dropped")
        self._submitted_drops = 0
        self._wake = asyncio.Event()
        self.write_error: str | None = None
        """Why the last commit failed; None once one succeeds (the storage alarm reads it)."""
        self.set_aside: Path | None = None
        # Wall ms when the command ids seen so far were lost with a file set aside: a command
        # issued before may be a replay this outbox cannot recognise (see ReplayStore).
        self._forgot_before_ms: int | None = None
        self._forgot_at = -math.inf  # monotonic: when the loss was met (or the run started)
        self._monotonic = monotonic
        """Where `open` kept an unreadable outbox file before it started a new one, or None."""
        self._replay_window = ReplayWindow(monotonic=monotonic)

    # --- life cycle ----------------------------------------------------------------------
    async def open(self) -> None:
        """Open (or create) the database and count this boot; OutboxError if it is unusable."""
        if self._worker.is_open or self._closing is not None:
            raise OutboxError(self._path, "already opened (an outbox opens once)")
        # A new file that replaces an unreadable one goes on counting from the old one's boot
        # and session: (boot, seq) names a message for good, and sess never goes back.
        floors = await asyncio.to_thread(_read_counters, self._counters)
        # A loss of the ids seen, kept across restarts (a command may live 10 minutes).
        self._forgot(floors.get("forgot_before_ms"))
        prepare = partial(self._store.prepare, floors=floors)
        try:
            opened = await self._worker.open(prepare)
        except OutboxError as exc:
            if not _corrupt(exc):
                raise
            # Telemetry storage must never keep a reactor's controller from starting (an SD
            # card's bad sector): the unreadable file is kept aside for a look, and a new one
            # started. What it held is not sent; the service raises an alarm that says so.
            self.set_aside = await asyncio.to_thread(_set_aside, self._path)
            self._forgot(self._now_ms())
            log.error(
                "outbox.unreadable_set_aside",
                path=str(self._path),
                kept=str(self.set_aside),
                error=str(exc),
            )
            opened = await self._worker.open(prepare)
        self._take(opened)
        self._last_session = self._session = opened.session
        await self._save_counters()
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

    def _take(self, opened: Opened) -> None:
        self._last_id = opened.last_id
        if not self._jobs_submitted:
            self._run_first_id = opened.last_id  # the rows of earlier runs stay as stamped
        self._stored_rows = opened.rows
        self._stored_bytes = opened.nbytes
        self._boot = opened.boot
        self._dropped_total = opened.dropped_total

    async def _replace_damaged(self, exc: OutboxError) -> None:
        """The file turned out damaged while running (an SD card's bad sector): keep it aside
        and go on in a new one, in this same boot, with ids, sessions and drops going on.

        What the old file held and the broker had not acked is lost, counted as dropped;
        what waits in memory goes into the new file.
        """
        lost = max(0, self._stored_rows - len(self._acked))
        floors = {
            "boot": self._boot - 1,  # counted again by prepare: the same boot
            "session": self._session,
            "dropped_total": self._dropped_total + lost,
            "last_id": self._last_id,
        }
        prepare = partial(self._store.prepare, floors=floors)
        await self._worker.close()
        try:
            kept = await asyncio.to_thread(_set_aside, self._path)
        except OSError:
            # Not even set aside (a read-only folder): the file as it is, open again, so a
            # later failure tries once more rather than finding the outbox closed for good.
            self._take(await self._worker.open(prepare))
            raise
        self.set_aside = kept
        self._forgot(self._now_ms())
        log.error(
            "outbox.damaged_set_aside",
            path=str(self._path),
            kept=str(kept),
            lost=lost,
            error=str(exc),
        )
        opened = await self._worker.open(prepare)
        self._file_generation += 1
        self._take(opened)
        # Rows and acks of the old file count no more; those put since wait in memory still.
        self._acks.clear()
        self._acked.clear()
        self._acked_bytes = 0
        self._sizes = SizeMemo()
        self.write_error = None
        await self._save_counters()

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
        if KIND_SEPARATOR in kind:
            raise ValueError(f"a message kind never holds {KIND_SEPARATOR!r}: {kind!r}")
        self._buffer.append((kind, self._now_ms(), payload))
        self._buffered_bytes += len(payload)
        self._unsettled_rows += 1
        self._unsettled_bytes += len(payload)
        self._wake.set()

    def ack(self, row_id: int) -> None:
        """The broker acked `row_id`: it is deleted by a coming commit (with others, in id ranges)
        and stops counting now if this outbox handed it out lately, else when the delete commits.
        """
        if row_id in self._acks:
            return
        size = self._sizes.pop(row_id)
        if size is not None:
            self._acked[row_id] = size
            self._acked_bytes += size
        self._acks[row_id] = None
        if len(self._acks) >= ACK_BATCH:
            self._wake.set()

    # --- commits ---------------------------------------------------------------------------
    async def flush(self) -> list[OutboxRow]:
        """Commit buffered rows and queued acks in one transaction, then apply the caps.

        Returns the rows inserted (with their ids) that the caps kept, oldest first.
        """
        if not (self._buffer or self._acks or self._unsaved_drops or self._stored_rows):
            return []  # nothing to write, and no stored row a cap could drop
        now_ms = self._now_ms()  # first: a step of the wall clock it finds moves the buffer too
        batch, self._buffer, self._buffered_bytes = self._buffer, [], 0
        acks, self._acks = self._acks, {}
        unsaved, self._unsaved_drops = self._unsaved_drops, 0
        shifts = [
            (step.step_ms, self._run_first_id, step.through_id)
            for step in self._steps
            if step.through_id is not None
        ]
        self._steps = [step for step in self._steps if step.through_id is None]
        # Ages judged on stamps still waiting for a step (or for a commit in flight that moves
        # them, and may fail) would drop rows that are young: judged at the next commit.
        expire = not self._steps and not self._shifting_jobs
        job = partial(
            self._store.flush,
            batch=batch,
            acks=list(acks),
            extra_dropped=unsaved,
            now_ms=now_ms,
            shifts=shifts,
            expire=expire,
        )
        try:
            future = self._worker.submit(job)
        except BaseException:
            self._unshift(shifts)
            self._requeue(batch, acks, unsaved)
            raise
        self._jobs_submitted += 1
        self._shifting_jobs += bool(shifts)
        self._submitted_drops += unsaved
        # The accounting runs as the commit's own callback, in commit order, and is shielded:
        # a caller cancelled mid-commit must neither stop the commit nor skip its accounting.
        future.add_done_callback(
            partial(self._settle, batch, acks, unsaved, (shifts, self._shifted_ms))
        )
        flushed = await asyncio.shield(future)
        return flushed.rows

    def _settle(
        self,
        batch: list[Buffered],
        acks: dict[int, None],
        unsaved: int,
        shifts: tuple[list[tuple[int, int, int]], int],
        future: asyncio.Future[Flushed],
    ) -> None:
        try:
            self._settle_rows(batch, acks, unsaved, shifts, future)
        finally:
            # In commit order: the steps found before this job was submitted now know the
            # last row they move.
            self._jobs_settled += 1
            self._shifting_jobs -= bool(shifts[0])
            for step in self._steps:
                if step.through_id is None and step.after_jobs <= self._jobs_settled:
                    step.through_id = self._last_id

    def _settle_rows(
        self,
        batch: list[Buffered],
        acks: dict[int, None],
        unsaved: int,
        shifts: tuple[list[tuple[int, int, int]], int],
        future: asyncio.Future[Flushed],
    ) -> None:
        self._submitted_drops -= unsaved
        if future.cancelled() or future.exception() is not None:
            if not future.cancelled():
                self.write_error = str(future.exception())
            # Rolled back: the stored rows still wait for this commit's shift, and the batch
            # for any step found since it was submitted.
            applied, shifted_then = shifts
            self._unshift(applied)
            since = self._shifted_ms - shifted_then
            if since:
                batch = [(kind, created + since, payload) for kind, created, payload in batch]
            self._requeue(batch, acks, unsaved)
            return
        self.write_error = None
        flushed = future.result()
        self._dropped_total = flushed.dropped_total
        self._stored_rows = flushed.stored_rows
        self._stored_bytes = flushed.stored_bytes
        self._unsettled_rows -= len(batch)
        self._unsettled_bytes -= sum(len(payload) for _, _, payload in batch)
        # Every acked id of this commit is gone from the table now, and so is every row a cap
        # dropped: the stored totals no longer count them.
        self._settle_acks(acks)
        for drop in flushed.drops:
            self._settle_acks([i for i in self._acked if i <= drop.through_id])
            self._sizes.forget_through(drop.through_id)
        self._sizes.add((row.id, len(row.payload)) for row in flushed.rows)
        given = [row.id for row in flushed.rows[-1:]] + [d.through_id for d in flushed.drops]
        self._last_id = max([self._last_id, *given])
        # Logged only once the accounting is whole: a failing log sink must not leave it half.
        total = self.dropped_total - sum(drop.count for drop in flushed.drops)
        for drop in flushed.drops:
            total += drop.count
            self._drop_log.dropped(drop.count, reason=drop.reason, dropped_total=total)

    def _settle_acks(self, row_ids: Iterable[int]) -> None:
        """These acked rows are out of the stored totals now: stop subtracting them."""
        acked, freed = self._acked, 0
        for row_id in row_ids:
            size = acked.pop(row_id, None)
            if size is not None:
                freed += size
        self._acked_bytes -= freed

    def _requeue(self, batch: list[Buffered], acks: dict[int, None], unsaved: int) -> None:
        """A commit failed: put its rows and acks back in front, for the next attempt."""
        self._buffer[:0] = batch
        self._buffered_bytes += sum(len(payload) for _, _, payload in batch)
        self._acks = {**acks, **self._acks}
        self._unsaved_drops += unsaved
        # While the disk refuses, memory holds at most the cap: drop the oldest beyond it.
        hold = min(self._max_bytes, MEMORY_HOLD_BYTES)
        if self._buffered_bytes > hold:
            excess, freed, cut = self._buffered_bytes - hold, 0, 0
            while freed < excess:
                freed += len(self._buffer[cut][2])
                cut += 1
            del self._buffer[:cut]
            self._buffered_bytes -= freed
            self._unsettled_rows -= cut
            self._unsettled_bytes -= freed
            self._unsaved_drops += cut
            self._drop_log.dropped(cut, reason="bytes", dropped_total=self.dropped_total)

    async def run_flusher(
        self, on_committed: Callable[[list[OutboxRow]], None], *, every_s: float = 0.2
    ) -> None:
        """Commit what was put within `every_s`, and acks with it (see `_next_commit_in`), until
        cancelled.

        Whatever arrives during a commit goes into the next one; `on_committed` gets the new rows.
        """
        failures = FailureLog("outbox.flush")
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(self._next_commit_in(every_s)):
                    await self._wake.wait()
            self._wake.clear()
            generation = self._file_generation
            try:
                rows = await self.flush()
            except OutboxError as exc:
                failures.failed(str(exc), buffered=len(self._buffer))
                if _corrupt(exc):
                    await self._replace_or_say(exc, generation)
                await asyncio.sleep(every_s)  # a failing disk must not make this spin
                continue
            failures.recovered()
            if rows:
                try:
                    on_committed(rows)
                except Exception:
                    log.exception("outbox.on_committed_failed")

    async def _replace_or_say(self, exc: OutboxError, generation: int) -> None:
        """Replace the damaged file, once: a commit and a read may both meet the damage."""
        async with self._replacing:
            if generation != self._file_generation:
                return  # replaced already, after the failure this caller met
            try:
                await self._replace_damaged(exc)
            except (OutboxError, OSError) as failed:
                # Not even a new file: the rows wait in memory (capped), as on a full disk.
                log.error("outbox.replace_failed", path=str(self._path), error=str(failed))

    def _next_commit_in(self, every_s: float) -> float | None:
        """Seconds until the flusher commits unwoken: `every_s` while rows wait in memory.

        Acks and stored rows alone wait longer: deletes ride with the next put (telemetry every
        second), so an idle, caught-up unit commits once per message, not twice (a quarter of
        the loop turns MQTT adds to an idle daemon). The wait cannot hinge on what is acked by
        now: a row's PUBACK comes back after the commit that stored it. Unacked stored rows (in
        flight, or the broker away) need a commit only for the age cap, which a few seconds do
        not change; the byte cap is applied by the commit that inserts.
        """
        if self._buffer or self._unsaved_drops:
            return every_s
        if self._acks or self._stored_rows:
            return IDLE_COMMIT_S
        return None  # nothing stored, nothing to write: a put wakes it

    # --- queries -----------------------------------------------------------------------------
    async def max_id(self) -> int:
        """The highest id committed so far (0 if none ever), after any commit already submitted."""
        return await self._worker.submit(self._store.max_id)

    async def read(self, *, after_id: int, up_to_id: int, limit: int) -> list[OutboxRow]:
        """Stored rows with after_id < id <= up_to_id, oldest first, at most `limit`."""
        if limit <= 0 or up_to_id <= after_id:
            return []
        # Rows acked but not yet deleted are skipped; asking for that many more keeps pages full.
        skip = frozenset(i for i in self._acks if after_id < i <= up_to_id)
        generation = self._file_generation
        try:
            page = await self._worker.submit(
                partial(
                    self._store.read, after_id=after_id, up_to_id=up_to_id, limit=limit + len(skip)
                )
            )
        except sqlite3.DatabaseError as exc:
            failed = OutboxError(self._path, f"read failed: {exc}")
            failed.__cause__ = exc
            if not _corrupt(failed):
                raise failed from exc
            # Damage on the way to the broker: the rows past it could never be read.
            await self._replace_or_say(failed, generation)
            return []
        if page is None:
            return []
        rows = page.rows(skip=skip)[:limit]
        self._sizes.add((row.id, len(row.payload)) for row in rows)
        return rows

    async def next_session(self) -> int:
        """Count one more broker session and return it (1, 2, 3, … across restarts).

        A disk that refuses the count (full) never keeps the link from connecting: the session
        is counted in memory, and written by the next count the disk takes.
        """
        want = self._session + 1
        try:
            self._session = await self._worker.submit(
                partial(self._store.next_session, at_least=want)
            )
        except (OutboxError, sqlite3.Error) as exc:
            log.warning("outbox.session_unsaved", path=str(self._path), sess=want, error=str(exc))
            self._session = want
        await self._save_counters()
        return self._session

    async def _save_counters(self) -> None:
        """Keep (boot, session) beside the file too: what a replacement file starts from."""
        kept = {"boot": self._boot, "session": self._session}
        if self.forgot_before_ms is not None:
            kept["forgot_before_ms"] = self.forgot_before_ms
        data = json.dumps(kept).encode()
        try:
            await asyncio.to_thread(_write_counters, self._counters, data)
        except OSError as exc:
            log.info("outbox.counters_unsaved", path=str(self._counters), error=str(exc))

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

    def _forgot(self, before_ms: int | None) -> None:
        self._forgot_before_ms = before_ms
        self._forgot_at = self._monotonic()

    @property
    def forgot_before_ms(self) -> int | None:
        """Wall ms before which command ids seen were lost with a file set aside, while that
        matters: for KEEP_S on the monotonic clock from the loss (or from this run's start, for
        a loss kept from before), by when every command issued before it has expired. Bounded
        so: a wall clock that was hours ahead at the loss must not refuse commands for hours."""
        if self._monotonic() - self._forgot_at >= KEEP_S:
            return None
        return self._forgot_before_ms

    # --- figures -----------------------------------------------------------------------------
    @property
    def boot(self) -> int:
        """How many times this outbox was opened (1 on the first open; 0 before it)."""
        return self._boot

    @property
    def last_session(self) -> int:
        """The last broker session counted when this outbox was opened (0: none ever)."""
        return self._last_session

    @property
    def pending_count(self) -> int:
        """Rows stored or buffered and not yet acked."""
        return self._stored_rows + self._unsettled_rows - len(self._acked)

    @property
    def pending_bytes(self) -> int:
        """Payload bytes of the rows counted by `pending_count`."""
        return self._stored_bytes + self._unsettled_bytes - self._acked_bytes

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
        """The wall clock (ms), for stamping rows and ageing them; a step of it (more or less
        than the monotonic clock moved, by CLOCK_STEP_S) moves every row this run kept with it,
        so each row's age stays true: an NTP step forward on a Pi without a clock aged a whole
        backlog out at once."""
        wall, mono = self._wall(), self._monotonic()
        if self._clock_at is not None:
            last_wall, last_mono = self._clock_at
            stepped = (wall - last_wall) - (mono - last_mono)
            if abs(stepped) >= CLOCK_STEP_S:
                self._clock_stepped(round(stepped * 1000))
        self._clock_at = (wall, mono)
        return int(wall * 1000)

    def _unshift(self, shifts: list[tuple[int, int, int]]) -> None:
        """A commit carrying these shifts did not happen: the next one carries them again."""
        self._steps[:0] = [_Step(step, self._jobs_submitted, high) for step, _, high in shifts]

    def _clock_stepped(self, step_ms: int) -> None:
        # The stored rows of this run move once every job already submitted has settled (its
        # rows are stored, or back in the buffer, which moves now).
        settled = self._jobs_settled >= self._jobs_submitted
        self._steps.append(
            _Step(step_ms, self._jobs_submitted, self._last_id if settled else None)
        )
        self._shifted_ms += step_ms
        # In place: `put` may hold the list's `append` while it asks the time.
        self._buffer[:] = [(kind, at + step_ms, payload) for kind, at, payload in self._buffer]
        log.warning("outbox.clock_stepped", step_s=round(step_ms / 1000, 1))


_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def _corrupt(exc: OutboxError) -> bool:
    """SQLite says the file is no database, or a damaged one. Not an I/O error, a lock, a
    folder or a later release's schema: those may pass, or need a person, and stop the start."""
    cause = exc.__cause__
    if not isinstance(cause, sqlite3.Error):
        return False
    # The primary code: extended ones (SQLITE_CORRUPT_INDEX...) carry it in the low byte.
    return (getattr(cause, "sqlite_errorcode", 0) & 0xFF) in _CORRUPT_CODES


def _write_counters(path: Path, data: bytes) -> None:
    """Replace the counters file in one rename (not via tempfile: the link's start stays lean)."""
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def _read_counters(path: Path) -> dict[str, int]:
    """boot and session (and forgot_before_ms) kept beside the outbox; none if none or
    unreadable (logged)."""
    try:
        kept = json.loads(path.read_bytes())
        counters = {"boot": int(kept["boot"]), "session": int(kept["session"])}
        if kept.get("forgot_before_ms") is not None:
            counters["forgot_before_ms"] = int(kept["forgot_before_ms"])
        return counters
    except OSError:
        # None yet, or a state directory that cannot be used: opening the outbox says why.
        return {}
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("outbox.counters_unreadable", path=str(path), error=str(exc))
        return {}


def _set_aside(path: Path) -> Path:
    """Rename `path` (and its WAL and shared-memory files) to `<name>.unreadable-<UTC time>`
    (a number after it when that name is taken)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = path.with_name(f"{path.name}.unreadable-{stamp}")
    n = 1
    while kept.exists():
        n += 1
        kept = path.with_name(f"{path.name}.unreadable-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(kept.with_name(kept.name + suffix))
    return kept
