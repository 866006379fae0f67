"""The batch record of a real daemon: live while it runs, and right after a kill -9.

The daemon runs sped up on the simulator; every wait is on what it reports, bounded.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.daemon.harness import ROOT, Control, Daemon

SCAN_MS = 100  # the example config's scan period
SPEED = 50.0  # the daemon's simulated plant runs this many times real time
P204_ML_S = 300.0 / 4.0 / 60.0  # smoke's heat phase: 300 mL of ammonia over 4 min


def _export(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unit_controller.cli", "journal", "export",
         "--state-dir", str(daemon.state), *args],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
    )  # fmt: skip


async def test_a_batch_killed_while_dosing_ends_at_its_last_record_with_the_dose(
    tmp_path: Path,
) -> None:
    daemon = Daemon(tmp_path, speed=SPEED)
    await daemon.start()
    try:
        async with Control(daemon.socket) as control:
            await control.start_batch("smoke")
            # The heat phase charges ammonia (P-204) from its start.
            status = await control.until(
                lambda s: (s["reagents_ml"] or {}).get("P-204", 0.0) >= 5.0,
                what="dosing P-204",
                within_s=60.0,
            )
            assert status["phase"] == "heat"
            # While it runs, `batch` gives the record as of now: reagents and progress so far.
            live = (await control.request("batch"))["result"]["batch"]
            assert live["running"] is True
            assert live["final_state"] is None
            assert live["record"]["reagents_ml"]["P-204"] >= 5.0
            last = await control.status()
            seen_at = time.monotonic()
        daemon.kill()
        killed_at = time.monotonic()
    except BaseException:
        daemon.kill()
        raise
    # Where the unit's clock stood at the kill, at the latest (SPEED× real time since the status).
    kill_ts = last["ts"] + (killed_at - seen_at) * SPEED * 1000
    dosed = last["reagents_ml"]["P-204"]

    # Hours later, as after a power cut: the record must not be stamped at the reboot.
    await daemon.start()
    assert daemon.terminate() == 0
    done = _export(daemon, "--format", "json")
    assert done.returncode == 0, done.stderr
    export: dict[str, Any] = json.loads(done.stdout)
    batch = export["batch"]
    assert batch["final_state"] == "interrupted"
    assert batch["interrupted"] is True
    assert batch["end_ts"] <= kill_ts + SCAN_MS
    assert batch["detected_ts"] is not None
    assert batch["detected_ts"] > batch["end_ts"]
    # The dose of the phase the kill cut short is in the totals, up to the record's end (the
    # journal commits every 0.2 s of real time: 0.2 × SPEED s of this run's clock at most).
    unrecorded_s = max(0.0, (last["ts"] - batch["end_ts"]) / 1000)
    assert unrecorded_s <= 0.2 * SPEED + 1.0
    assert batch["reagents_ml"]["P-204"] >= dosed - P204_ML_S * unrecorded_s - 0.1
    assert export["phases"][-1]["name"] == "heat"
    assert export["phases"][-1]["end_ts"] == batch["end_ts"]
    # The trend runs up to the kill, a row a second of the unit's clock.
    columns = export["trend"]["columns"]
    rows = export["trend"]["rows"]
    ts = [row[columns.index("ts")] for row in rows]
    assert ts == sorted(ts)
    assert ts[-1] <= batch["end_ts"]
    assert rows[-1][columns.index("reagent_p204_ml")] == batch["reagents_ml"]["P-204"]

    csv = _export(daemon, "--format", "csv", "--batch", str(batch["id"]))
    assert csv.returncode == 0, csv.stderr
    header, *lines = csv.stdout.splitlines()
    assert header.split(",")[:8] == [
        "ts", "state", "phase", "temperature_c", "temperature_sp_c", "ph", "ph_sp", "heater_duty"
    ]  # fmt: skip
    assert len(lines) == len(rows)


async def test_a_pump_calibration_is_journaled_with_the_login_that_did_it(
    tmp_path: Path,
) -> None:
    daemon = Daemon(tmp_path)
    await daemon.start()
    try:
        async with Control(daemon.socket, client="console") as console:
            assert (await console.request("manual", on=True))["ok"]
            jog = await console.request("jog_pump", pump="P-203", ml=10.0, cylinder=True)
            assert jog["ok"], jog
            # Refused while the jog still runs: asked again (bounded) until it has dispensed.
            for _ in range(600):
                done = await console.request("cal_pump", pump="P-203", measured_ml=9.6)
                if done["ok"]:
                    break
                await asyncio.sleep(0.05)
            assert done["ok"], done
            who = (await console.request("identify", client="console"))["result"]["source"]
            assert who.startswith("console:")
            assert who != "console:unknown"
            entries = (await console.request("log", n=20))["result"]["entries"]
    finally:
        assert daemon.terminate() == 0
    (entry,) = [e for e in entries if e.get("command") == "cal_pump" and e["ok"]]
    assert entry["source"] == who
    # The controller's own account of it names the same login, once.
    assert entry["detail"] == f"pump calibration P-203 9.6 mL by {who}"
    assert not [e for e in entries if e["kind"] == "command" and e is not entry
                and "pump calibration" in e["text"]]  # fmt: skip
    # The calibration itself keeps who did it (the command log is pruned sooner).
    db = sqlite3.connect(daemon.journal)
    try:
        (data,) = db.execute("SELECT data FROM calibrations WHERE kind = 'pump'").fetchone()
    finally:
        db.close()
    assert json.loads(data)["by"] == who
