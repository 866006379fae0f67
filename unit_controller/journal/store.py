"""The journal store: events, commands, batches and calibrations in one SQLite WAL file.

Never blocks the event loop (writers only buffer; one worker thread commits and reads) and
never corrupts the file on kill -9: WAL + synchronous=NORMAL keep every committed row.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from hal.log import get_logger
from unit_controller.journal.db import (
    FINISH_BATCH,
    INSERT_CALIBRATION,
    INSERT_COMMAND,
    INSERT_EVENT,
    INSERT_TREND,
    INTERRUPTED,
    MARK_CLOCK,
    MARK_SAFETY,
    PROGRESS_BATCH,
    RATE_SCALE,
    RESET_INTERRUPTED,
    START_BATCH,
    TOTAL_SCALE,
    TOUCH_BATCH,
    TREND_SCALE,
    JournalDb,
    JournalError,
    JournalOpening,
    Op,
    Opened,
    peek,
)
from unit_controller.sqlite_worker import storage_may_recover

__all__ = [
    "INTERRUPTED", "JOURNAL_FILE", "MAX_BUFFERED", "Journal", "JournalError", "JournalOpening"
]  # fmt: skip

# The journal's file in the unit's state directory (the daemon's, and a simulated batch's).
JOURNAL_FILE = "journal.sqlite3"

log = get_logger(__name__)

T = TypeVar("T")

# Rows kept in memory while the disk refuses them; beyond this the oldest go (counted, logged).
MAX_BUFFERED = 10_000
# What a restart acts on, or what later rows hang on, is never dropped for room: the newest
# safety memory (whether the reactor may hold acid), a reset of batch_interrupted, a batch's
# start and end, calibrations. The trend, events and progress go first.
_KEPT = frozenset({MARK_SAFETY, RESET_INTERRUPTED, START_BATCH, FINISH_BATCH, INSERT_CALIBRATION})
# A tenth of the cap is made room at once when full, so a put on a failing disk does not walk
# the buffer every time.
_ROOM_SHARE = 10
_RETRY_MAX_S = 5.0
RUN_MARKER_SUFFIX = ".run"
# Both the same length: a marker is rewritten in place, which needs no new block on a full disk.
_RUNNING = b"running\n"
_CLEAN = b"clean\n\n\n"


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _scaled(value: float | None, factor: int) -> int | None:
    return None if value is None else round(value * factor)


def _json(value: object) -> str:
    # Mappings of any kind (MappingProxyType in events) become objects; the rest becomes text.
    return json.dumps(_plain(value) if isinstance(value, Mapping) else value, default=_plain)


class Journal:
    """The unit's journal in one SQLite file; writers never block, readers are awaited.

    Call the writers from the event loop's thread; a row may be lost only if the process dies
    within about 0.2 s of recording it, and the file is never left corrupt.
    """

    def __init__(
        self,
        *,
        path: Path,
        wall: Callable[[], float] = time.time,
        every_s: float = 0.2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`sleep`: how the writer waits before trying a refusing disk again (tests drive it)."""
        if every_s <= 0:
            raise ValueError("every_s must be > 0")
        self._sleep = sleep
        self._path = path
        self._wall = wall
        self._every_s = every_s
        self._db = JournalDb(path=path)
        self._worker = self._db.worker
        self._writer: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._buffer: list[Op] = []
        self._wake = asyncio.Event()
        self._next_batch_id = 1
        # Batches started and not finished by this process: id -> (recipe, sha256, start_ts,
        # trend_meta).
        self._open_batches: dict[int, tuple[str, str, int, str]] = {}
        # The batch under way, whose id the events and commands journaled now carry (a stop or
        # abort is answered as it enters Stopping or Aborting, while its batch is still open).
        self._current_batch: int | None = None
        self._dropped_total = 0
        self._dropped_unlogged = 0
        self.write_error: str | None = None
        """Why the last commit failed; None once one succeeds (the storage alarm reads it)."""
        # Set while the file could not be opened (a full disk at start): the writer keeps trying.
        self._deferred: str | None = None
        self._peeked_latest: int | None = None

    # --- life cycle ----------------------------------------------------------------------
    @property
    def marker(self) -> Path:
        """The run marker beside the file: `running` from a start until a clean stop whose
        records were all saved. A run whose journal never opened (a full disk) marks its end
        nowhere else, so a crash then is not taken for a clean stop."""
        return self._path.with_name(self._path.name + RUN_MARKER_SUFFIX)

    async def open(self, *, wait_for_disk: bool = False) -> JournalOpening:
        """Open (or create) the file, mark unfinished batches interrupted and this run running.

        `wait_for_disk`: when the disk is full or failing, read what the previous run left
        without writing, and go on recording into memory while the writer tries the file
        again (`deferred`); no batch may start until it opens. Else JournalError."""
        if self._worker.is_open or self._closing is not None or self._deferred is not None:
            raise JournalError(self._path, "already opened (a journal opens once)")
        try:
            opened = await self._worker.open(partial(self._db.prepare, now_ms=self._now_ms()))
        except JournalError as exc:
            if not (wait_for_disk and storage_may_recover(exc)):
                raise
            opened = await self._defer(exc)
        else:
            self._check_wal()
            log.info(
                "journal.opened",
                path=str(self._path),
                previous_run_clean=opened.opening.previous_run_clean,
                interrupted=list(opened.opening.interrupted_batches),
            )
        self._next_batch_id = opened.next_batch_id
        opening = opened.opening
        marked_clean = await asyncio.to_thread(_mark, self.marker, _RUNNING)
        if marked_clean is False and opening.previous_run_clean:
            # The file says clean, the marker does not: that run's journal never opened (or
            # closed without its records) and it ended without saying so.
            log.warning("journal.previous_run_unmarked", marker=str(self.marker))
            opening = replace(opening, previous_run_clean=False)
        for batch_id in opening.interrupted_batches:
            log.warning("journal.batch_interrupted", id=batch_id)
        self._writer = asyncio.create_task(self._run_writer(), name="journal-writer")
        return opening

    async def _defer(self, exc: JournalError) -> Opened:
        peeked = await asyncio.to_thread(peek, self._path)
        self._deferred = self.write_error = f"{exc.reason}; it is tried again every few seconds"
        if peeked is None:
            # Unreadable too: nothing known of the last run, its latched trips and charge
            # included: the daemon takes that the worst way (a latched trip, the reactor
            # charged), not as a memory that kept nothing.
            opened = Opened(
                opening=JournalOpening(
                    previous_run_clean=False, interrupted_batches=(), unreadable=exc.reason
                ),
                next_batch_id=1,
            )
        else:
            opened, self._peeked_latest = peeked
        log.error(
            "journal.open_deferred",
            path=str(self._path),
            error=str(exc),
            read=peeked is not None,
            previous_run_clean=opened.opening.previous_run_clean,
        )
        return opened

    def _check_wal(self) -> None:
        journal_mode = self._worker.journal_mode
        if journal_mode.lower() != "wal":
            log.warning("journal.not_wal", path=str(self._path), journal_mode=journal_mode)

    async def _open_deferred(self) -> bool:
        """Try the file again; True once it is open (what waits in memory goes in next)."""
        try:
            opened = await self._worker.open(partial(self._db.prepare, now_ms=self._now_ms()))
        except JournalError as exc:
            self._deferred = self.write_error = f"{exc.reason}; it is tried again every few seconds"
            return False
        self._deferred = None
        self.write_error = None
        self._next_batch_id = opened.next_batch_id
        self._check_wal()
        log.warning("journal.opened_late", path=str(self._path), buffered=len(self._buffer))
        return True

    @property
    def deferred(self) -> str | None:
        """Why the file is not open yet (a full disk at start), or None once it is."""
        return self._deferred

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
        if self._deferred is not None and not await self._open_deferred():
            # Never opened: what this run recorded was never saved, so the run marker keeps
            # saying `running` and the next start takes it as after a crash.
            log.error("journal.closed_unopened", lost=len(self._buffer), error=self._deferred)
            return
        if not self._worker.is_open:
            return
        try:
            await self._commit()
        except JournalError:
            clean = False  # logged by _settle; the lost rows make this run not a clean one
            log.error("journal.close_flush_failed", lost=len(self._buffer))
        try:
            await self._worker.close(self._db.mark_clean if clean else None)
        except JournalError as exc:
            log.error("journal.close_failed", error=str(exc))
            clean = False
        if clean:
            await asyncio.to_thread(_mark, self.marker, _CLEAN)

    # --- writers: never block --------------------------------------------------------------
    def record_event(self, *, ts_ms: int, kind: str, text: str, data: Mapping[str, Any]) -> None:
        """Journal one controller event (state, phase, alarm transition, prompt, command), as the
        batch under way's when there is one."""
        params = (int(ts_ms), str(kind), str(text), _json(data), self._current_batch)
        self._put((INSERT_EVENT, params))

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
        """Journal one command: who sent it, its arguments and its result (as the batch under
        way's when there is one)."""
        params = (
            int(ts_ms),
            str(source),
            str(command),
            _json(args),
            int(bool(ok)),
            None if error is None else str(error),
            None if result is None else _json(result),
            self._current_batch,
        )
        self._put((INSERT_COMMAND, params))

    def batch_started(
        self,
        *,
        ts_ms: int,
        recipe: str,
        recipe_sha256: str,
        trend_meta: Mapping[str, Any] | None = None,
    ) -> int:
        """Journal the start of a batch; returns its id at once. `trend_meta` names what the
        trend's rows hold (the pump tags of `rates`/`totals`, the recipe's phase names)."""
        self._check_open()
        if self._deferred is not None:
            # Its id comes from the file, and its record must be kept: not before it opens.
            raise JournalError(self._path, f"not open yet, no batch can start: {self._deferred}")
        batch_id = self._next_batch_id
        self._next_batch_id += 1
        row = (str(recipe), str(recipe_sha256), int(ts_ms), _json(trend_meta or {}))
        self._open_batches[batch_id] = row
        self._current_batch = batch_id
        self._put((START_BATCH, (batch_id, *row, int(ts_ms))))
        return batch_id

    def batch_finished(
        self, batch_id: int, *, ts_ms: int, final_state: str, record: Mapping[str, Any]
    ) -> None:
        """Journal the end of a batch started by this run, with its record (BatchRecord.summary)."""
        self._check_open()
        row = self._open_batches.pop(batch_id, None)
        if self._current_batch == batch_id:
            self._current_batch = None
        if row is None:
            # Not started by this run (or finished already): an interrupted batch stays so.
            log.warning("journal.batch_not_open", id=batch_id, final_state=final_state)
            return
        params = (batch_id, *row, int(ts_ms), str(final_state), _json(record), int(ts_ms))
        self._put((FINISH_BATCH, params))

    def batch_progress(self, batch_id: int, *, ts_ms: int, record: Mapping[str, Any]) -> None:
        """The record so far of a batch under way, so a crash leaves what it had done."""
        self._check_open()
        if batch_id in self._open_batches:
            self._put((PROGRESS_BATCH, (_json(record), int(ts_ms), batch_id)))

    def trend_row(
        self,
        batch_id: int,
        *,
        ts_ms: int,
        state_no: int,
        phase: int | None,
        values: Mapping[str, float | None],
        rates_ml_min: Sequence[float],
        totals_ml: Sequence[float],
    ) -> None:
        """One second of a batch under way: `values` by TREND_SCALE's names (None = no value),
        pump rates and reagent totals in the order `trend_meta` named at the start."""
        self._check_open()
        if batch_id not in self._open_batches:
            return
        scaled = [_scaled(values.get(name), factor) for name, factor in TREND_SCALE.items()]
        rates = json.dumps([round(r * RATE_SCALE) for r in rates_ml_min], separators=(",", ":"))
        totals = json.dumps([round(t * TOTAL_SCALE) for t in totals_ml], separators=(",", ":"))
        ts = int(ts_ms)
        self._put((INSERT_TREND, (batch_id, ts, int(state_no), phase, *scaled, rates, totals)))
        self._put((TOUCH_BATCH, (ts, batch_id)))

    def mark_clock(self, ts_ms: int) -> None:
        """Where the unit's clock stands (a sped-up run's next start goes on from past it)."""
        self._put((MARK_CLOCK, (int(ts_ms),)))

    def mark_safety(self, memory_json: str) -> None:
        """What a restart must not forget (SafetyMemory's JSON): the next open returns it."""
        self._put((MARK_SAFETY, (str(memory_json),)))

    def interrupted_reset(self) -> None:
        """The operator reset the batch_interrupted alarm: stop raising it at start-up."""
        self._check_open()
        self._put((RESET_INTERRUPTED, ()))

    def record_calibration(
        self, *, ts_ms: int, device: str, kind: str, action: str, data: Mapping[str, Any]
    ) -> None:
        """Journal one calibration act (kind "ph" or "pump"; action "mid", "clear", "cal", …)."""
        params = (int(ts_ms), str(device), str(kind), str(action), _json(data))
        self._put((INSERT_CALIBRATION, params))

    # --- readers: after every write recorded before them ------------------------------------
    async def flush(self) -> None:
        """Commit everything recorded so far; JournalError if the disk refused (rows are kept)."""
        await self._commit()

    async def latest_ts(self) -> int | None:
        """The newest time stamp journaled so far (events and commands), or None."""
        if self._deferred is not None:
            return self._peeked_latest  # what the file held; this run's rows wait in memory
        return await self._read(self._db.latest_ts)

    async def recent(self, n: int) -> list[dict[str, Any]]:
        """The last `n` events and commands, oldest first, each with "ts", "kind" and "text"."""
        if n <= 0:
            return []
        return await self._read(partial(self._db.recent, n))

    async def batch(self, batch_id: int | None = None) -> dict[str, Any] | None:
        """One batch with its record (None = the latest); None if there is no such batch."""
        return await self._read(partial(self._db.batch, batch_id))

    async def trend(self, batch_id: int) -> list[tuple[Any, ...]]:
        """The batch's trend rows as stored (see `JournalDb.trend`), oldest first."""
        return await self._read(partial(self._db.trend, batch_id))

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

    async def prune(
        self, *, now_ms: int, keep_days: float, keep_batches_days: float, chunk: int = 5000
    ) -> dict[str, int]:
        """Delete events and commands older than `keep_days`, batch records and calibrations
        older than `keep_batches_days` (see `JournalDb.prune` for what always stays)."""
        if chunk <= 0:
            raise ValueError("chunk must be > 0")
        day_ms = 86_400_000
        job = partial(
            self._db.prune,
            events_before_ms=now_ms - round(keep_days * day_ms),
            batches_before_ms=now_ms - round(keep_batches_days * day_ms),
            limit=chunk,
        )
        total: dict[str, int] = {}
        while True:
            counts = await self._read(job)
            for table, n in counts.items():
                total[table] = total.get(table, 0) + n
            if max(counts.values()) < chunk:
                break
        if any(total.values()):
            log.info("journal.pruned", **total)
        return total

    # --- figures -----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def backlog(self) -> int:
        """Rows recorded and not yet committed (a fast simulation flushes when it grows)."""
        return len(self._buffer)

    @property
    def dropped_total(self) -> int:
        """Rows this run could not journal: too many buffered on a failing disk, or refused."""
        return self._dropped_total

    # --- helpers ------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._wall() * 1000)

    def _check_open(self) -> None:
        if self._closing is not None or not (self._worker.is_open or self._deferred is not None):
            raise JournalError(self._path, "not open: cannot record")

    def _put(self, op: Op) -> None:
        self._check_open()
        self._buffer.append(op)
        self._cap()
        self._wake.set()

    def _cap(self) -> None:
        if len(self._buffer) <= MAX_BUFFERED:
            return
        excess = len(self._buffer) - MAX_BUFFERED + MAX_BUFFERED // _ROOM_SHARE
        buffer = self._buffer
        newest_safety = max(
            (i for i, (sql, _) in enumerate(buffer) if sql == MARK_SAFETY), default=-1
        )
        kept: list[Op] = []
        dropped = 0
        for i, op in enumerate(buffer):
            sql = op[0]
            keep = sql in _KEPT and (sql != MARK_SAFETY or i == newest_safety)
            if dropped < excess and not keep:
                dropped += 1
                continue
            kept.append(op)
        self._buffer = kept
        excess = dropped
        if not excess:
            return
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
            if self._deferred is not None:
                if not await self._open_deferred():
                    await self._sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX_S)
                    continue
                delay = self._every_s
            if not self._buffer:
                await self._wake.wait()
            self._wake.clear()
            try:
                await self._commit()
            except Exception as exc:
                if not isinstance(exc, JournalError):  # a disk error is logged by _settle
                    log.exception("journal.writer_failed")
                await self._sleep(delay)  # a failing disk must not make this spin
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
            future = self._worker.submit(partial(self._db.write, ops))
        except BaseException:
            self._requeue(ops)
            raise
        # The settling runs as the commit's own callback, in commit order: a caller cancelled
        # mid-commit can neither stop the commit nor lose its rows.
        future.add_done_callback(partial(self._settle, ops))
        return future

    def _settle(self, ops: list[Op], future: asyncio.Future[int]) -> None:
        if future.cancelled():
            self._requeue(ops)
            return
        exc = future.exception()
        if exc is not None:
            self._requeue(ops)
            self.write_error = str(exc)
            log.error("journal.write_failed", error=str(exc), buffered=len(self._buffer))
            return
        self.write_error = None
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

    def _requeue(self, ops: list[Op]) -> None:
        """A commit failed: put its rows back in front for the next try, within the cap."""
        self._buffer[:0] = ops
        self._cap()
        self._wake.set()  # the writer task takes over the retries

    async def _read(self, job: Callable[[], T]) -> T:
        if self._deferred is not None:
            raise JournalError(self._path, f"not open yet, nothing to read: {self._deferred}")
        with suppress(JournalError):
            # Not awaited: the read queues behind it, and _settle keeps the rows if it fails.
            self._start_commit()
        try:
            return await self._worker.submit(job)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(self._path, f"read failed: {exc}") from exc


def _mark(marker: Path, state: bytes) -> bool | None:
    """Write `state` over the run marker in place; what it said before: True clean, False
    not, None when there was none (or it cannot be read). Never raises: the journal's own
    mark stands when the marker cannot be written."""
    try:
        fd = os.open(marker, os.O_RDWR | os.O_CREAT, 0o640)
    except OSError as exc:
        log.warning("journal.marker_unusable", marker=str(marker), error=str(exc))
        return None
    try:
        before = os.pread(fd, len(_RUNNING), 0)
        os.pwrite(fd, state, 0)
        os.fsync(fd)
    except OSError as exc:
        log.warning("journal.marker_unwritten", marker=str(marker), error=str(exc))
        return None
    finally:
        os.close(fd)
    if before == _CLEAN:
        return True
    if before == _RUNNING:
        return False
    return None
