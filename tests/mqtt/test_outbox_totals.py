"""Outbox totals and deletes: kept in `meta` with the rows, trusted at open, migrated once;
acks deleted in id ranges that never reach a row the broker has not acked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from unit_controller.mqtt.outbox import Outbox, OutboxRow
from unit_controller.mqtt.outbox_db import MEMO_ROWS, SCHEMA_VERSION, id_runs

EVERYTHING = 10**12
WALL = 1_700_000_000.0


def _outbox(path: Path, *, max_bytes: int = 1_000_000) -> Outbox:
    return Outbox(path=path, max_bytes=max_bytes, max_age_s=3600.0, wall=lambda: WALL)


def _on_disk(path: Path) -> tuple[dict[str, int], tuple[int, int]]:
    """What `meta` says, and what the rows hold (count, bytes)."""
    with sqlite3.connect(path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        counted = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
    return meta, (int(counted[0]), int(counted[1]))


def _stored_totals(path: Path) -> tuple[int, int]:
    meta, _ = _on_disk(path)
    return meta["pending_rows"], meta["pending_bytes"]


async def _all(box: Outbox) -> list[OutboxRow]:
    return await box.read(after_id=0, up_to_id=EVERYTHING, limit=1_000_000)


async def test_meta_totals_follow_every_put_ack_and_drop_in_the_same_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.sqlite3"
    async with _outbox(path, max_bytes=30) as box:
        for payload in (b"aaaaaaaaaa", b"bbbbbbbbbb", b"cc"):
            box.put("telemetry", payload)
        a, _, _ = await box.flush()
        meta, rows = _on_disk(path)
        assert (meta["pending_rows"], meta["pending_bytes"]) == rows == (3, 22)

        box.ack(a.id)
        await box.flush()
        meta, rows = _on_disk(path)
        assert (meta["pending_rows"], meta["pending_bytes"]) == rows == (2, 12)

        box.put("telemetry", b"d" * 20)  # 32 bytes stored > 30: the oldest goes
        await box.flush()
        meta, rows = _on_disk(path)
        assert (meta["pending_rows"], meta["pending_bytes"]) == rows == (2, 22)
        assert (meta["dropped_total"], box.dropped_total) == (1, 1)
        assert (box.pending_count, box.pending_bytes) == (2, 22)


async def test_reopen_takes_the_totals_from_meta_without_counting_rows(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    async with _outbox(path) as box:
        for i in range(5):
            box.put("telemetry", b"%04d" % i)
        await box.flush()
    async with _outbox(path) as box:
        assert (box.pending_count, box.pending_bytes) == (5, 20)
    # Proof that open reads meta and not the rows: totals edited by hand are believed.
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = 1234 WHERE key = 'pending_rows'")
    async with _outbox(path) as box:
        assert box.pending_count == 1234


async def test_a_file_of_the_previous_schema_gets_its_totals_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with sqlite3.connect(path) as conn:  # as release 1 left it: rows, counters, no totals
        conn.executescript(
            """
            CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                created_ms INTEGER NOT NULL, size INTEGER NOT NULL, payload BLOB NOT NULL);
            CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER);
            CREATE TABLE seen_commands (id TEXT PRIMARY KEY, exp_ms INTEGER);
            INSERT INTO meta VALUES ('boot', 4), ('session', 9), ('dropped_total', 2);
            PRAGMA user_version = 1;
            """
        )
        conn.executemany(
            "INSERT INTO outbox (kind, created_ms, size, payload) VALUES ('telemetry', ?, ?, ?)",
            [(int(WALL * 1000), len(p), p) for p in (b"one", b"three", b"seven!!")],
        )
    async with _outbox(path) as box:
        assert (box.boot, box.dropped_total) == (5, 2)
        assert (box.pending_count, box.pending_bytes) == (3, 15)
        first, *_ = await _all(box)
        box.ack(first.id)
        await box.flush()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert _stored_totals(path) == (2, 12)
    async with _outbox(path) as box:
        assert (box.pending_count, box.pending_bytes) == (2, 12)


async def test_acks_delete_whole_runs_of_ids_but_never_a_row_not_acked(tmp_path: Path) -> None:
    async with _outbox(tmp_path / "o.sqlite3") as box:
        for i in range(1, 11):
            box.put("telemetry", b"%02d" % i)
        await box.flush()
        for row_id in (1, 2, 3, 5, 6, 9, 10, 4):  # out of order, 7 and 8 never acked
            box.ack(row_id)
        await box.flush()
        assert [r.id for r in await _all(box)] == [7, 8]
        assert (box.pending_count, box.pending_bytes) == (2, 4)


def test_id_runs_are_the_consecutive_stretches_of_the_acked_ids() -> None:
    assert id_runs([1, 2, 3, 7, 9, 8]) == [(1, 3), (7, 9)]
    assert id_runs([5, 5, 4]) == [(4, 5)]
    assert id_runs([]) == []
    assert id_runs([42]) == [(42, 42)]


async def test_an_ack_of_a_row_no_longer_remembered_counts_when_its_delete_commits(
    tmp_path: Path,
) -> None:
    async with _outbox(tmp_path / "o.sqlite3") as box:
        for _ in range(MEMO_ROWS + 10):
            box.put("telemetry", b"x")
        rows = await box.flush()
        total = len(rows)
        box.ack(rows[0].id)  # beyond the memory of recent sizes: counted at the commit
        assert box.pending_count == total
        box.ack(rows[-1].id)  # recent: stops counting at once
        assert box.pending_count == total - 1
        await box.flush()
        assert (box.pending_count, box.pending_bytes) == (total - 2, total - 2)


async def test_pages_give_back_every_payload_byte_for_byte(tmp_path: Path) -> None:
    payloads = [b"", b"\x00", b"a,b;c\x1f", bytes(range(256)), b"{}" * 5000, b"\xff\x00\xfe"]
    async with _outbox(tmp_path / "o.sqlite3") as box:
        for i, payload in enumerate(payloads):
            box.put(("telemetry", "event", "cmd_result")[i % 3], payload)
        written = await box.flush()
        assert await _all(box) == written
        assert [r.payload for r in await box.read(after_id=2, up_to_id=5, limit=2)] == [
            payloads[2],
            payloads[3],
        ]


async def test_a_kind_holding_the_page_separator_is_refused(tmp_path: Path) -> None:
    async with _outbox(tmp_path / "o.sqlite3") as box:
        with pytest.raises(ValueError, match="never holds"):
            box.put("tele\x1fmetry", b"x")
        assert box.pending_count == 0
