"""Where a batch is, as status and telemetry tell it: phase n of m, time in it, the least time
its timed conditions still need, and what event it also waits for."""

from __future__ import annotations

from tests.rig import Rig
from unit_controller.batch.phase_runner import progress_dict


async def test_progress_follows_the_smoke_batch() -> None:
    rig = Rig()
    snap = await rig.start("smoke")
    assert snap.progress is not None
    fill = progress_dict(snap.progress)
    # Filling ends on a level switch: no clock can tell when.
    assert fill | {"phase_elapsed_s": None} == {
        "phase_no": 1,
        "phase_count": 5,
        "phase_elapsed_s": None,
        "phase_remaining_s": None,
        "phase_waits_on_event": True,
        "phase_waits_for": "level low reached",
    }
    snap = await rig.run_until(lambda s: s.phase == "heat", limit_s=900)
    snap = await rig.run_for(60.0)
    heat = progress_dict(snap.progress)
    assert (heat["phase_no"], heat["phase_waits_for"]) == (2, "30 °C reached")
    # 300 mL over 4 min from the phase's start: about 3 min of dosing left after 1 min.
    progress = snap.progress
    assert progress is not None
    assert 55.0 <= progress.elapsed_s <= 65.0
    assert progress.remaining_s is not None
    assert 170.0 <= progress.remaining_s <= 190.0
    assert heat["phase_remaining_s"] == round(progress.remaining_s, 1)
    await rig.controller.command("abort", source="test")
    await rig.run_for(1.0)
    assert rig.controller.snapshot is not None
    assert rig.controller.snapshot.progress is None
    assert set(progress_dict(None).values()) == {None}


def test_a_phase_event_counts_its_phase_from_one_beside_its_index() -> None:
    # Telemetry's phase_no counts from 1: a back end joining events to it must not be off by one.
    from unit_controller.events import PhaseStarted

    started = PhaseStarted(at=0.0, phase="heat", index=1)
    assert started.data == {"phase": "heat", "index": 1, "phase_no": 2}
