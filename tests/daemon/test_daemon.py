"""`unit-controller run` as a real process on the simulator: start-up, clean stop, kill -9, and
what the control socket answers to good and bad requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.daemon.harness import Control, Daemon

OUTPUTS_OFF = {
    "heater_on": False,
    "contactor": False,
    "agitator": False,
    "fill_pump": False,
    "drain_valve": False,
    "purge_valve": False,
    "cooling_valve": False,
}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    unit = Daemon(tmp_path)
    await unit.start()
    try:
        yield unit
    finally:
        if unit.proc is not None and unit.proc.poll() is None:
            unit.kill()


async def test_starts_stopped_with_every_output_off_and_stops_cleanly_on_sigterm(
    daemon: Daemon,
) -> None:
    async with Control(daemon.socket) as control:
        assert control.hello["state"] == "STOPPED"
        status = await control.until(lambda s: s["state"] is not None, what="scanning")
        assert status["state"] == "STOPPED"
        assert status["outputs"] == OUTPUTS_OFF
        alarms = (await control.request("alarms"))["result"]["alarms"]
        # A brand-new unit has never had its pH probe calibrated.
        assert [a["id"] for a in alarms if a["priority"] == "low"] == ["ph_calibration_due"]
    assert daemon.terminate() == 0
    assert not daemon.socket.exists()

    await daemon.start()
    async with Control(daemon.socket) as control:
        assert control.hello["state"] == "STOPPED"
        alarms = (await control.request("alarms"))["result"]["alarms"]
        assert "batch_interrupted" not in {a["id"] for a in alarms}
    assert daemon.terminate() == 0


async def test_started_with_nohup_it_goes_on_running_through_a_sighup(daemon: Daemon) -> None:
    assert daemon.terminate() == 0
    await daemon.start(nohup=True)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    # A stop takes well under this; the run must simply go on (a slow host can only make this
    # test pass, never fail, with the handler right).
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.proc.wait(3.0)
    assert daemon.proc.poll() is None, daemon.log_tail()
    async with Control(daemon.socket) as control:  # still there, still scanning
        await control.until(lambda s: s["state"] is not None, what="scanning")
    assert daemon.terminate() == 0


async def test_the_terminal_it_ran_in_closing_stops_it_cleanly(daemon: Daemon) -> None:
    assert daemon.terminate() == 0  # the fixture's, with a log: this one runs in a terminal
    master, slave = os.openpty()
    try:
        await daemon.start(terminal=slave)
    finally:
        os.close(slave)  # the daemon holds its own copies
    async with Control(daemon.socket) as control:
        await control.until(lambda s: s["state"] is not None, what="scanning")
    os.close(master)  # the terminal goes (an SSH session dropped); the kernel sends SIGHUP ...
    # ... to the session leader; a daemon started from a shell gets it from the shell.
    assert daemon.terminate(signal.SIGHUP) == 0
    assert not daemon.socket.exists()
    db = sqlite3.connect(daemon.journal)
    try:
        assert db.execute("SELECT value FROM meta WHERE key = 'running'").fetchone() == ("0",)
    finally:
        db.close()


async def test_kill_9_mid_batch_comes_back_aborted_with_the_batch_interrupted(
    daemon: Daemon,
) -> None:
    async with Control(daemon.socket) as control:
        assert (await control.request("reset"))["ok"]
        await control.until(lambda s: s["state"] == "IDLE", what="idle")
        started = await control.request("start", recipe="smoke")
        assert started["ok"], started
        status = await control.until(lambda s: s["phase"] == "heat", what="heating")
        batch_id = status["batch_id"]
        assert batch_id is not None
    daemon.kill()

    db = sqlite3.connect(daemon.journal)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()

    await daemon.start()
    # A routine restart before anyone looked must not hide it.
    assert daemon.terminate() == 0
    await daemon.start()
    async with Control(daemon.socket, client="console") as control:
        assert control.hello["state"] == "ABORTED"
        status = await control.until(lambda s: s["state"] is not None, what="scanning")
        assert status["state"] == "ABORTED"
        # The interrupted batch's liquor may be in there (the simulated reactor starts empty,
        # but nobody has drained its heel): every output off but the N2 blanket.
        assert status["outputs"] == {**OUTPUTS_OFF, "purge_valve": True}
        assert status["pumps_ml_min"] == {} or not any(status["pumps_ml_min"].values())
        alarms = {a["id"]: a for a in (await control.request("alarms"))["result"]["alarms"]}
        assert alarms["batch_interrupted"]["state"] == "latched"
        assert str(batch_id) in alarms["batch_interrupted"]["message"]
        batch = (await control.request("batch", id=batch_id))["result"]["batch"]
        assert batch["final_state"] == "interrupted"
        assert batch["recipe"] == "smoke"
        # What it had done up to the crash is kept: at least the fill phase and its times.
        assert [p["name"] for p in batch["record"]["phases"]][:1] == ["fill"]

        # Never resumed: the tech looks, acknowledges, resets and clears.
        refused = await control.request("reset")
        assert not refused["ok"]
        assert (await control.request("ack", alarm="all"))["ok"]
        assert (await control.request("reset_alarms"))["result"]["count"] >= 1
        assert (await control.request("clear"))["ok"]
        await control.until(lambda s: s["state"] == "STOPPED", what="stopped")
        alarms = (await control.request("alarms"))["result"]["alarms"]
        assert "batch_interrupted" not in {a["id"] for a in alarms}
    assert daemon.terminate() == 0
    await daemon.start()
    async with Control(daemon.socket) as control:
        assert control.hello["state"] == "STOPPED"


async def test_a_second_daemon_on_the_same_unit_stops_before_touching_anything(
    daemon: Daemon,
) -> None:
    async with Control(daemon.socket) as control:
        assert (await control.request("reset"))["ok"]
        assert (await control.request("start", recipe="smoke"))["ok"]
    second = Daemon(daemon.state.parent)
    second.runtime = daemon.state.parent / "run2"
    second.spawn()
    assert second.proc is not None
    assert second.proc.wait(30) == 2
    assert "another unit-controller" in second.log_tail()
    async with Control(daemon.socket) as control:
        status = await control.status()
        assert status["state"] == "EXECUTE"
        alarms = (await control.request("alarms"))["result"]["alarms"]
        assert "batch_interrupted" not in {a["id"] for a in alarms}
        batch = (await control.request("batch"))["result"]["batch"]
        assert batch["final_state"] is None


async def test_bad_requests_get_one_clear_error_and_the_connection_goes_on(
    daemon: Daemon,
) -> None:
    async with Control(daemon.socket) as control:
        not_json = await control.send_line(b"{status\n")
        assert not_json["code"] == "bad_request"
        assert "not JSON" in not_json["error"]
        array = await control.send_line(b"[1, 2]\n")
        assert array["code"] == "bad_request"
        unknown = await control.request("launch")
        assert unknown["code"] == "unknown_op"
        assert "status" in unknown["error"]
        bad_args = await control.request("start", recipe="../../etc/passwd")
        assert bad_args["code"] == "bad_request"
        assert "args.recipe" in bad_args["error"]
        extra = await control.request("hold", force=True)
        assert extra["code"] == "bad_request"
        assert "args.force" in extra["error"]
        not_console = await control.request("jog_pump", pump="P-203", ml=5)
        assert not_console["code"] == "refused"
        assert "console" in not_console["error"]
        wrong_state = await control.request("hold")
        assert wrong_state["code"] == "refused"
        assert (await control.status())["state"] == "STOPPED"

    async with Control(daemon.socket) as control:
        huge = await control.send_line(b'{"op": "status", "pad": "' + b"x" * 70_000 + b'"}\n')
        assert huge["code"] == "bad_request"
        assert "longer than" in huge["error"]

    async with Control(daemon.socket) as control:
        assert (await control.status())["state"] == "STOPPED"


async def test_stats_tells_anyone_on_the_socket_how_punctual_the_scans_are(
    daemon: Daemon,
) -> None:
    async with Control(daemon.socket) as control:
        for _ in range(600):  # until the scan loop has run (the socket answers before it)
            response = await control.request("stats")
            assert response["ok"], response
            if response["result"]["scans"] >= 3:
                break
            await asyncio.sleep(0.05)
        stats = response["result"]
        assert stats["scans"] >= 3
        for figure in ("lateness_ms", "scan_ms"):
            assert set(stats[figure]) == {"p50", "p99", "max"}
            assert stats[figure]["max"] >= stats[figure]["p99"] >= stats[figure]["p50"] >= 0
        # Start-up's objects were frozen out of the collector before the first scan.
        assert stats["gc"]["frozen"] > 1000
        assert len(stats["gc"]["collections"]) == len(stats["gc"]["pause_ms_max"]) == 3
        assert stats["uptime_s"] > 0
        assert stats["rss_mb"] > 0
        recent = (await control.request("stats", window_s=0.5))["result"]
        assert recent["window_scans"] <= recent["scans"]
        refused = await control.request("stats", window_s=-1)
        assert refused["code"] == "bad_request"
        assert "args.window_s" in refused["error"]


async def test_manual_jog_from_the_console_is_journaled_and_refused_during_a_batch(
    daemon: Daemon,
) -> None:
    async with Control(daemon.socket, client="console") as control:
        assert (await control.request("manual", on=True))["ok"]
        # The simulated reactor starts empty: no jog into it, but one into a measuring cylinder.
        dry = await control.request("jog_pump", pump="P-203", ml=2.0)
        assert dry["code"] == "refused", dry
        assert "LSL-101 reads dry" in dry["error"]
        before = await control.until(lambda s: s["ph"] is not None, what="a pH reading")
        jog = await control.request("jog_pump", pump="P-203", ml=20.0, cylinder=True)
        assert jog["ok"], jog
        await control.until(lambda s: any(s["pumps_ml_min"].values()), what="the jog running")
        done = await control.until(
            lambda s: not any(s["pumps_ml_min"].values()), what="the jog finished"
        )
        # A simulated minute on, the probe has long followed whatever went into the reactor;
        # it got none of the base the tech caught in the cylinder.
        after = await control.until(lambda s: s["ts"] >= done["ts"] + 60_000, what="a minute on")
        assert abs(after["ph"] - before["ph"]) < 0.3, (before["ph"], after["ph"])
        assert (await control.request("manual", on=False))["ok"]
        assert (await control.request("reset"))["ok"]
        await control.until(lambda s: s["state"] == "IDLE", what="idle")
        assert (await control.request("start", recipe="smoke"))["ok"]
        await control.until(lambda s: s["state"] == "EXECUTE", what="executing")
        refused = await control.request("manual", on=True)
        assert refused["code"] == "refused"
        cal = await control.request("cal_ph", point="mid", value=7.0)
        assert cal["code"] == "refused"
        entries = (await control.request("log", n=50))["result"]["entries"]
        texts = [e["text"] for e in entries]
        assert any("jog_pump by console:" in t for t in texts), texts
        assert any("manual by console:" in t and "refused" in t for t in texts), texts
        assert (await control.request("abort"))["ok"]


async def test_manual_mode_ends_with_the_console_session_that_turned_it_on(
    daemon: Daemon,
) -> None:
    async with Control(daemon.socket, client="console") as control:
        assert (await control.request("manual", on=True))["result"] == {"manual": True}
    async with Control(daemon.socket) as control:
        status = await control.until(lambda s: s["manual"] is False, what="manual released")
        assert status["state"] == "STOPPED"
        # So the fleet can operate the unit again.
        assert (await control.request("reset"))["ok"]


async def test_a_service_stop_mid_batch_closes_the_batch_as_aborted(daemon: Daemon) -> None:
    async with Control(daemon.socket) as control:
        assert (await control.request("reset"))["ok"]
        assert (await control.request("start", recipe="smoke"))["ok"]
        status = await control.until(lambda s: s["phase"] == "heat", what="heating")
        batch_id = status["batch_id"]
    assert daemon.terminate() == 0
    await daemon.start()
    async with Control(daemon.socket) as control:
        # Aborted as it was stopped: nobody has cleared it (a clean stop is no crash, so
        # no batch_interrupted and the authority kept).
        assert control.hello["state"] == "ABORTED"
        alarms = (await control.request("alarms"))["result"]["alarms"]
        assert "batch_interrupted" not in {a["id"] for a in alarms}
        batch = (await control.request("batch", id=batch_id))["result"]["batch"]
        assert batch["final_state"] == "ABORTED"
        assert [p["name"] for p in batch["record"]["phases"]][:2] == ["fill", "heat"]
        assert batch["end_ts"] >= batch["start_ts"]
        assert (await control.request("clear"))["ok"]
        await control.until(lambda s: s["state"] == "STOPPED", what="cleared")
    # Cleared, it restarts Stopped.
    assert daemon.terminate() == 0
    await daemon.start()
    async with Control(daemon.socket) as control:
        assert control.hello["state"] == "STOPPED"


async def test_on_the_simulator_a_batch_starts_on_what_an_aborted_one_left(
    daemon: Daemon,
) -> None:
    # An empty simulated reactor is loaded as a recipe expects; one that holds something keeps
    # it, as a real reactor does: what an aborted batch left is what the next one starts on.
    async with Control(daemon.socket) as control:
        assert (await control.request("reset"))["ok"]
        assert (await control.request("start", recipe="smoke"))["ok"]
        await control.until(lambda s: s["levels"]["low"] is True, what="filled to LSL")
        assert (await control.request("abort"))["ok"]
        await control.until(lambda s: s["state"] == "ABORTED", what="aborted")
        assert (await control.request("clear"))["ok"]
        await control.until(lambda s: s["state"] == "STOPPED", what="cleared")
        water = (await control.status())["ph"]
        assert water > 5.0  # smoke's water, no acid in it
        assert (await control.request("reset"))["ok"]
        assert (await control.request("start", recipe="purify"))["ok"]
        status = await control.until(lambda s: s["state"] == "EXECUTE", what="purify runs")
        assert status["ph"] > 5.0  # not swapped for leach liquor (pH ≈ 2)
