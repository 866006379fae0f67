"""Journal store: what is recorded reads back, survives reopen, a failing disk and kill -9."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from unit_controller.journal import store
from unit_controller.journal.db import CACHE_KIB, SCHEMA_VERSION
from unit_controller.journal.store import Journal, JournalError

REPO = Path(__file__).resolve().parents[2]
WALL_S = 1_700_000_000.0
SHA = "ab" * 32


def _journal(path: Path) -> Journal:
    return Journal(path=path, wall=lambda: WALL_S)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
async def journal(path: Path) -> AsyncIterator[Journal]:
    j = _journal(path)
    await j.open()
    yield j
    await j.close()


def _event(journal: Journal, ts_ms: int, text: str) -> None:
    journal.record_event(ts_ms=ts_ms, kind="state", text=text, data={"n": ts_ms})


# --- reading back --------------------------------------------------------------------------


async def test_recent_merges_events_and_commands_oldest_first(journal: Journal) -> None:
    _event(journal, 1000, "STOPPED -> RESETTING (reset)")
    journal.record_command(
        ts_ms=2000, source="console:tech", command="hold", args={}, ok=True, error=None, result={}
    )
    journal.record_command(
        ts_ms=1500,
        source="mqtt:alice",
        command="start",
        args={"recipe": "smoke"},
        ok=False,
        error="cannot start in STOPPED: reset to IDLE first",
        result=None,
    )
    _event(journal, 3000, "phase fill")
    entries = await journal.recent(10)
    refused = "start by mqtt:alice refused: cannot start in STOPPED: reset to IDLE first"
    assert [(e["ts"], e["kind"], e["text"]) for e in entries] == [
        (1000, "state", "STOPPED -> RESETTING (reset)"),
        (1500, "command", refused),
        (2000, "command", "hold by console:tech ok"),
        (3000, "state", "phase fill"),
    ]
    assert entries[0]["data"] == {"n": 1000}
    assert entries[1]["args"] == {"recipe": "smoke"}
    assert entries[1]["ok"] is False
    assert [e["ts"] for e in await journal.recent(2)] == [2000, 3000]


async def test_each_command_gets_the_account_of_its_own_name(journal: Journal) -> None:
    # A start and a hold from one source a moment apart, the start's row written after its
    # settle wait: each keeps its own account, not the other's.
    for ts, command in ((1000, "start"), (1002, "hold")):
        journal.record_event(
            ts_ms=ts,
            kind="command",
            text=f"{command} by socket:root",
            data={"command": command, "source": "socket:root"},
        )
    for ts, command in ((1003, "hold"), (1005, "start")):
        journal.record_command(
            ts_ms=ts, source="socket:root", command=command, args={}, ok=True, error=None,
            result={},
        )  # fmt: skip
    details = {e["command"]: e["detail"] for e in await journal.recent(10) if "command" in e}
    assert details == {"start": "start by socket:root", "hold": "hold by socket:root"}


async def test_a_refused_repeat_does_not_take_the_account_of_the_command_before_it(
    journal: Journal,
) -> None:
    # Two confirms sent in one write: the first carried out (its account journaled), the
    # second refused a moment later. Only the first has the account.
    journal.record_event(
        ts_ms=1000,
        kind="command",
        text="confirmed 'Black mass charged' by console:root",
        data={"command": "confirm", "source": "console:root"},
    )
    journal.record_command(
        ts_ms=1001, source="console:root", command="confirm", args={}, ok=True, error=None,
        result={},
    )  # fmt: skip
    journal.record_command(
        ts_ms=1003, source="console:root", command="confirm", args={}, ok=False,
        error="nothing is waiting", result=None,
    )  # fmt: skip
    first, second = [e for e in await journal.recent(10) if e["kind"] == "command"]
    assert first["ok"] is True
    assert first["detail"] == "confirmed 'Black mass charged' by console:root"
    assert second["ok"] is False
    assert "detail" not in second


async def test_finished_batch_reads_back_with_its_record(journal: Journal) -> None:
    first = journal.batch_started(ts_ms=1000, recipe="smoke", recipe_sha256=SHA)
    record = {"recipe": "smoke", "phases": [{"name": "fill", "t_mean": 15.5}]}
    journal.batch_finished(first, ts_ms=5000, final_state="COMPLETE", record=record)
    second = journal.batch_started(ts_ms=6000, recipe="leach", recipe_sha256=SHA)
    assert second == first + 1
    assert await journal.batch(first) == {
        "id": first,
        "recipe": "smoke",
        "recipe_sha256": SHA,
        "start_ts": 1000,
        "end_ts": 5000,
        "final_state": "COMPLETE",
        "detected_ts": None,
        "last_ts": 5000,
        "record": record,
        "trend_meta": {},
    }
    latest = await journal.batch()
    assert latest is not None
    assert (latest["id"], latest["final_state"], latest["record"]) == (second, None, {})
    assert [(b["id"], b["recipe"]) for b in await journal.batches()] == [
        (second, "leach"),
        (first, "smoke"),
    ]
    assert "record" not in (await journal.batches(1))[0]
    assert await journal.batch(999) is None


async def test_last_calibration_matches_kind_device_and_actions(journal: Journal) -> None:
    assert await journal.last_calibration(kind="ph") is None
    journal.record_calibration(ts_ms=100, device="AT-101", kind="ph", action="mid", data={})
    journal.record_calibration(ts_ms=200, device="AT-101", kind="ph", action="clear", data={})
    journal.record_calibration(
        ts_ms=300, device="P-201", kind="pump", action="cal", data={"factor": 1.02}
    )
    assert await journal.last_calibration(kind="ph") == 200
    assert await journal.last_calibration(kind="ph", actions={"mid", "low", "high"}) == 100
    assert await journal.last_calibration(kind="pump", device="P-201") == 300
    assert await journal.last_calibration(kind="pump", device="P-202") is None
    assert await journal.last_calibration(kind="ph", actions=()) is None


# --- across runs ---------------------------------------------------------------------------


async def test_a_new_journal_reports_a_clean_previous_run(path: Path) -> None:
    j = _journal(path)
    opening = await j.open()
    await j.close()
    await j.close()  # harmless twice
    assert opening.previous_run_clean is True
    assert opening.interrupted_batches == ()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_the_page_cache_stays_small_however_long_the_unit_runs(journal: Journal) -> None:
    # SQLite's default (2 MB) would fill over the first batches and stay resident for months.
    worker = journal._worker
    cache = await worker.submit(lambda: worker.conn.execute("PRAGMA cache_size").fetchone()[0])
    assert cache == -CACHE_KIB


async def test_reopen_after_close_keeps_everything_and_reports_a_clean_run(path: Path) -> None:
    j = _journal(path)
    await j.open()
    _event(j, 1000, "kept")
    done = j.batch_started(ts_ms=1000, recipe="smoke", recipe_sha256=SHA)
    j.batch_finished(done, ts_ms=2000, final_state="ABORTED", record={"alarms": []})
    await j.close()  # close() commits what was only buffered

    again = _journal(path)
    opening = await again.open()
    try:
        assert opening.previous_run_clean is True
        assert opening.interrupted_batches == ()
        assert [e["text"] for e in await again.recent(5)] == ["kept"]
        batch = await again.batch(done)
        assert batch is not None
        assert batch["final_state"] == "ABORTED"
        assert again.batch_started(ts_ms=3000, recipe="smoke", recipe_sha256=SHA) == done + 1
    finally:
        await again.close()


async def test_a_run_that_never_closed_is_unclean_and_its_open_batch_interrupted(
    path: Path,
) -> None:
    crashed = _journal(path)  # stands for a process that died: it never gets to close()
    await crashed.open()
    open_id = crashed.batch_started(ts_ms=1000, recipe="leach", recipe_sha256=SHA)
    await crashed.flush()

    with capture_logs() as logs:
        after = _journal(path)
        opening = await after.open()
    try:
        assert opening.previous_run_clean is False
        assert opening.interrupted_batches == (open_id,)
        batch = await after.batch(open_id)
        assert batch is not None
        # It ended where its record ends, not when the next start found it.
        assert (batch["final_state"], batch["end_ts"]) == ("interrupted", 1000)
        assert batch["detected_ts"] == int(WALL_S * 1000)
        assert {"event": "journal.batch_interrupted", "id": open_id, "log_level": "warning"} in logs
    finally:
        await after.close()
        await crashed.close()


async def test_a_batch_open_at_a_clean_close_is_interrupted_on_the_next_open(path: Path) -> None:
    j = _journal(path)
    await j.open()
    open_id = j.batch_started(ts_ms=1000, recipe="purify", recipe_sha256=SHA)
    await j.close()
    again = _journal(path)
    opening = await again.open()
    await again.close()
    assert opening.previous_run_clean is True
    assert opening.interrupted_batches == (open_id,)


async def test_a_schema_from_a_later_release_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 2}")  # (3 reads as 2)
    with pytest.raises(JournalError, match="later release"):
        await _journal(path).open()


async def test_recording_before_open_is_refused(path: Path) -> None:
    with pytest.raises(JournalError, match="not open"):
        _event(_journal(path), 1, "too early")


# --- a failing disk ------------------------------------------------------------------------


def _fail_writes(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(ops: Any) -> int:
        raise JournalError(journal.path, "commit failed, will retry: disk I/O error")

    monkeypatch.setattr(journal._db, "write", refuse)


async def test_rows_refused_by_a_failing_disk_are_kept_and_written_later(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as broken:
        _fail_writes(journal, broken)
        with capture_logs() as logs:
            _event(journal, 1, "while the disk fails")
            with pytest.raises(JournalError, match="disk I/O error"):
                await journal.flush()
        assert "journal.write_failed" in [e["event"] for e in logs]
    await journal.flush()
    assert [e["text"] for e in await journal.recent(5)] == ["while the disk fails"]
    assert journal.dropped_total == 0


async def test_a_long_outage_drops_the_oldest_rows_beyond_the_cap(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MAX_BUFFERED", 10)
    with monkeypatch.context() as broken:
        _fail_writes(journal, broken)
        with capture_logs() as logs:
            for n in range(15):
                _event(journal, n, f"event {n}")
        # Room is made a tenth of the cap at a time: 11 rows -> 9, three times.
        assert journal.dropped_total == 6
        assert [e["event"] for e in logs] == ["journal.dropped"]
    await journal.flush()
    assert [e["ts"] for e in await journal.recent(100)] == list(range(6, 15))


async def test_a_long_outage_never_drops_the_newest_safety_memory(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dropped with the oldest rows, the reactor's "may hold acid" was lost: the purge came back
    # closed after a power cut.
    monkeypatch.setattr(store, "MAX_BUFFERED", 10)
    with monkeypatch.context() as broken:
        _fail_writes(journal, broken)
        journal.mark_safety('{"old": true}')
        journal.mark_safety('{"reactor_charged": true}')
        for n in range(40):
            _event(journal, n, f"event {n}")
    await journal.flush()
    await journal.close()
    reopened = _journal(journal.path)
    opening = await reopened.open()
    try:
        assert opening.safety == '{"reactor_charged": true}'
    finally:
        await reopened.close()


# --- kill -9 -------------------------------------------------------------------------------

# Writes as fast as it can, with one batch held open; says "wrote i" after each round of rows
# (buffered, maybe committed) and "flushed i" once it saw every round up to i committed.
_CHILD = """
import asyncio, sys
from pathlib import Path
from unit_controller.journal.store import Journal

async def main() -> None:
    journal = Journal(path=Path(sys.argv[1]))
    base = int(sys.argv[2])
    await journal.open()
    held = journal.batch_started(ts_ms=base, recipe="held", recipe_sha256="0" * 64)
    await journal.flush()
    print(f"ready {held}", flush=True)
    i = 0
    while True:
        i += 1
        ts = base + i
        journal.record_event(ts_ms=ts, kind="state", text="x" * 200, data={"i": i})
        journal.record_command(ts_ms=ts, source="test", command="hold", args={"i": i},
                               ok=True, error=None, result={"i": i})
        b = journal.batch_started(ts_ms=ts, recipe="smoke", recipe_sha256="a" * 64)
        journal.batch_finished(b, ts_ms=ts, final_state="COMPLETE",
                               record={"phases": [{"name": "p" * 50, "i": i}] * 40})
        if i % 25 == 0:
            await journal.flush()
            print(f"flushed {i}", flush=True)
        else:
            print(f"wrote {i}", flush=True)
            await asyncio.sleep(0)  # lets the writer task commit whenever it likes

asyncio.run(main())
"""


async def _run_and_kill(path: Path, *, base: int, kill_at: int) -> tuple[int, int]:
    """Run the child, SIGKILL it once it wrote round `kill_at`; (held id, rounds flushed)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(path), str(base), cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    held = flushed = wrote = 0
    try:
        async with asyncio.timeout(20):
            while wrote < kill_at:
                words = (await child.stdout.readline()).decode().split()
                assert words, "the child ended early"
                if words[0] == "ready":
                    held = int(words[1])
                elif words[0] in ("wrote", "flushed"):
                    wrote = int(words[1])
                    if words[0] == "flushed":
                        flushed = wrote
    finally:
        child.kill()  # SIGKILL: no close(), no checkpoint, no atexit
        rest = await child.stdout.read()
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    for line in rest.decode().splitlines():  # reported before the kill landed
        if line.startswith("flushed "):
            flushed = int(line.split()[1])
    return held, flushed


async def test_kill_9_at_any_moment_leaves_an_intact_journal_with_every_committed_row(
    path: Path,
) -> None:
    # Each kill lands at another point of the child's 25-round flush cycle, on the same file.
    for run, kill_at in enumerate((30, 62, 89, 151, 263), start=1):
        base = run * 1_000_000
        held, flushed = await _run_and_kill(path, base=base, kill_at=kill_at)
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        j = _journal(path)
        opening = await j.open()
        try:
            assert opening.previous_run_clean is False
            assert opening.interrupted_batches == (held,)
        finally:
            await j.close()
        with sqlite3.connect(path) as conn:
            span = (base + 1, base + flushed)
            for table in ("events", "commands"):
                count = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE ts_ms BETWEEN ? AND ?", span
                ).fetchone()[0]
                assert count == flushed, (run, table)
            complete = conn.execute(
                "SELECT count(*) FROM batches WHERE start_ts BETWEEN ? AND ?"
                " AND final_state = 'COMPLETE'",
                span,
            ).fetchone()[0]
            assert complete == flushed, run
            assert conn.execute(
                "SELECT count(*) FROM batches WHERE final_state IS NULL"
            ).fetchone() == (0,)


# --- retention ([journal] keep_days) --------------------------------------------------------

DAY_MS = 86_400_000


async def test_prune_drops_old_events_sooner_than_batches_and_keeps_what_must_stay(
    path: Path,
) -> None:
    crashed = _journal(path)
    await crashed.open()
    interrupted = crashed.batch_started(ts_ms=0, recipe="leach", recipe_sha256=SHA)
    await crashed.flush()  # dies with the batch open: interrupted and not reset on reopen
    j = Journal(path=path, wall=lambda: 0.0)  # marks it interrupted at ts 0: long ago
    await j.open()
    now = 1000 * DAY_MS
    _event(j, now - 100 * DAY_MS, "old event")
    _event(j, now - 91 * DAY_MS, "another old event")
    _event(j, now - 10 * DAY_MS, "recent event")
    j.record_command(ts_ms=now - 95 * DAY_MS, source="console:tech", command="hold", args={},
                     ok=True, error=None, result={})  # fmt: skip
    old = j.batch_started(ts_ms=now - 900 * DAY_MS, recipe="smoke", recipe_sha256=SHA)
    j.batch_finished(old, ts_ms=now - 800 * DAY_MS, final_state="COMPLETE", record={})
    kept = j.batch_started(ts_ms=now - 400 * DAY_MS, recipe="smoke", recipe_sha256=SHA)
    j.batch_finished(kept, ts_ms=now - 400 * DAY_MS, final_state="COMPLETE", record={})
    running = j.batch_started(ts_ms=now - 999 * DAY_MS, recipe="purify", recipe_sha256=SHA)
    for age, action in ((900, "mid"), (850, "mid"), (800, "low")):
        j.record_calibration(ts_ms=now - age * DAY_MS, device="AT-101", kind="ph",
                             action=action, data={})  # fmt: skip
    with capture_logs() as logs:
        counts = await j.prune(now_ms=now, keep_days=90, keep_batches_days=730, chunk=1)
    try:
        # In chunks of one row a table: every old row still goes.
        assert counts == {
            "events": 2, "commands": 1, "batches": 1, "calibrations": 1, "trend": 0
        }  # fmt: skip
        assert {"event": "journal.pruned", "log_level": "info", **counts} in logs
        assert [e["text"] for e in await j.recent(10)] == ["recent event"]
        ids = {b["id"] for b in await j.batches(10)}
        # The batch under way and the one interrupted (not yet reset) stay, however old.
        assert ids == {interrupted, kept, running}
        # The newest calibration of each kind of act stays: the due check reads it.
        assert await j.last_calibration(kind="ph", actions={"mid"}) == now - 850 * DAY_MS
        assert await j.last_calibration(kind="ph", actions={"low"}) == now - 800 * DAY_MS
        again = await j.prune(now_ms=now, keep_days=90, keep_batches_days=730)
        assert again == dict.fromkeys(counts, 0)
    finally:
        await j.close()
        await crashed.close()
