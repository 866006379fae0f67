"""Outbox: commits in order, deletes on ack, caps by bytes and age, survives reopen and kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from unit_controller.mqtt import outbox as outbox_module
from unit_controller.mqtt.outbox import Outbox, OutboxError, OutboxRow
from unit_controller.mqtt.outbox_db import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[2]
EVERYTHING = 10**12  # an up_to_id past any id a test makes


class Wall:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _outbox(
    path: Path, *, max_bytes: int = 1_000_000, max_age_s: float = 3600.0, wall: Wall | None = None
) -> Outbox:
    # The hand-moved clock is time passing, not a step of the wall clock: both clocks read it.
    wall = wall or Wall()
    return Outbox(
        path=path, max_bytes=max_bytes, max_age_s=max_age_s, wall=wall, monotonic=wall
    )


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    async with _outbox(tmp_path / "outbox.sqlite3") as box:
        yield box


async def _all(box: Outbox) -> list[OutboxRow]:
    return await box.read(after_id=0, up_to_id=EVERYTHING, limit=1_000_000)


async def test_put_then_flush_returns_rows_with_increasing_ids_oldest_first(
    outbox: Outbox,
) -> None:
    outbox.put("telemetry", b"a")
    outbox.put("event", b"bb")
    outbox.put("cmd_result", b"ccc")
    rows = await outbox.flush()
    assert [(r.id, r.kind, r.payload) for r in rows] == [
        (1, "telemetry", b"a"),
        (2, "event", b"bb"),
        (3, "cmd_result", b"ccc"),
    ]
    assert rows[0].created_ms == 1_700_000_000_000
    assert await outbox.flush() == []
    assert await _all(outbox) == rows
    assert await outbox.max_id() == 3


async def test_read_pages_oldest_first_within_bounds(outbox: Outbox) -> None:
    for i in range(10):
        outbox.put("telemetry", b"%d" % i)
    await outbox.flush()
    page = await outbox.read(after_id=2, up_to_id=8, limit=4)
    assert [r.id for r in page] == [3, 4, 5, 6]
    page = await outbox.read(after_id=6, up_to_id=8, limit=4)
    assert [r.id for r in page] == [7, 8]
    assert await outbox.read(after_id=8, up_to_id=8, limit=4) == []
    assert await outbox.read(after_id=0, up_to_id=10, limit=0) == []


async def test_max_id_waits_for_a_flush_submitted_before_it(outbox: Outbox) -> None:
    assert await outbox.max_id() == 0
    outbox.put("telemetry", b"x")
    outbox.put("telemetry", b"y")
    rows, newest = await asyncio.gather(outbox.flush(), outbox.max_id())
    assert newest == rows[-1].id == 2


async def test_ack_stops_counting_at_once_and_flush_deletes_the_row(outbox: Outbox) -> None:
    outbox.put("telemetry", b"12345")
    outbox.put("telemetry", b"123")
    assert (outbox.pending_count, outbox.pending_bytes) == (2, 8)
    first, second = await outbox.flush()
    outbox.ack(first.id)
    assert (outbox.pending_count, outbox.pending_bytes) == (1, 3)
    # Acked but not yet deleted: a reader (backfill) does not get it again.
    assert await _all(outbox) == [second]
    await outbox.flush()
    assert await _all(outbox) == [second]
    assert (outbox.pending_count, outbox.pending_bytes) == (1, 3)


async def test_double_ack_and_ack_of_a_dropped_row_keep_counts_exact(tmp_path: Path) -> None:
    async with _outbox(tmp_path / "o.sqlite3", max_bytes=10) as box:
        box.put("telemetry", b"aaaa")
        box.put("telemetry", b"bbbb")
        a, b = await box.flush()
        box.ack(a.id)
        box.ack(a.id)  # twice before the commit
        await box.flush()
        box.ack(a.id)  # and again after it
        await box.flush()
        assert (box.pending_count, box.pending_bytes) == (1, 4)
        box.put("telemetry", b"cccccccc")  # 12 bytes stored > 10: b is dropped
        (c,) = await box.flush()
        assert (box.pending_count, box.pending_bytes, box.dropped_total) == (1, 8, 1)
        box.ack(b.id)  # the broker acks a row the cap already dropped
        await box.flush()
        assert (box.pending_count, box.pending_bytes) == (1, 8)
        box.ack(c.id)
        box.ack(999)  # an id this outbox never had
        await box.flush()
        assert (box.pending_count, box.pending_bytes) == (0, 0)
    async with _outbox(tmp_path / "o.sqlite3", max_bytes=10) as box:
        assert (box.pending_count, box.pending_bytes) == (0, 0)


async def test_bytes_cap_drops_the_oldest_rows_and_counts_them(tmp_path: Path) -> None:
    async with _outbox(tmp_path / "o.sqlite3", max_bytes=25) as box:
        for i in range(5):
            box.put("telemetry", b"%010d" % i)  # 10 bytes each
        with capture_logs() as logs:
            rows = await box.flush()
        assert [r.payload for r in rows] == [b"0000000003", b"0000000004"]
        assert [r.id for r in await _all(box)] == [4, 5]
        assert (box.pending_count, box.pending_bytes, box.dropped_total) == (2, 20, 3)
        (dropped,) = logs
        assert dropped["event"] == "outbox.dropped"
        assert dropped["log_level"] == "warning"
        assert (dropped["count"], dropped["reason"], dropped["dropped_total"]) == (3, "bytes", 3)


async def test_age_cap_drops_rows_older_than_max_age(tmp_path: Path) -> None:
    wall = Wall()
    async with _outbox(tmp_path / "o.sqlite3", max_age_s=60.0, wall=wall) as box:
        box.put("telemetry", b"old")
        wall.now += 30
        box.put("telemetry", b"newer")
        await box.flush()
        wall.now += 40  # the first row is now 70 s old, the second 40 s
        with capture_logs() as logs:
            assert await box.flush() == []
        assert [r.payload for r in await _all(box)] == [b"newer"]
        assert (box.pending_count, box.pending_bytes, box.dropped_total) == (1, 5, 1)
        assert logs[0]["reason"] == "age"
        assert logs[0]["log_level"] == "warning"


async def test_a_step_of_the_wall_clock_moves_the_rows_kept_so_far_with_it(
    tmp_path: Path,
) -> None:
    # NTP stepping a Pi's clock 8 days forward aged a 30 s backlog out at once ("reached its cap
    # while the broker was away").
    wall, monotonic = Wall(), Wall(0.0)
    path = tmp_path / "o.sqlite3"
    day = 86_400.0
    box = Outbox(path=path, max_bytes=10**6, max_age_s=7 * day, wall=wall, monotonic=monotonic)
    async with box:
        box.put("telemetry", b"stored")
        await box.flush()
        box.put("telemetry", b"buffered")
        wall.now += 8 * day  # the step
        monotonic.now += 1.0
        with capture_logs() as logs:
            box.put("telemetry", b"after")
            await box.flush()
        assert [e["event"] for e in logs] == ["outbox.clock_stepped"]
        assert [r.payload for r in await _all(box)] == [b"stored", b"buffered", b"after"]
        assert box.dropped_total == 0
        # Time passing on both clocks still ages them out.
        wall.now += 7 * day + 10
        monotonic.now += 7 * day + 10
        await box.flush()
        assert await _all(box) == []
        assert box.dropped_total == 3


async def test_a_step_moves_only_what_this_run_stamped(tmp_path: Path) -> None:
    # A unit off for 8 days boots with its clock at the shutdown time (fake-hwclock), then NTP
    # steps it: the last run's rows were stamped right and age out; this run's move.
    day = 86_400.0
    path = tmp_path / "o.sqlite3"
    wall, monotonic = Wall(), Wall(0.0)
    async with Outbox(
        path=path, max_bytes=10**6, max_age_s=7 * day, wall=wall, monotonic=monotonic
    ) as box:
        box.put("telemetry", b"last run")
        await box.flush()
    monotonic.now += 5.0  # a new boot: the clock reads the shutdown time again
    wall.now += 5.0
    async with Outbox(
        path=path, max_bytes=10**6, max_age_s=7 * day, wall=wall, monotonic=monotonic
    ) as box:
        box.put("telemetry", b"this run")
        await box.flush()
        wall.now += 8 * day
        monotonic.now += 1.0
        box.put("telemetry", b"after the step")
        await box.flush()
        await box.flush()
        assert [r.payload for r in await _all(box)] == [b"this run", b"after the step"]
        assert box.dropped_total == 1


@pytest.mark.parametrize("first_fails", [False, True])
@pytest.mark.parametrize("step_before", [False, True])
async def test_a_step_around_a_commit_in_flight_drops_and_moves_nothing_wrongly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_fails: bool, step_before: bool
) -> None:
    # The commit after the step aged out rows whose move waited on the commit in flight.
    day = 86_400.0
    wall, monotonic = Wall(), Wall(0.0)
    box = Outbox(
        path=tmp_path / "o.sqlite3", max_bytes=10**6, max_age_s=7 * day, wall=wall,
        monotonic=monotonic,
    )  # fmt: skip
    async with box:
        box.put("event", b"r0")
        await box.flush()
        real = box._store.flush
        entered, release = threading.Event(), threading.Event()

        def held(**kwargs: Any) -> Any:
            entered.set()
            release.wait(10)
            if first_fails:
                raise OutboxError(tmp_path, "injected")
            return real(**kwargs)

        monkeypatch.setattr(box._store, "flush", held)
        if step_before:
            wall.now += 8 * day
            monotonic.now += 1.0
        box.put("event", b"r1")
        first = asyncio.ensure_future(box.flush())
        await asyncio.to_thread(entered.wait)
        monkeypatch.setattr(box._store, "flush", real)
        if not step_before:
            wall.now += 8 * day  # the step, found by the next put
            monotonic.now += 1.0
        box.put("event", b"r2")
        second = asyncio.ensure_future(box.flush())
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, second, return_exceptions=True)
        box.put("event", b"r3")
        await box.flush()
        await box.flush()
        rows = await _all(box)
        assert sorted(r.payload for r in rows) == [b"r0", b"r1", b"r2", b"r3"]
        assert box.dropped_total == 0
        # Every stamp is the stepped clock less the row's true age: none moved twice.
        newest = max(r.created_ms for r in rows)
        assert newest - min(r.created_ms for r in rows) < 60_000


async def test_counters_persist_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    async with _outbox(path, max_bytes=5) as box:
        assert box.boot == 1
        assert [await box.next_session(), await box.next_session()] == [1, 2]
        box.put("telemetry", b"123456")  # over the cap on its own: dropped at once
        assert await box.flush() == []
        assert box.dropped_total == 1
    async with _outbox(path, max_bytes=5) as box:
        assert (box.boot, box.dropped_total) == (2, 1)
        assert await box.next_session() == 3


async def test_a_disk_that_refuses_the_session_count_never_keeps_the_link_down(
    tmp_path: Path,
) -> None:
    # A full disk failed every connect (the count was written before the link went up): the
    # session is counted in memory instead, and written with the next count the disk takes.
    path = tmp_path / "o.sqlite3"
    async with _outbox(path) as box:
        assert await box.next_session() == 1
        with sqlite3.connect(path) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE UPDATE ON meta"
                " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        with capture_logs() as logs:
            assert [await box.next_session(), await box.next_session()] == [2, 3]
        assert [e["event"] for e in logs] == ["outbox.session_unsaved"] * 2
        assert "disk is full" in logs[0]["error"]
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TRIGGER refuse")
        assert await box.next_session() == 4
    async with _outbox(path) as box:
        assert box.last_session == 4
        assert await box.next_session() == 5


async def test_stored_rows_survive_reopen_and_ids_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "o.sqlite3"
    async with _outbox(path) as box:
        box.put("telemetry", b"one")
        box.put("event", b"two")
        rows = await box.flush()
        box.ack(rows[1].id)
    async with _outbox(path) as box:
        assert await _all(box) == rows[:1]
        assert (box.pending_count, box.pending_bytes) == (1, 3)
        box.ack(rows[0].id)
        await box.flush()
        assert await box.max_id() == 2
        box.put("telemetry", b"three")
        assert [r.id for r in await box.flush()] == [3]


async def test_run_flusher_group_commits_and_reports_committed_rows(outbox: Outbox) -> None:
    batches: list[list[int]] = []
    committed = asyncio.Event()

    def on_committed(rows: list[OutboxRow]) -> None:
        batches.append([r.id for r in rows])
        committed.set()

    for i in range(3):  # all put before the flusher first runs: one commit
        outbox.put("telemetry", b"%d" % i)
    flusher = asyncio.create_task(outbox.run_flusher(on_committed, every_s=60.0))
    await committed.wait()
    committed.clear()
    outbox.ack(1)
    outbox.put("event", b"later")
    await committed.wait()
    assert batches == [[1, 2, 3], [4]]
    assert [r.id for r in await _all(outbox)] == [2, 3, 4]

    # Cancelled, the flusher loses nothing: close() commits what is still buffered.
    flusher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flusher
    outbox.put("event", b"after cancel")
    await outbox.close()
    async with _outbox(outbox.path) as box:
        assert [r.payload for r in await _all(box)][-1] == b"after cancel"


async def test_an_ack_after_its_rows_commit_rides_with_the_next_put(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The PUBACK comes back after the commit that stored its row: deleting it waits for the
    # next message's commit instead of costing a commit (and a wake-up) of its own.
    monkeypatch.setattr(outbox_module, "IDLE_COMMIT_S", 3600.0)
    worker = outbox._worker
    commits = 0
    submit = worker.submit

    def counted(job: Callable[[], Any]) -> asyncio.Future[Any]:
        nonlocal commits
        commits += 1
        return submit(job)

    monkeypatch.setattr(worker, "submit", counted)
    committed = asyncio.Event()
    flusher = asyncio.create_task(outbox.run_flusher(lambda _: committed.set(), every_s=0.01))
    try:
        outbox.put("telemetry", b"1")
        await committed.wait()
        committed.clear()
        outbox.ack(1)
        # Timers fire in deadline order: once this one has, any commit the flusher would make
        # `every_s` after its last one has been submitted.
        await asyncio.sleep(0.05)
        assert commits == 1
        outbox.put("telemetry", b"2")
        await committed.wait()
        assert commits == 2
        assert [r.id for r in await _all(outbox)] == [2]
        assert outbox.pending_count == 1
    finally:
        flusher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flusher


async def test_failed_commit_keeps_rows_in_order_for_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    async with _outbox(path, max_bytes=12) as box:
        box.put("telemetry", b"aaaa")
        (a,) = await box.flush()
        with sqlite3.connect(path) as conn:  # the disk refuses every insert from now on
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON outbox"
                " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        box.ack(a.id)
        for payload in (b"bbbb", b"cccc", b"dddd"):
            box.put("telemetry", payload)
        with pytest.raises(OutboxError, match="commit failed"):
            await box.flush()
        box.put("telemetry", b"eeee")  # 16 bytes waiting > 12: the oldest waiting one goes
        with capture_logs() as logs, pytest.raises(OutboxError, match="commit failed"):
            await box.flush()
        assert [(e["event"], e["reason"], e["count"]) for e in logs] == [
            ("outbox.dropped", "bytes", 1)
        ]
        assert (box.pending_count, box.pending_bytes, box.dropped_total) == (3, 12, 1)
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TRIGGER refuse")
        rows = await box.flush()
        assert [r.payload for r in rows] == [b"cccc", b"dddd", b"eeee"]
        assert [r.payload for r in await _all(box)] == [b"cccc", b"dddd", b"eeee"]
    async with _outbox(path, max_bytes=12) as box:
        assert (box.pending_count, box.dropped_total) == (3, 1)


async def test_while_the_disk_refuses_memory_holds_less_than_the_outbox_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outbox's cap is days of telemetry on disk; in RAM a unit keeps far less.
    monkeypatch.setattr(outbox_module, "MEMORY_HOLD_BYTES", 8)
    path = tmp_path / "o.sqlite3"
    async with _outbox(path, max_bytes=10**6) as box:
        with sqlite3.connect(path) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON outbox"
                " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        for payload in (b"aaaa", b"bbbb", b"cccc"):
            box.put("telemetry", payload)
        with pytest.raises(OutboxError, match="commit failed"):
            await box.flush()
        assert (box.pending_count, box.pending_bytes, box.dropped_total) == (2, 8, 1)
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TRIGGER refuse")
        assert [r.payload for r in await box.flush()] == [b"bbbb", b"cccc"]


async def test_close_commits_buffered_rows_and_queued_acks(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = _outbox(path)
    await box.open()
    box.put("telemetry", b"first")
    (first,) = await box.flush()
    box.ack(first.id)
    box.put("telemetry", b"buffered")
    await box.close()
    await box.close()  # harmless twice
    with pytest.raises(OutboxError, match="closed"):
        box.put("telemetry", b"too late")
    async with _outbox(path) as reopened:
        assert [r.payload for r in await _all(reopened)] == [b"buffered"]


async def test_remember_command_refuses_replays_across_a_restart_and_wall_clock_steps(
    tmp_path: Path,
) -> None:
    wall = Wall()
    path = tmp_path / "o.sqlite3"
    exp_ms = int(wall.now * 1000) + 10_000
    async with _outbox(path, wall=wall) as box:
        assert await box.remember_command("cmd-1", exp_ms) is True
        assert await box.remember_command("cmd-1", exp_ms) is False
        assert await box.remember_command("cmd-2", exp_ms + 7_200_000) is True
    async with _outbox(path, wall=wall) as box:
        assert await box.remember_command("cmd-1", exp_ms) is False  # remembered on disk
        wall.now += 3600  # the wall clock is no reason to forget (only the count is)
        assert await box.remember_command("cmd-3", exp_ms + 3_700_000) is True
        assert await box.remember_command("cmd-1", exp_ms) is False
    with sqlite3.connect(path) as conn:
        kept = {row[0] for row in conn.execute("SELECT id FROM seen_commands")}
    assert kept == {"cmd-1", "cmd-2", "cmd-3"}


async def test_unusable_path_raises_outbox_error_naming_it(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(OutboxError, match=r"outbox .*file/o\.sqlite3: cannot create"):
        await _outbox(not_a_dir / "o.sqlite3").open()



async def test_an_unreadable_outbox_file_is_kept_aside_and_a_new_one_started(
    tmp_path: Path,
) -> None:
    # Telemetry storage never keeps the controller from starting (an SD card's bad sector).
    corrupt = tmp_path / "outbox.sqlite3"
    garbage = b"this is not a database, " * 100
    corrupt.write_bytes(garbage)
    with capture_logs() as logs:
        async with _outbox(corrupt) as box:
            assert box.set_aside is not None
            assert box.set_aside.name.startswith("outbox.sqlite3.unreadable-")
            assert box.set_aside.read_bytes() == garbage  # kept as it was, for a look
            # The command ids seen went with it: commands issued before now are suspect.
            assert box.forgot_before_ms is not None
            forgot = box.forgot_before_ms
            box.put("telemetry", b"{}")
            await box.flush()
            assert len(await _all(box)) == 1
    assert any(e["event"] == "outbox.unreadable_set_aside" for e in logs)
    async with _outbox(corrupt) as again:  # the new file opens as any other
        assert again.set_aside is None
        assert again.forgot_before_ms == forgot  # across a restart too: commands live minutes


async def test_a_file_that_replaces_an_unreadable_one_goes_on_counting_boots_and_sessions(
    tmp_path: Path,
) -> None:
    # (boot, seq) names a message for good: a new file starting again at boot 1 named new
    # telemetry as the first boot's, which a fleet that drops duplicates would throw away.
    path = tmp_path / "outbox.sqlite3"
    for _ in range(3):
        async with _outbox(path) as box:
            await box.next_session()
    assert (box.boot, box.last_session) == (3, 2)
    path.write_bytes(b"an SD card's bad sector, " * 200)
    async with _outbox(path) as box:
        assert box.set_aside is not None
        assert (box.boot, box.last_session) == (4, 3)
        assert await box.next_session() == 4
    (tmp_path / "outbox.sqlite3.counters").write_text("not json")
    with capture_logs() as logs:
        async with _outbox(path) as box:  # the file's own counters still count
            assert (box.boot, box.last_session) == (5, 4)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "outbox.counters_unreadable"
    ]


async def test_damage_found_while_running_sets_the_file_aside_and_goes_on_in_a_new_one(
    tmp_path: Path,
) -> None:
    # A bad sector past the header: the file opened, then every read of the backlog failed
    # ("database disk image is malformed") and telemetry stopped for good, restarts included.
    path = tmp_path / "outbox.sqlite3"
    async with _outbox(path, max_bytes=10**8) as box:
        for i in range(3000):
            box.put("telemetry", b"%05d" % i + b"x" * 400)
        await box.flush()
    with sqlite3.connect(path) as conn:  # every page in the file itself, none left in a log
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as f:  # pages of no valid kind (0xFF) in the middle of the rows
        f.seek(path.stat().st_size // 2)
        f.write(b"\xff" * 64 * 1024)
    async with _outbox(path, max_bytes=10**8) as box:
        assert (box.boot, box.pending_count, box.set_aside) == (2, 3000, None)
        assert box.forgot_before_ms is None
        flusher = asyncio.ensure_future(box.run_flusher(lambda rows: None, every_s=0.01))
        try:
            with capture_logs() as logs:
                read: list[OutboxRow] = []
                while rows := await box.read(
                    after_id=read[-1].id if read else 0, up_to_id=EVERYTHING, limit=500
                ):
                    read += rows
            assert box.set_aside is not None
            assert box.set_aside.name.startswith("outbox.sqlite3.unreadable-")
            assert box.forgot_before_ms is not None
            assert [e["event"] for e in logs if e["log_level"] == "error"] == [
                "outbox.damaged_set_aside"
            ]
            # A commit and a read that meet the same damage replace the file once: the second
            # would set the new file aside.
            def set_aside_files() -> list[str]:
                names = os.listdir(tmp_path)
                kept = [n for n in names if ".unreadable-" in n]
                return [n for n in kept if not n.endswith(("-wal", "-shm"))]

            before = set_aside_files()
            generation = box._file_generation
            await asyncio.gather(
                box._replace_or_say(OutboxError(path, "commit"), generation),
                box._replace_or_say(OutboxError(path, "read"), generation),
            )
            assert len(set_aside_files()) == len(before) + 1
            assert box.boot == 2  # the same boot: its seq goes on
            assert 0 < len(read) < 3000
            assert box.dropped_total == 3000  # not acked: none is sure to have gone out
            box.put("telemetry", b"after")
            (row,) = await box.flush()
            assert row.id > 3000  # ids go on: the link sends live rows in id order
            assert [r.payload for r in await _all(box)] == [b"after"]
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
    async with _outbox(path) as box:
        assert (box.boot, box.pending_count, box.set_aside) == (3, 1, None)


async def test_an_error_that_is_no_damage_keeps_the_outbox_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with _outbox(path) as box:
        box.put("telemetry", b"{}")
    from unit_controller.mqtt.outbox_db import OutboxDb

    def failing(self: OutboxDb, conn: sqlite3.Connection, **_: object) -> None:
        raise sqlite3.IntegrityError("a bug or a migration, not a damaged file")

    monkeypatch.setattr(OutboxDb, "prepare", failing)
    with pytest.raises(OutboxError, match="cannot use the database"):
        await _outbox(path).open()
    assert not [p for p in os.listdir(tmp_path) if ".unreadable-" in p]
    monkeypatch.undo()
    async with _outbox(path) as box:
        assert box.pending_count == 1  # nothing was thrown away


async def test_database_from_a_later_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(OutboxError, match="later release"):
        await _outbox(path).open()


_CHILD = """
import asyncio, sys
from pathlib import Path
from unit_controller.logs import configure_logging
from unit_controller.mqtt.outbox import Outbox

async def main() -> None:
    configure_logging("error")  # stdout carries only "ready"
    box = Outbox(path=Path(sys.argv[1]), max_bytes=10_000_000, max_age_s=3600)
    await box.open()
    for i in range(int(sys.argv[2])):
        box.put("telemetry", b"row %d" % i)
    await box.flush()
    box.put("telemetry", b"never committed")
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_committed_rows_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    rows = 500
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(path), str(rows), cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 20) == b"ready\n"
    finally:
        child.kill()  # SIGKILL: no close(), no checkpoint, no atexit
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    async with _outbox(path) as box:
        stored = await _all(box)
        assert [r.payload for r in stored] == [b"row %d" % i for i in range(rows)]
        assert (box.boot, box.pending_count) == (2, rows)


async def test_outboxes_may_share_one_thread_and_close_apart(tmp_path: Path) -> None:
    thread = ThreadPoolExecutor(max_workers=1)
    try:
        first = Outbox(path=tmp_path / "a.sqlite3", max_bytes=10**6, max_age_s=3600, thread=thread)
        second = Outbox(path=tmp_path / "b.sqlite3", max_bytes=10**6, max_age_s=3600, thread=thread)
        await first.open()
        await second.open()
        first.put("telemetry", b"a")
        second.put("telemetry", b"b")
        assert [r.payload for r in await first.flush()] == [b"a"]
        assert [r.payload for r in await second.flush()] == [b"b"]
        await first.close()
        # The other outbox, and the thread, go on.
        second.put("telemetry", b"c")
        assert [r.payload for r in await second.flush()] == [b"c"]
        assert [r.payload for r in await _all(second)] == [b"b", b"c"]
        await second.close()
        assert thread.submit(lambda: 1).result(timeout=30) == 1
    finally:
        thread.shutdown(wait=True)


async def test_the_lost_ids_guard_lasts_as_long_as_a_command_can_live_on_the_monotonic_clock(
    tmp_path: Path,
) -> None:
    # A wall clock hours ahead at the loss must not refuse every command for hours after.
    from unit_controller.mqtt.replay import KEEP_S

    corrupt = tmp_path / "outbox.sqlite3"
    corrupt.write_bytes(b"this is not a database, " * 100)
    mono = [1000.0]
    box = Outbox(
        path=corrupt, max_bytes=10**6, max_age_s=3600.0, wall=Wall(), monotonic=lambda: mono[0]
    )
    async with box:
        assert box.forgot_before_ms is not None
        mono[0] += KEEP_S - 1.0
        assert box.forgot_before_ms is not None
        mono[0] += 2.0
        assert box.forgot_before_ms is None
    # Kept across a restart, and bounded again from that start.
    mono[0] = 5.0
    again = Outbox(
        path=corrupt, max_bytes=10**6, max_age_s=3600.0, wall=Wall(), monotonic=lambda: mono[0]
    )
    async with again:
        assert again.forgot_before_ms is not None
        mono[0] += KEEP_S
        assert again.forgot_before_ms is None
