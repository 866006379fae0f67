"""The daemon on the serial backend, against the emulated instruments on ptys, as a unit boots.

Real time: the daemon scans from its start, before the relay board's first answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.harness import ROOT, WAIT_S, Control, Daemon


@pytest.fixture
def emulated_unit(tmp_path: Path) -> Iterator[Path]:
    """`unit-controller emulate` running; the config that points at its ports."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "unit_controller.cli", "emulate", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "emulate.log").open("wb"),
        env={
            **{k: v for k, v in os.environ.items() if not k.endswith("_DIRECTORY")},
            "TMPDIR": str(tmp_path),  # where it writes the config
        },
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, (tmp_path / "emulate.log").read_text(errors="replace")
        yield Path(json.loads(line)["config"])
    finally:
        proc.terminate()
        proc.wait(WAIT_S)


async def test_a_start_before_the_first_poll_raises_no_alarm(
    tmp_path: Path, emulated_unit: Path
) -> None:
    # Each start (a restart after an update, a watchdog restart) had left a critical, first-out
    # "E-stop input bad: no_reading_yet" to acknowledge, and the unit's authority taken.
    daemon = Daemon(tmp_path / "unit", speed=1.0, args=("--config", str(emulated_unit)))
    await daemon.start()
    try:
        async with Control(daemon.socket) as control:
            status = await control.until(
                lambda s: not s["bad"] and s["levels"], what="every input read"
            )
            assert status["state"] == "STOPPED"
            alarms = (await control.request("alarms"))["result"]["alarms"]
            # Only the never-calibrated probe's reminder.
            assert [a["id"] for a in alarms if a["priority"] != "low"] == [], alarms
    finally:
        assert daemon.terminate() == 0, daemon.log_tail()
