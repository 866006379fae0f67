"""The recorder as an operator would read its journal: whole batches on the simulated unit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest

from tests.rig import Rig
from unit_controller.journal import Journal, JournalRecorder
from unit_controller.journal.export import batch_export, open_journal
from unit_controller.machine import State

EPOCH_MS = 1_700_000_000_000
PHASES = ["fill", "heat", "ph", "drain", "drain_heel"]


def _epoch_ms(at: float) -> int:
    return EPOCH_MS + round(at * 1000)


@dataclass(frozen=True)
class Journaled:
    """What the journal held after a batch, and what the recorder said along the way."""

    batch: dict[str, Any]
    batches: list[dict[str, Any]]
    recent: list[dict[str, Any]]
    id_while_executing: int | None
    id_after: int | None
    sha256: str


async def _journal_a_batch(
    path: Path, *, recipe: str, fault_after_s: float | None, end: State
) -> Journaled:
    rig = Rig()
    journal = Journal(path=path, wall=lambda: EPOCH_MS / 1000)
    await journal.open()
    try:
        recorder = JournalRecorder(controller=rig.controller, journal=journal, epoch_ms=_epoch_ms)
        recorder.attach()
        recorder.attach()  # a second attach must not journal everything twice
        await rig.start(recipe)
        id_while_executing = recorder.batch_id
        if fault_after_s is not None:
            await rig.run_for(fault_after_s)
            rig.inject("estop")
        await rig.run_until(lambda s: s.state is end, limit_s=3 * 3600)
        assert rig.controller.recipe is not None
        batch = await journal.batch()
        assert batch is not None
        return Journaled(
            batch=batch,
            batches=await journal.batches(),
            recent=await journal.recent(1000),
            id_while_executing=id_while_executing,
            id_after=recorder.batch_id,
            sha256=rig.controller.recipe.sha256,
        )
    finally:
        await journal.close()


@cache
def journaled(*, fault_after_s: float | None = None) -> Journaled:
    """One smoke batch (shared by the tests that judge it; the simulation is seeded)."""
    end = State.COMPLETE if fault_after_s is None else State.ABORTED
    with TemporaryDirectory() as tmp:
        return asyncio.run(
            _journal_a_batch(
                Path(tmp) / "journal.sqlite3", recipe="smoke", fault_after_s=fault_after_s, end=end
            )
        )


def test_a_completed_batch_is_journaled_with_its_recipe_hash_and_times() -> None:
    done = journaled()
    batch = done.batch
    assert done.id_while_executing == batch["id"] == 1
    assert done.id_after is None
    assert (batch["recipe"], batch["recipe_sha256"]) == ("smoke", done.sha256)
    assert batch["final_state"] == "COMPLETE"
    assert EPOCH_MS < batch["start_ts"] < batch["end_ts"]
    assert [b["id"] for b in done.batches] == [1]


def test_the_batch_record_has_each_phase_with_times_and_temperature_and_ph_statistics() -> None:
    record = journaled().batch["record"]
    assert record["basis"] == "measured"  # the unit's own probes, never the simulator's truth
    phases = record["phases"]
    assert [p["name"] for p in phases] == PHASES
    for phase in phases:
        assert phase["start_s"] < phase["end_s"]
        assert phase["t_min"] <= phase["t_mean"] <= phase["t_max"]
        assert phase["ph_min"] <= phase["ph_mean"] <= phase["ph_max"]
    heat, ph = phases[1], phases[2]
    assert heat["temperature_sp_c"] == 30.0
    assert heat["ph_sp"] is None
    assert heat["ph_in_band_fraction"] is None
    assert ph["ph_sp"] == 9.5
    assert 0 < ph["ph_in_band_fraction"] <= 1
    assert ph["t_mean"] == pytest.approx(30.0, abs=1.0)
    assert record["reagents_ml"]["P-204"] == pytest.approx(300.0, abs=1.0)
    assert record["reagents_ml"]["P-201"] > 0
    assert record["alarms"] == []


def test_the_journal_holds_the_state_and_phase_changes_of_the_batch() -> None:
    texts = [e["text"] for e in journaled().recent]
    kinds = {e["kind"] for e in journaled().recent}
    assert {"state", "phase", "command"} <= kinds
    assert "STARTING -> EXECUTE (state_complete)" in texts
    assert [t for t in texts if t.startswith("phase ")] == [f"phase {p}" for p in PHASES]
    assert texts[-1] == "COMPLETING -> COMPLETE (state_complete)"
    stamps = [e["ts"] for e in journaled().recent]
    assert stamps == sorted(stamps)


def test_an_estop_batch_is_journaled_aborted_with_its_alarm() -> None:
    aborted = journaled(fault_after_s=120.0)
    batch = aborted.batch
    assert batch["final_state"] == "ABORTED"
    assert [a["id"] for a in batch["record"]["alarms"]] == ["estop"]
    assert batch["record"]["phases"][0]["name"] == "fill"
    alarms = [e for e in aborted.recent if e["kind"] == "alarm"]
    assert alarms[0]["data"]["alarm_id"] == "estop"
    assert alarms[0]["data"]["transition"] == "raised"


async def _two_batches_on_one_clock(path: Path) -> list[dict[str, Any]]:
    # Both runs stamp from the same epoch: the second run's clock is behind the first's stamps,
    # as after a sped-up run or a wall clock stepped back.
    for _ in range(2):
        rig = Rig()
        journal = Journal(path=path, wall=lambda: EPOCH_MS / 1000)
        await journal.open()
        try:
            JournalRecorder(controller=rig.controller, journal=journal, epoch_ms=_epoch_ms).attach()
            await rig.start("smoke")
            await rig.run_until(lambda s: s.state is State.COMPLETE, limit_s=3 * 3600)
        finally:
            await journal.close()
    conn = open_journal(path)
    try:
        return [batch_export(conn, n, unit="u1", site="lab") for n in (1, 2)]
    finally:
        conn.close()


def test_batches_whose_stamps_overlap_each_keep_only_their_own_events(tmp_path: Path) -> None:
    exports = asyncio.run(_two_batches_on_one_clock(tmp_path / "journal.sqlite3"))
    first, second = exports
    assert first["batch"]["start_ts"] <= second["batch"]["start_ts"] < first["batch"]["end_ts"]
    for export in exports:
        texts = [e["text"] for e in export["events"]]
        assert [t for t in texts if t.startswith("phase ")] == [f"phase {p}" for p in PHASES]
        assert texts.count("STARTING -> EXECUTE (state_complete)") == 1
        assert texts[-1] == "COMPLETING -> COMPLETE (state_complete)"
        starts = [c for c in export["commands"] if c["command"] == "start"]
        assert len(starts) == 1


_CONFIRMED = """\
name = "confirmed"
starts_with = "empty"

[[phases]]
name = "inspect"
timeout_min = 10.0
until = { confirm = "Reactor inspected" }

[[phases]]
name = "settle"
timeout_min = 10.0
until = { duration_min = 0.5 }
"""


async def test_a_confirmation_is_exported_under_the_phase_it_ended(tmp_path: Path) -> None:
    # It ends its phase, so the next begins in the same moment: read by time it was put
    # under the next phase (the leach's charge under "peroxide"), found by a recipe author.
    (tmp_path / "confirmed.toml").write_text(_CONFIRMED, encoding="utf-8")
    rig = Rig(recipes_dir=tmp_path)
    journal = Journal(path=tmp_path / "journal.sqlite3", wall=lambda: EPOCH_MS / 1000)
    await journal.open()
    try:
        JournalRecorder(controller=rig.controller, journal=journal, epoch_ms=_epoch_ms).attach()
        await rig.start("confirmed")
        await rig.run_for(5.0)
        await rig.controller.confirm(source="console:tech")
        await rig.run_until(lambda s: s.state is State.COMPLETE, limit_s=600)
    finally:
        await journal.close()
    export = _export(tmp_path / "journal.sqlite3")
    (confirmation,) = export["confirmations"]
    assert (confirmation["phase"], confirmation["prompt"]) == ("inspect", "Reactor inspected")
    told = [e for e in await _events(tmp_path / "journal.sqlite3") if e["kind"] == "command"]
    assert {"command": "confirm", "phase": "inspect"}.items() <= told[-1]["data"].items()


def _export(path: Path) -> dict[str, Any]:
    """Batch 1 of the journal at `path`, exported."""
    conn = open_journal(path)
    try:
        return batch_export(conn, 1, unit="u1", site="lab")
    finally:
        conn.close()


async def _events(path: Path) -> list[dict[str, Any]]:
    journal = Journal(path=path)
    await journal.open()
    try:
        return await journal.recent(1000)
    finally:
        await journal.close()


async def test_a_batch_completed_by_command_lists_the_phases_it_never_ran(
    tmp_path: Path,
) -> None:
    # Found by a batch operator: `complete` mid-recipe was recorded as a plain COMPLETE, a
    # half-made batch passing for a whole one.
    rig = Rig()
    journal = Journal(path=tmp_path / "journal.sqlite3", wall=lambda: EPOCH_MS / 1000)
    await journal.open()
    try:
        JournalRecorder(controller=rig.controller, journal=journal, epoch_ms=_epoch_ms).attach()
        await rig.start("smoke")
        await rig.run_until(lambda s: s.phase == "heat", limit_s=1800)
        await rig.controller.command("complete", source="console:tech")
        await rig.run_until(lambda s: s.state is State.COMPLETE, limit_s=60)
    finally:
        await journal.close()
    export = _export(tmp_path / "journal.sqlite3")
    assert export["batch"]["final_state"] == "COMPLETE"
    assert [p["name"] for p in export["phases"]] == ["fill", "heat"]
    assert export["batch"]["phases_not_run"] == ["ph", "drain", "drain_heel"]
    # Its figures are the probes', as the README says the records say (found missing by a
    # control engineer: the journal kept it, the export dropped it).
    assert export["batch"]["basis"] == "measured"
    assert [c["command"] for c in export["commands"]][-1] == "complete"
