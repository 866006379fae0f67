"""A journal the disk refuses at start (full): what the last run left is read without writing,
the run records into memory and no batch starts, and all of it is written once the file opens."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from unit_controller.journal import db
from unit_controller.journal.db import JournalDb, peek
from unit_controller.journal.store import INTERRUPTED, Journal, JournalError

WALL_S = 1_700_000_000.0
SHA = "ab" * 32
FULL = "database or disk is full"


class Disk:
    """Makes the journal's `prepare` fail as a full disk does, while `full`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = True
        self.tries = 0
        prepare = JournalDb.prepare

        def refusing(db: JournalDb, conn: sqlite3.Connection, **kwargs: Any) -> Any:
            self.tries += 1
            if self.full:
                raise sqlite3.OperationalError(FULL)
            return prepare(db, conn, **kwargs)

        monkeypatch.setattr(JournalDb, "prepare", refusing)


async def _last_run(path: Path, *, clean: bool) -> None:
    """A run that journaled a batch (left open unless `clean`) and its safety memory."""
    journal = Journal(path=path, wall=lambda: WALL_S)
    await journal.open()
    batch = journal.batch_started(ts_ms=1_000, recipe="leach", recipe_sha256=SHA)
    journal.mark_safety('{"charged": true}')
    journal.record_event(ts_ms=5_000, kind="phase", text="phase heat", data={})
    if clean:
        journal.batch_finished(batch, ts_ms=6_000, final_state="COMPLETE", record={})
    await journal.close(clean=clean)


class Retries:
    """The writer's waits before it tries a refusing disk again: taken at once (no clock
    time passes), and counted."""

    def __init__(self) -> None:
        self.count = 0
        self._waited = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.count += 1
        self._waited.set()
        await asyncio.sleep(0)

    async def at_least(self, times: int, within_s: float = 10.0) -> None:
        async with asyncio.timeout(within_s):
            while self.count < times:
                self._waited.clear()
                await self._waited.wait()


async def _opened(journal: Journal, within_s: float = 10.0) -> None:
    # The writer task opens it on its own; a flush succeeds once it has. The bound is only
    # against a hang: each try is a thread's open of the file, not a wait.
    async with asyncio.timeout(within_s):
        while True:
            try:
                await journal.flush()
                return
            except JournalError:
                await asyncio.sleep(0)


async def test_a_full_disk_at_start_defers_the_file_and_saves_everything_once_it_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.sqlite3"
    await _last_run(path, clean=False)
    disk = Disk(monkeypatch)
    retries = Retries()
    journal = Journal(path=path, wall=lambda: WALL_S, sleep=retries.sleep)
    opening = await journal.open(wait_for_disk=True)
    try:
        # What the crashed run left, read without writing a byte.
        assert opening.previous_run_clean is False
        assert opening.interrupted_batches == (1,)
        assert opening.unreset_interrupted == (1,)
        assert opening.safety == '{"charged": true}'
        assert journal.deferred is not None
        assert FULL in journal.deferred
        assert journal.write_error == journal.deferred  # the storage alarm's reading
        assert await journal.latest_ts() == 5_000

        journal.record_event(ts_ms=7_000, kind="alarm", text="storage_failing raised", data={})
        journal.mark_safety('{"charged": false}')
        journal.interrupted_reset()
        with pytest.raises(JournalError, match="no batch can start"):
            journal.batch_started(ts_ms=8_000, recipe="smoke", recipe_sha256=SHA)
        with pytest.raises(JournalError, match="not open yet, nothing to read"):
            await journal.recent(5)
        await retries.at_least(2)  # tried again, not given up
        assert disk.tries >= 2  # the first try, and one after the first wait

        disk.full = False
        await _opened(journal)
        assert journal.write_error is None
        # The next batch takes the id after the last run's.
        assert journal.batch_started(ts_ms=9_000, recipe="smoke", recipe_sha256=SHA) == 2
        texts = [e["text"] for e in await journal.recent(10)]
        assert "storage_failing raised" in texts
        assert (await journal.batch(1) or {})["final_state"] == INTERRUPTED
    finally:
        await journal.close()
    db = sqlite3.connect(path)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    finally:
        db.close()
    assert meta["safety"] == '{"charged": false}'
    assert meta["interrupted_unreset"] == "[]"
    assert meta["running"] == "0"


async def test_a_file_that_never_opens_loses_only_this_runs_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.sqlite3"
    await _last_run(path, clean=True)
    Disk(monkeypatch)
    journal = Journal(path=path, wall=lambda: WALL_S, sleep=Retries().sleep)
    opening = await journal.open(wait_for_disk=True)
    assert opening.previous_run_clean is True
    assert opening.interrupted_batches == ()
    journal.record_event(ts_ms=7_000, kind="alarm", text="never saved", data={})
    await journal.close()
    await journal.close()  # again: harmless
    assert journal.deferred is not None
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT count(*) FROM events WHERE text = 'never saved'").fetchone() == (
            0,
        )
        assert db.execute("SELECT value FROM meta WHERE key = 'running'").fetchone() == ("0",)
    finally:
        db.close()
    # The file still says the last run ended clean, but this one's end was never saved (its
    # safety memory neither): the next start takes it as after a crash.
    monkeypatch.undo()
    later = Journal(path=path, wall=lambda: WALL_S)
    assert (await later.open()).previous_run_clean is False
    await later.close()
    again = Journal(path=path, wall=lambda: WALL_S)
    assert (await again.open()).previous_run_clean is True  # that one closed clean, saved
    await again.close()


async def test_a_crash_while_the_file_never_opened_is_no_clean_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.sqlite3"
    await _last_run(path, clean=True)
    disk = Disk(monkeypatch)
    crashed = Journal(path=path, wall=lambda: WALL_S, sleep=Retries().sleep)
    assert (await crashed.open(wait_for_disk=True)).previous_run_clean is True
    crashed.mark_safety('{"charged": true, "aborted": true}')  # kept in memory only
    # kill -9: nothing closes it; the disk is freed before the next start.
    writer = crashed._writer
    assert writer is not None
    writer.cancel()
    disk.full = False
    journal = Journal(path=path, wall=lambda: WALL_S)
    try:
        opening = await journal.open()
        assert opening.previous_run_clean is False  # Aborted, local, the charge assumed
    finally:
        await journal.close()


async def test_without_wait_for_disk_a_full_disk_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Disk(monkeypatch)
    journal = Journal(path=tmp_path / "journal.sqlite3", wall=lambda: WALL_S)
    with pytest.raises(JournalError, match=FULL):
        await journal.open()


async def test_a_bad_file_is_an_error_even_when_waiting_for_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"not a database, and no disk trouble either" * 100)
    with pytest.raises(JournalError, match="not a database"):
        await Journal(path=path, wall=lambda: WALL_S).open(wait_for_disk=True)


async def test_peek_reads_past_a_cut_short_shm_and_never_guesses_past_a_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.sqlite3"
    assert peek(path) is not None  # no file: a first start
    await _last_run(path, clean=True)
    shm, wal = path.with_name(path.name + "-shm"), path.with_name(path.name + "-wal")
    # What a WAL open on a full disk leaves: a -shm it could not grow, an empty -wal.
    shm.write_bytes(b"\0\0\0")
    wal.write_bytes(b"")
    peeked = peek(path)
    assert peeked is not None
    opened, latest = peeked
    assert opened.opening.previous_run_clean is True
    assert opened.next_batch_id == 2
    assert latest == 6_000
    # A crash: rows in the WAL, read through it all the same.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    writer = sqlite3.connect(path)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("UPDATE meta SET value = '1' WHERE key = 'running'")
        writer.commit()
        for name in (path.name, wal.name):
            (crashed / name).write_bytes((tmp_path / name).read_bytes())
    finally:
        writer.close()
    (crashed / shm.name).write_bytes(b"\0\0\0")
    peeked = peek(crashed / path.name)
    assert peeked is not None
    assert peeked[0].opening.previous_run_clean is False
    # Where SQLite cannot read it (as on the unit: an empty -wal, a -shm cut short gave a disk
    # I/O error), the file alone is read only when the WAL holds nothing: never a guess past it.
    readable = db._readable
    monkeypatch.setattr(
        db, "_readable", lambda uri: None if "immutable" not in uri else readable(uri)
    )
    assert peek(crashed / path.name) is None
    (crashed / wal.name).write_bytes(b"")
    peeked = peek(crashed / path.name)
    assert peeked is not None
    assert peeked[0].opening.previous_run_clean is True  # as the file says, with nothing past it
