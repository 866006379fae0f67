"""A failing disk under a running batch: the storage alarm says what is not being saved, the
status flag follows it, control goes on, and everything held in memory is written once the
disk takes writes again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.rig import Rig
from unit_controller.journal import Journal, JournalError, JournalRecorder
from unit_controller.machine import State
from unit_controller.mqtt.outbox import Outbox
from unit_controller.mqtt.outbox_db import OutboxError
from unit_controller.storage_watch import STORAGE_FAILING, StorageWatch, storage_failing

EPOCH_MS = 1_700_000_000_000
FULL = "database or disk is full"


def _storage_alarms(rig: Rig) -> dict[str, Any]:
    return {
        a.tag: a
        for a in rig.controller.alarms.active()
        if a.alarm_id == STORAGE_FAILING and a.returned_at is None
    }


async def test_a_full_disk_raises_storage_failing_and_the_batch_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = Rig()
    journal = Journal(path=tmp_path / "journal.sqlite3", wall=lambda: EPOCH_MS / 1000)
    outbox = Outbox(path=tmp_path / "outbox.sqlite3", max_bytes=1 << 20, max_age_s=3600)
    await journal.open()
    await outbox.open()
    try:
        JournalRecorder(
            controller=rig.controller, journal=journal, epoch_ms=lambda at: EPOCH_MS
        ).attach()
        rig.controller.listen(lambda event: outbox.put("event", b"{}"))
        watch = StorageWatch(rig.controller)
        watch.watch("journal", lambda: journal.write_error, loses="events are held in memory")
        watch.watch("outbox", lambda: outbox.write_error, loses="telemetry is held in memory")
        await rig.start("smoke")
        await watch.check()
        assert _storage_alarms(rig) == {}

        def full(*args: Any, **kwargs: Any) -> Any:
            raise JournalError(journal.path, FULL)

        def full_outbox(*args: Any, **kwargs: Any) -> Any:
            raise OutboxError(outbox.path, FULL)

        with monkeypatch.context() as disk:
            disk.setattr(journal._db, "write", full)
            disk.setattr(outbox._store, "flush", full_outbox)
            await rig.run_for(30.0)
            with pytest.raises(JournalError):
                await journal.flush()
            with pytest.raises(OutboxError):
                await outbox.flush()
            await watch.check()
            alarms = _storage_alarms(rig)
            assert set(alarms) == {"journal", "outbox"}
            assert "the journal cannot write (" in alarms["journal"].message
            assert FULL in alarms["journal"].message
            assert "events are held in memory" in alarms["journal"].message
            assert storage_failing(rig.controller.alarms.active())
            # Control goes on: the batch is still running.
            snap = await rig.run_for(30.0)
            assert snap.state is State.EXECUTE

        await journal.flush()
        await outbox.flush()
        await watch.check()
        assert _storage_alarms(rig) == {}
        assert not storage_failing(rig.controller.alarms.active())
        snap = await rig.run_until(lambda s: s.state is State.COMPLETE, limit_s=3600)
        assert snap.state is State.COMPLETE
        await journal.flush()
        events = [e["text"] for e in await journal.recent(1000)]
        assert any("storage_failing" in text for text in events)
    finally:
        await outbox.close()
        await journal.close()


async def test_batch_says_how_a_batch_ended_while_the_journal_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It said "not finished (found interrupted at the next start)" of a batch that had run to
    # COMPLETE, because the journal had not taken the batch's end yet.
    from unit_controller.control_socket.args import BatchArgs
    from unit_controller.control_socket.ops import Operations, Session

    rig = Rig()
    journal = Journal(path=tmp_path / "journal.sqlite3", wall=lambda: EPOCH_MS / 1000)
    await journal.open()
    try:
        recorder = JournalRecorder(
            controller=rig.controller, journal=journal, epoch_ms=lambda at: EPOCH_MS
        )
        recorder.attach()
        template = rig.operations()
        ops = Operations(
            config=rig.config,
            controller=rig.controller,
            calibrations=template.calibrations,
            journal=journal,
            epoch=template.epoch,
            recipes_dir=rig.recipes_dir,
            batch_id=lambda: recorder.batch_id,
            ended_batch=lambda: recorder.ended,
            ph_calibration_due=lambda: False,
            on_calibrated=lambda: None,
        )
        await rig.start("smoke")
        await rig.run_for(10.0)
        await journal.flush()  # the batch is in the journal, open

        def full(*args: Any, **kwargs: Any) -> Any:
            raise JournalError(journal.path, FULL)

        with monkeypatch.context() as disk:
            disk.setattr(journal._db, "write", full)
            await rig.run_until(lambda s: s.state is State.COMPLETE, limit_s=4000)
            with pytest.raises(JournalError):
                await journal.flush()
            answer = (await ops._batch(Session(user="tech"), BatchArgs()))["batch"]
            assert (answer["final_state"], answer["unsaved"]) == ("COMPLETE", True)
            assert answer["record"]["phases"][-1]["end_s"] is not None  # the whole record
        await journal.flush()
        answer = (await ops._batch(Session(user="tech"), BatchArgs()))["batch"]
        assert answer["final_state"] == "COMPLETE"
        assert "unsaved" not in answer
    finally:
        await journal.close()
