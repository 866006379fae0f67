"""The pH calibration-due alarm says why it is due: never calibrated, cleared, or its age."""

from __future__ import annotations

from pathlib import Path

from tests.rig import Rig
from unit_controller.daemon.housekeeping import Housekeeping
from unit_controller.journal.store import Journal
from unit_controller.mqtt.payloads import EpochClock

EPOCH_S = 1_700_000_000.0


async def _due_message(tmp_path: Path, actions: list[str]) -> str:
    rig = Rig()
    journal = Journal(path=tmp_path / "journal.sqlite3", wall=lambda: EPOCH_S)
    await journal.open()
    try:
        for n, action in enumerate(actions):
            journal.record_calibration(
                ts_ms=int(EPOCH_S * 1000) - 1000 + n, device="AT-101", kind="ph", action=action,
                data={},
            )  # fmt: skip
        await journal.flush()
        housekeeping = Housekeeping(
            config=rig.config,
            controller=rig.controller,
            journal=journal,
            clock=rig.clock,
            epoch=EpochClock(clock=rig.clock, wall=lambda: EPOCH_S),
        )
        await housekeeping.update_calibration_due()
    finally:
        await journal.close()
    (alarm,) = [a for a in rig.controller.alarms.active() if a.alarm_id == "ph_calibration_due"]
    return alarm.message


async def test_a_probe_cleared_after_its_calibrations_is_said_cleared_not_never_calibrated(
    tmp_path: Path,
) -> None:
    # Found by a field tech: `cal ph clear` after mid points read "never calibrated".
    message = await _due_message(tmp_path, ["mid", "low", "clear"])
    assert "its calibration was cleared" in message
    assert "never" not in message


async def test_a_probe_with_no_calibration_at_all_is_said_never_calibrated(tmp_path: Path) -> None:
    assert "never calibrated" in await _due_message(tmp_path, [])
