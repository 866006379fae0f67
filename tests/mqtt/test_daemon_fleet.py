"""The daemon on a real broker: announced, commanded over MQTT (journaled with their source),
and `offline` on SIGTERM. Waits are on messages, bounded.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

from tests.daemon.harness import Control, Daemon
from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import command, topic
from tests.mqtt.recorder import Received, Recorder, publish

UNIT = "unit-d1"
WAIT_S = 30.0
BACK_IN_LOCAL = ("ack", "reset_alarms", "clear", "reset", "start")


def _unit(mosquitto: Mosquitto, base: Path) -> Daemon:
    """The daemon on the simulator, publishing to `mosquitto` as UNIT."""
    return Daemon(base, args=("--mqtt", mosquitto.url, "--unit-id", UNIT))


def _online(message: Received) -> bool:
    return message.topic == topic(UNIT, "status") and message.payload == b"online"


async def _set_remote(daemon: Daemon, rec: Recorder) -> None:
    """A tech at the console lets the fleet operate the unit; the birth says so."""
    async with Control(daemon.socket, client="console") as console:
        answer = await console.request("authority", mode="remote")
        assert answer["result"] == {"authority": "remote"}, answer
        assert (await console.status())["authority"] == "remote"
    await rec.wait_for(
        lambda r: r.topic == topic(UNIT, "birth") and r.json()["authority"] == "remote",
        timeout=WAIT_S,
    )


async def _result(rec: Recorder, sent: dict[str, object]) -> dict[str, object]:
    found = await rec.wait_for(
        lambda r: r.topic == topic(UNIT, "cmd_result") and r.json()["id"] == sent["id"],
        timeout=WAIT_S,
    )
    result: dict[str, object] = found.json()
    return result


async def test_the_daemon_takes_mqtt_commands_journals_them_and_says_offline_on_sigterm(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    daemon = _unit(mosquitto, tmp_path)
    async with Recorder(mosquitto) as rec:
        await daemon.start()
        try:
            await rec.wait_for(
                _online,
                timeout=WAIT_S,
            )
            birth = await rec.wait_for(lambda r: r.topic == topic(UNIT, "birth"), timeout=WAIT_S)
            assert "confirm" not in birth.json()["commands"]
            assert birth.json()["authority"] == "local"  # a new unit

            early = command()
            await publish(mosquitto, topic(UNIT, "cmd/reset"), early)
            local = await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "cmd_result") and r.json()["id"] == early["id"],
                timeout=WAIT_S,
            )
            assert local.json()["ok"] is False
            assert "local mode" in local.json()["error"]
            await _set_remote(daemon, rec)

            reset = command()
            await publish(mosquitto, topic(UNIT, "cmd/reset"), reset)
            done = await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "cmd_result") and r.json()["id"] == reset["id"],
                timeout=WAIT_S,
            )
            assert done.json()["ok"] is True, done.json()
            confirm = command()
            await publish(mosquitto, topic(UNIT, "cmd/confirm"), confirm)
            refused = await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "cmd_result") and r.json()["id"] == confirm["id"],
                timeout=WAIT_S,
            )
            assert refused.json()["ok"] is False
            assert "console-only" in refused.json()["error"]

            # A command published retained is refused, whether it arrives live...
            retained = command()
            await publish(mosquitto, topic(UNIT, "cmd/stop"), retained, retain=True)
            ignored = await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "cmd_result") and r.json()["id"] == retained["id"],
                timeout=WAIT_S,
            )
            assert ignored.json()["ok"] is False
            assert "retained" in ignored.json()["error"]
        finally:
            code = daemon.terminate()
        assert code == 0, daemon.log_tail()
        await rec.wait_for(
            lambda r: r.topic == topic(UNIT, "status") and r.payload == b"offline",
            timeout=WAIT_S,
        )
    assert "mqtt.offline_published" in daemon.log_tail(200)

    # ...or is stored at the broker when the unit connects again: never carried out.
    async with Recorder(mosquitto) as rec:
        await daemon.start()
        try:
            await rec.wait_for(
                _online,
                timeout=WAIT_S,
            )
            probe = command()
            await publish(mosquitto, topic(UNIT, "cmd/rebirth"), probe)
            await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "cmd_result") and r.json()["id"] == probe["id"],
                timeout=WAIT_S,
            )
            assert [r.json()["id"] for r in rec.on("cmd_result")] == [probe["id"]]

            # Clearing it the MQTT way (an empty retained payload) is no command: no answer.
            await publish(mosquitto, topic(UNIT, "cmd/stop"), b"", retain=True)
            after = command()
            await publish(mosquitto, topic(UNIT, "cmd/rebirth"), after)
            await _result(rec, after)
            assert [r.json()["id"] for r in rec.on("cmd_result")] == [probe["id"], after["id"]]
            refusals = [e.json() for e in rec.on("events") if e.json().get("ok") is False]
            assert refusals == []
        finally:
            assert daemon.terminate() == 0

    db = sqlite3.connect(daemon.journal)
    try:
        rows = db.execute("SELECT source, command, ok FROM commands ORDER BY id").fetchall()
    finally:
        db.close()
    assert ("mqtt:test-operator (unauthenticated)", "reset", 1) in rows
    assert ("mqtt:test-operator (unauthenticated)", "confirm", 0) in rows


async def test_after_kill_9_the_unit_is_local_until_the_console_sets_it_back(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    daemon = _unit(mosquitto, tmp_path)
    async with Recorder(mosquitto) as rec:
        await daemon.start()
        try:
            await _set_remote(daemon, rec)
            reset = command()
            await publish(mosquitto, topic(UNIT, "cmd/reset"), reset)
            assert (await _result(rec, reset))["ok"] is True
            start = command(args={"recipe": "smoke"})
            await publish(mosquitto, topic(UNIT, "cmd/start"), start)
            assert (await _result(rec, start))["ok"] is True
            async with Control(daemon.socket) as control:
                await control.until(lambda s: s["state"] == "EXECUTE", what="executing")
        finally:
            daemon.kill()

    async with Recorder(mosquitto) as rec:
        await daemon.start()
        try:
            # The first birth may be the retained one of the killed run: wait for the new one.
            await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "birth") and r.json()["authority"] == "local",
                timeout=WAIT_S,
            )
            for name in BACK_IN_LOCAL:
                sent = command(args={"recipe": "smoke"} if name == "start" else {})
                await publish(mosquitto, topic(UNIT, f"cmd/{name}"), sent)
                result = await _result(rec, sent)
                assert result["ok"] is False, (name, result)
                assert "local mode" in str(result["error"]), (name, result)
            async with Control(daemon.socket, client="console") as console:
                status = await console.status()
                assert (status["state"], status["authority"]) == ("ABORTED", "local")
                assert (await console.request("ack"))["ok"]
                assert (await console.request("clear"))["ok"]
                await console.until(lambda s: s["state"] == "STOPPED", what="stopped")
                assert (await console.request("reset_alarms"))["ok"]
                assert (await console.request("reset"))["ok"], await console.status()
                await console.until(lambda s: s["state"] == "IDLE", what="idle")
        finally:
            assert daemon.terminate() == 0
    # A clean stop keeps the mode: local stays local.
    assert (daemon.state / "authority").read_text() == "local\n"


async def test_a_unit_stopped_mid_batch_says_it_aborted_before_it_goes_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # A dashboard keeps the last state it was told: it must not go on showing EXECUTE.
    daemon = _unit(mosquitto, tmp_path)
    async with Recorder(mosquitto) as rec:
        await daemon.start()
        try:
            async with Control(daemon.socket) as control:
                await control.start_batch("smoke")
            await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "telemetry") and r.json()["state"] == "EXECUTE",
                timeout=WAIT_S,
            )
        finally:
            code = daemon.terminate()
        assert code == 0, daemon.log_tail()
        await rec.wait_for(
            lambda r: r.topic == topic(UNIT, "status") and r.payload == b"offline",
            timeout=WAIT_S,
        )
    assert rec.json("telemetry")[-1]["state"] == "ABORTED"


def _run_marked_clean(journal: Path) -> bool:
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'running'").fetchone()
    finally:
        db.close()
    return row is not None and row[0] == "0"


async def test_a_stop_held_up_by_a_hung_broker_is_still_a_clean_stop(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # A broker that keeps the TCP session but answers nothing (hung, a cable pulled far off):
    # the drain waits out drain_timeout_s, and systemd may SIGKILL the daemon meanwhile. The
    # run was stopped cleanly all the same: the next start must not be one after a crash.
    daemon = _unit(mosquitto, tmp_path)
    async with Recorder(mosquitto) as rec:
        await daemon.start()
        await rec.wait_for(_online, timeout=WAIT_S)
    broker = mosquitto._process
    assert broker is not None
    broker.send_signal(signal.SIGSTOP)
    try:
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while not _run_marked_clean(daemon.journal):
            assert daemon.proc.poll() is None, "stopped before it was held up by the drain"
            assert loop.time() < deadline, daemon.log_tail()
            await asyncio.sleep(0.1)
        # Marked clean before the drain ended (the old order marked it after): what systemd's
        # SIGKILL would cut is the drain only.
        log_so_far = daemon.log_tail(400)
        assert "daemon.stopping" in log_so_far, log_so_far  # the log is there to be read
        assert "mqtt.service_stopped" not in log_so_far, log_so_far
        daemon.kill()
    finally:
        broker.send_signal(signal.SIGCONT)
    await daemon.start()
    try:
        async with Control(daemon.socket) as control:
            assert control.hello["state"] == "STOPPED", daemon.log_tail()
    finally:
        assert daemon.terminate() == 0


async def test_an_interrupted_batch_found_at_start_goes_out_on_events(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # Fleet tools that log `events` must learn a batch was interrupted, not only the retained
    # alarm list: the alarm is raised at start, before the unit publishes anything.
    daemon = _unit(mosquitto, tmp_path)
    await daemon.start()
    async with Control(daemon.socket) as control:
        await control.start_batch("smoke")
        await control.until(lambda s: s["phase"] == "heat", what="heating")  # journaled by now
    daemon.kill()
    async with Recorder(mosquitto) as rec:
        await daemon.start()
        try:
            event = await rec.wait_for(
                lambda r: (
                    r.topic == topic(UNIT, "events")
                    and r.json().get("alarm_id") == "batch_interrupted"
                ),
                timeout=WAIT_S,
            )
            assert event.json()["transition"] == "raised", event.json()
        finally:
            assert daemon.terminate() == 0
