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


async def test_a_hold_at_setpoint_waits_on_the_setpoint_while_away_from_it() -> None:
    # ph_adjust ends after 3 min at pH setpoint, counted only at setpoint: its "3 min left"
    # stands still until the pH is there, so status says it waits for it (at least 3 min).
    rig = Rig()
    await rig.start("coprecipitation")
    snap = await rig.run_until(lambda s: s.phase == "ph_adjust", limit_s=3600)
    away = progress_dict(snap.progress)
    assert away["phase_waits_on_event"] is True
    assert away["phase_waits_for"] in ("pH 11 ± 0.05", "58 ± 1 °C and pH 11 ± 0.05")
    assert away["phase_remaining_s"] == 180.0
    snap = await rig.run_until(
        lambda s: s.progress is not None and not s.progress.waits_on_event, limit_s=1800
    )
    assert snap.phase == "ph_adjust"
    at = progress_dict(snap.progress)
    assert at["phase_waits_for"] is None
    assert isinstance(at["phase_remaining_s"], float)
    assert at["phase_remaining_s"] < 180.0
