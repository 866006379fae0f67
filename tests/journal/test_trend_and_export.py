"""A batch's trend and record out of the journal: what an export holds, how an interrupted batch
ends, a schema-1 file carried over, and `log` naming each command once."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from unit_controller.journal.export import (
    FORMAT,
    ExportError,
    batch_export,
    batch_id_of,
    open_journal,
    tag_key,
    trend_csv,
)
from unit_controller.journal.store import Journal

WALL_S = 1_700_000_000.0
SHA = "cd" * 32
META = {
    "record_origin_ts": 990,
    "pumps": ["P-201", "P-203"],
    "reagents": {"P-201": "h2so4", "P-203": "naoh"},
    "phases": ["heat", "hold"],
    "tolerances": [{"temperature_c": 1.0, "ph": None}, {"temperature_c": 1.0, "ph": 0.05}],
}


def _journal(path: Path) -> Journal:
    return Journal(path=path, wall=lambda: WALL_S)


def _row(journal: Journal, batch_id: int, ts: int, *, total: float, phase: int = 0) -> None:
    journal.trend_row(
        batch_id,
        ts_ms=ts,
        state_no=6,
        phase=phase,
        values={"t": 55.123, "t_sp": 60.0, "ph": None, "ph_sp": None, "duty": 0.25},
        rates_ml_min=[1.5, 0.0],
        totals_ml=[total, 0.0],
    )


def _exported(path: Path, ref: str = "last") -> dict[str, Any]:
    conn = open_journal(path)
    try:
        return batch_export(conn, batch_id_of(conn, ref), unit="u1", site="lab")
    finally:
        conn.close()


async def test_a_finished_batch_exports_its_record_phases_and_trend(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = _journal(path)
    await journal.open()
    batch = journal.batch_started(ts_ms=1000, recipe="r", recipe_sha256=SHA, trend_meta=META)
    journal.record_event(
        ts_ms=1500,
        kind="command",
        text="confirmed 'Charged' by console:tech",
        data={"command": "confirm", "source": "console:tech", "prompt": "Charged"},
    )
    for i in range(3):
        _row(journal, batch, 1000 + i * 1000, total=i * 0.5)
    record = {
        "phases": [{"name": "heat", "start_s": 0.01, "end_s": 2.5, "temperature_sp_c": 60.0}],
        "reagents_ml": {"P-201": 1.0},
        "alarms": [
            {"id": "x", "tag": "TT-101", "priority": "high", "raised_s": 1.0, "message": "m"}
        ],
        "ph": {"band": 0.05, "in_band_fraction": {}},
        "temperature": {"max_c": 55.12, "overshoot_c": 0.0},
    }
    journal.batch_finished(batch, ts_ms=3000, final_state="COMPLETE", record=record)
    await journal.close()

    export = _exported(path)
    assert export["format"] == FORMAT
    assert export["clock"] == "unit"
    assert export["pumps"]["P-201"] == {"key": "p201", "reagent": "h2so4"}
    assert export["batch"] | {"alarms": None} == export["batch"] | {
        "id": batch, "recipe": "r", "recipe_sha256": SHA, "start_ts": 1000, "end_ts": 3000,
        "detected_ts": None, "final_state": "COMPLETE", "interrupted": False,
        "reagents_ml": {"P-201": 1.0}, "alarms": None,
    }  # fmt: skip
    # Times in the record count from its own origin, a moment before the start.
    assert export["batch"]["alarms"] == [
        {"ts": 1990, "id": "x", "tag": "TT-101", "priority": "high", "message": "m"}
    ]
    (phase,) = export["phases"]
    assert (phase["start_ts"], phase["end_ts"]) == (1000, 3490)
    assert phase["temperature_tolerance_c"] == 1.0
    assert export["confirmations"] == [
        {"ts": 1500, "phase": "heat", "prompt": "Charged", "by": "console:tech"}
    ]
    trend = export["trend"]
    assert trend["columns"] == [
        "ts", "state", "phase", "temperature_c", "temperature_sp_c", "ph", "ph_sp",
        "heater_duty", "pump_p201_ml_min", "pump_p203_ml_min", "reagent_p201_ml",
        "reagent_p203_ml",
    ]  # fmt: skip
    assert trend["rows"][1] == [2000, "EXECUTE", "heat", 55.12, 60.0, None, None, 0.25,
                                1.5, 0.0, 0.5, 0.0]  # fmt: skip
    csv = trend_csv(export).splitlines()
    assert csv[0].startswith("ts,state,phase,temperature_c,")
    assert csv[2] == "2000,EXECUTE,heat,55.12,60.0,,,0.25,1.5,0.0,0.5,0.0"
    assert len(csv) == 4
    json.dumps(export)  # plain data throughout


async def test_an_interrupted_batch_ends_at_its_last_record_with_its_last_doses(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    crashed = _journal(path)  # a process that dies: it never closes
    await crashed.open()
    batch = crashed.batch_started(ts_ms=1000, recipe="r", recipe_sha256=SHA, trend_meta=META)
    crashed.batch_progress(
        batch,
        ts_ms=1200,
        record={
            "phases": [{"name": "heat", "start_s": 0.01, "end_s": None}],
            "reagents_ml": {"P-201": 0.2},
        },
    )
    for i in range(5):
        _row(crashed, batch, 2000 + i * 1000, total=1.0 + i)
    await crashed.flush()

    later = _journal(path)
    opening = await later.open()
    await later.close()
    await crashed.close()
    assert opening.interrupted_batches == (batch,)
    export = _exported(path, str(batch))["batch"]
    assert export["final_state"] == "interrupted"
    # Not stamped when the next start found it: that is beside it.
    assert export["end_ts"] == 6000
    assert export["detected_ts"] == WALL_S * 1000
    assert export["reagents_ml"] == {"P-201": 5.0}  # the trend's last total, after the record
    assert _exported(path)["phases"][-1]["end_ts"] == 6000


async def test_an_interrupted_batch_keeps_an_excursion_its_last_record_had_not_seen(
    tmp_path: Path,
) -> None:
    # The record is written once a minute: a peak just before a crash was in the trend only,
    # and the export and report showed a maximum below their own plot's.
    path = tmp_path / "journal.sqlite3"
    crashed = _journal(path)
    await crashed.open()
    batch = crashed.batch_started(ts_ms=1000, recipe="r", recipe_sha256=SHA, trend_meta=META)
    crashed.batch_progress(
        batch,
        ts_ms=1200,
        record={
            "phases": [
                {"name": "heat", "start_s": 0.01, "end_s": 1.0, "t_min": 50.0, "t_max": 55.0,
                 "t_mean": 52.0, "ph_min": None, "ph_max": None},
                {"name": "hold", "start_s": 1.0, "end_s": None, "t_min": 55.0, "t_max": 56.0,
                 "t_mean": 55.5, "ph_min": 7.0, "ph_max": 7.1},
            ],
            "temperature": {"max_c": 56.0, "overshoot_c": 0.0},
        },
    )  # fmt: skip
    for i, (t, ph) in enumerate([(55.5, 7.05), (61.25, 6.5), (57.0, None)]):
        crashed.trend_row(
            batch,
            ts_ms=2000 + i * 1000,
            state_no=6,
            phase=1,
            values={"t": t, "t_sp": 60.0, "ph": ph, "ph_sp": 7.0, "duty": 0.0},
            rates_ml_min=[0.0, 0.0],
            totals_ml=[0.0, 0.0],
        )
    await crashed.flush()
    later = _journal(path)
    await later.open()
    await later.close()
    await crashed.close()
    export = _exported(path, str(batch))
    heat, hold = export["phases"]
    assert (heat["t_min"], heat["t_max"]) == (50.0, 55.0)  # no trend of its own: as recorded
    assert (hold["t_min"], hold["t_max"], hold["t_mean"]) == (55.0, 61.25, 55.5)
    assert (hold["ph_min"], hold["ph_max"]) == (6.5, 7.1)
    assert export["batch"]["max_temperature_c"] == 61.25


async def test_a_journal_on_read_only_media_is_read_unless_its_log_holds_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A state directory copied off a unit (or a backup) on read-only media: SQLite cannot make
    # the shared-memory file a WAL database is read through, and export said only "unable to
    # open database file".
    path = tmp_path / "journal.sqlite3"
    journal = _journal(path)
    await journal.open()
    batch = journal.batch_started(ts_ms=1000, recipe="r", recipe_sha256=SHA, trend_meta=META)
    journal.batch_finished(batch, ts_ms=3000, final_state="COMPLETE", record={})
    await journal.close()
    real_connect = sqlite3.connect

    def read_only_media(database: str, **kwargs: Any) -> sqlite3.Connection:
        if "immutable=1" not in database:
            raise sqlite3.OperationalError("unable to open database file")
        conn: sqlite3.Connection = real_connect(database, **kwargs)
        return conn

    monkeypatch.setattr(sqlite3, "connect", read_only_media)
    monkeypatch.setattr(os, "access", lambda *_: False)
    assert _exported(path)["batch"]["final_state"] == "COMPLETE"
    (tmp_path / "journal.sqlite3-wal").write_bytes(b"\0" * 4096)  # copied from a live unit
    with pytest.raises(ExportError, match="copy the state directory somewhere writable"):
        _exported(path)


async def test_detected_is_never_before_the_end_on_a_clock_ahead_of_the_wall(
    tmp_path: Path,
) -> None:
    # A sped-up simulation's stamps run ahead of the wall clock.
    path = tmp_path / "journal.sqlite3"
    ahead = int(WALL_S * 1000) + 3_600_000
    crashed = _journal(path)
    await crashed.open()
    batch = crashed.batch_started(ts_ms=ahead, recipe="r", recipe_sha256=SHA, trend_meta=META)
    _row(crashed, batch, ahead + 1000, total=1.0)
    await crashed.flush()
    later = _journal(path)
    await later.open()
    await later.close()
    await crashed.close()
    export = _exported(path)["batch"]
    assert export["end_ts"] == ahead + 1000
    assert export["detected_ts"] > export["end_ts"]


async def test_a_schema_1_journal_is_carried_over(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE batches (id INTEGER PRIMARY KEY, recipe TEXT NOT NULL,
          recipe_sha256 TEXT NOT NULL, start_ts INTEGER NOT NULL, end_ts INTEGER,
          final_state TEXT, record TEXT);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO batches VALUES (1, 'old', 'ab', 10, 20, 'COMPLETE', '{"reagents_ml": {}}');
        PRAGMA user_version = 1;
        """
    )
    conn.close()
    with pytest.raises(ExportError, match="schema 1: start the controller once"):
        open_journal(path)
    journal = _journal(path)
    await journal.open()
    await journal.close()
    export = _exported(path, "1")
    assert (export["batch"]["recipe"], export["batch"]["end_ts"]) == ("old", 20)
    assert export["trend"]["rows"] == []


async def test_log_names_a_command_once_with_what_the_controller_said(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "journal.sqlite3")
    await journal.open()
    try:
        journal.record_event(
            ts_ms=1000, kind="command", text="hold by console:tech",
            data={"command": "hold", "source": "console:tech", "ok": True},
        )  # fmt: skip
        journal.record_command(
            ts_ms=1010, source="console:tech", command="hold", args={}, ok=True,
            error=None, result={"state": "HELD"},
        )  # fmt: skip
        journal.record_event(
            ts_ms=1020, kind="command", text="abort by sim", data={"source": "sim"}
        )
        entries = await journal.recent(10)
    finally:
        await journal.close()
    assert [(e["kind"], e["text"]) for e in entries] == [
        ("command", "hold by console:tech ok"),
        ("command", "abort by sim"),  # no command row of its own: the event stays
    ]
    assert entries[0]["detail"] == "hold by console:tech"
    assert [e["ref"][0] for e in entries] == ["c", "e"]


def test_bad_references_and_missing_journals_are_named(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no journal at"):
        open_journal(tmp_path / "none.sqlite3")
    path = tmp_path / "journal.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE batches (id INTEGER PRIMARY KEY); PRAGMA user_version = 2;")
    conn.close()
    conn = open_journal(path)
    try:
        with pytest.raises(ExportError, match="holds no batch yet"):
            batch_id_of(conn, "last")
        with pytest.raises(ExportError, match="give a batch number or 'last'"):
            batch_id_of(conn, "-1; DROP TABLE batches")
        with pytest.raises(ExportError, match=r"no batch 7 in the journal \(no batch yet\)"):
            batch_id_of(conn, "7")
    finally:
        conn.close()


def test_tags_become_plain_identifier_parts() -> None:
    assert [tag_key(t) for t in ("P-201", "XV.102", "p_2", "--")] == ["p201", "xv102", "p2", "x"]


async def test_a_batch_pruned_takes_its_trend_with_it(tmp_path: Path) -> None:
    day_ms = 86_400_000
    now = 1000 * day_ms
    journal = _journal(tmp_path / "journal.sqlite3")
    await journal.open()
    try:
        old = journal.batch_started(
            ts_ms=now - 800 * day_ms, recipe="r", recipe_sha256=SHA, trend_meta=META
        )
        for i in range(3):
            _row(journal, old, now - 800 * day_ms + i * 1000, total=float(i))
        journal.batch_finished(old, ts_ms=now - 800 * day_ms + 3000, final_state="COMPLETE",
                               record={})  # fmt: skip
        kept = journal.batch_started(ts_ms=now - day_ms, recipe="r", recipe_sha256=SHA,
                                     trend_meta=META)  # fmt: skip
        _row(journal, kept, now - day_ms, total=0.0)
        counts = await journal.prune(now_ms=now, keep_days=90, keep_batches_days=730, chunk=2)
        assert (counts["batches"], counts["trend"]) == (1, 3)
        assert await journal.trend(old) == []
        assert len(await journal.trend(kept)) == 1
    finally:
        await journal.close()


async def test_a_restart_goes_on_from_the_newest_stamp_of_any_kind(tmp_path: Path) -> None:
    # A sped-up run whose trend (or clock mark) ran on past its last event: the next run's
    # clock, and the interruption it finds, come after all of it.
    path = tmp_path / "journal.sqlite3"
    ahead = int(WALL_S * 1000) + 3_600_000
    crashed = _journal(path)
    await crashed.open()
    crashed.record_event(ts_ms=ahead, kind="state", text="x", data={})
    batch = crashed.batch_started(ts_ms=ahead, recipe="r", recipe_sha256=SHA, trend_meta=META)
    _row(crashed, batch, ahead + 60_000, total=1.0)
    crashed.mark_clock(ahead + 90_000)
    await crashed.flush()
    later = _journal(path)
    await later.open()
    try:
        assert await later.latest_ts() == ahead + 91_000  # the interruption found, stamped
    finally:
        await later.close()
        await crashed.close()
    export = _exported(path)["batch"]
    assert export["end_ts"] == ahead + 60_000
    assert export["detected_ts"] == ahead + 91_000


async def test_a_batch_whose_run_is_gone_exports_as_the_next_start_will_record_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    crashed = _journal(path)
    await crashed.open()
    batch = crashed.batch_started(ts_ms=1000, recipe="r", recipe_sha256=SHA, trend_meta=META)
    for i in range(3):
        _row(crashed, batch, 2000 + i * 1000, total=2.0 + i)
    await crashed.flush()
    conn = open_journal(path)
    try:
        alive = batch_export(conn, batch, unit="u1", site="lab")["batch"]
        gone = batch_export(conn, batch, unit="u1", site="lab", run_alive=False)["batch"]
    finally:
        conn.close()
        await crashed.close()
    assert (alive["running"], alive["final_state"], alive["end_ts"]) == (True, None, None)
    assert (gone["running"], gone["final_state"], gone["interrupted"]) == (
        False, "interrupted", True
    )  # fmt: skip
    assert (gone["end_ts"], gone["detected_ts"]) == (4000, None)
    assert gone["reagents_ml"] == {"P-201": 4.0}


async def test_batches_of_untagged_rows_are_read_by_time_beside_tagged_ones(
    tmp_path: Path,
) -> None:
    # A file of an earlier release (or written by one rolled back to) has rows that name no
    # batch: its batches are read by time, as before; a new batch whose stamps overlap one of
    # them (the clock stepped back) keeps only its own rows, and the old one takes none of its
    # own (untagged rows between new batches, in the old window, it would: read by time).
    path = tmp_path / "journal.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE events (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL,
          text TEXT NOT NULL, data TEXT NOT NULL);
        CREATE TABLE commands (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,
          source TEXT NOT NULL, command TEXT NOT NULL, args TEXT NOT NULL, ok INTEGER NOT NULL,
          error TEXT, result TEXT);
        CREATE TABLE batches (id INTEGER PRIMARY KEY, recipe TEXT NOT NULL,
          recipe_sha256 TEXT NOT NULL, start_ts INTEGER NOT NULL, end_ts INTEGER,
          final_state TEXT, record TEXT, detected_ts INTEGER, last_ts INTEGER, trend_meta TEXT);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO batches VALUES (1, 'old', 'ab', 1000, 9000, 'COMPLETE', '{}', NULL, 9000,
          '{}');
        INSERT INTO events (ts_ms, kind, text, data) VALUES (2000, 'phase', 'phase old', '{}');
        INSERT INTO commands (ts_ms, source, command, args, ok, error, result)
          VALUES (9500, 'console:tech', 'stop', '{}', 1, NULL, NULL);
        PRAGMA user_version = 2;
        """
    )
    conn.close()
    journal = _journal(path)
    await journal.open()
    batch = journal.batch_started(ts_ms=3000, recipe="new", recipe_sha256=SHA, trend_meta=META)
    journal.record_event(ts_ms=3000, kind="phase", text="phase new", data={})
    journal.record_command(
        ts_ms=4000, source="console:tech", command="hold", args={}, ok=True, error=None,
        result=None,
    )  # fmt: skip
    journal.batch_finished(batch, ts_ms=5000, final_state="STOPPED", record={})
    await journal.close()
    with sqlite3.connect(path) as conn:  # the release before opens it still
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    old, new = _exported(path, "1"), _exported(path, "2")
    assert batch == 2
    assert [e["text"] for e in old["events"]] == ["phase old"]
    assert [c["command"] for c in old["commands"]] == ["stop"]
    assert [e["text"] for e in new["events"]] == ["phase new"]
    assert [c["command"] for c in new["commands"]] == ["hold"]


async def test_a_cut_short_batch_ends_at_its_own_last_row(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    crashed = _journal(path)
    await crashed.open()
    crashed.batch_started(ts_ms=10_000, recipe="r", recipe_sha256=SHA, trend_meta=META)
    crashed.record_event(ts_ms=12_000, kind="phase", text="phase heat", data={})
    await crashed.flush()
    await crashed.close(clean=False)
    later = _journal(path)  # a run whose clock is behind: its rows are not the batch's
    await later.open()
    later.record_event(ts_ms=11_000, kind="state", text="ABORTED -> CLEARING", data={})
    later.record_event(ts_ms=30_000, kind="state", text="STOPPED -> RESETTING", data={})
    await later.close()
    export = _exported(path)["batch"]
    assert (export["final_state"], export["end_ts"]) == ("interrupted", 12_000)


async def test_a_command_after_a_batch_ended_by_itself_is_not_the_batchs(
    tmp_path: Path,
) -> None:
    # Stop and abort are answered as the batch enters Stopping or Aborting, still its own; a
    # stop sent after a batch completed belongs to no batch.
    path = tmp_path / "journal.sqlite3"
    journal = _journal(path)
    await journal.open()
    batch = journal.batch_started(ts_ms=1000, recipe="r", recipe_sha256=SHA, trend_meta=META)
    journal.record_event(ts_ms=1000, kind="state", text="STARTING -> EXECUTE", data={})
    journal.record_command(
        ts_ms=1500, source="console:tech", command="hold", args={}, ok=True, error=None,
        result=None,
    )  # fmt: skip
    journal.batch_finished(batch, ts_ms=2000, final_state="COMPLETE", record={})
    journal.record_command(
        ts_ms=5000, source="mqtt:ops", command="stop", args={}, ok=True, error=None, result=None
    )
    await journal.close()
    assert [c["command"] for c in _exported(path)["commands"]] == ["hold"]


async def test_a_journal_stamped_schema_3_by_a_build_of_the_day_is_read_and_stamped_2(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = _journal(path)
    await journal.open()
    await journal.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 3")
    open_journal(path).close()  # export reads it
    again = _journal(path)
    await again.open()
    await again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


async def test_a_confirmation_journaled_without_its_phase_goes_to_the_phase_it_ended(
    tmp_path: Path,
) -> None:
    # Journals of earlier releases: the confirmation ended its phase, so it lies at the very
    # start of the next one, which by time alone would take it.
    path = tmp_path / "journal.sqlite3"
    journal = _journal(path)
    await journal.open()
    batch = journal.batch_started(ts_ms=1000, recipe="r", recipe_sha256=SHA, trend_meta=META)
    journal.record_event(
        ts_ms=1990,
        kind="command",
        text="confirmed 'Charged' by console:tech",
        data={"command": "confirm", "source": "console:tech", "prompt": "Charged"},
    )
    record = {
        "phases": [
            {"name": "charge", "start_s": 0.0, "end_s": 1.0},
            {"name": "heat", "start_s": 1.0, "end_s": 2.0},
        ],
    }
    journal.batch_finished(batch, ts_ms=3000, final_state="COMPLETE", record=record)
    await journal.close()
    export = _exported(path)
    assert export["phases"][1]["start_ts"] == 1990
    assert [c["phase"] for c in export["confirmations"]] == ["charge"]
