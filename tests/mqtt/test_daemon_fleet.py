"""The daemon on a real broker: announced, commanded over MQTT (journaled with their source),
and `offline` on SIGTERM. Waits are on messages, bounded.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.daemon.harness import Daemon
from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import command, topic
from tests.mqtt.recorder import Recorder, publish

UNIT = "unit-d1"
WAIT_S = 30.0


async def test_the_daemon_takes_mqtt_commands_journals_them_and_says_offline_on_sigterm(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    daemon = Daemon(tmp_path, args=("--mqtt", mosquitto.url, "--unit-id", UNIT))
    async with Recorder(mosquitto) as rec:
        await daemon.start()
        try:
            await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "status") and r.payload == b"online",
                timeout=WAIT_S,
            )
            birth = await rec.wait_for(lambda r: r.topic == topic(UNIT, "birth"), timeout=WAIT_S)
            assert "confirm" not in birth.json()["commands"]

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
                lambda r: r.topic == topic(UNIT, "status") and r.payload == b"online",
                timeout=WAIT_S,
            )
            probe = command()
            await publish(mosquitto, topic(UNIT, "cmd/rebirth"), probe)
            await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "cmd_result") and r.json()["id"] == probe["id"],
                timeout=WAIT_S,
            )
            assert [r.json()["id"] for r in rec.on("cmd_result")] == [probe["id"]]
        finally:
            assert daemon.terminate() == 0

    db = sqlite3.connect(daemon.journal)
    try:
        rows = db.execute("SELECT source, command, ok FROM commands ORDER BY id").fetchall()
    finally:
        db.close()
    assert ("mqtt:test-operator", "reset", 1) in rows
    assert ("mqtt:test-operator", "confirm", 0) in rows
