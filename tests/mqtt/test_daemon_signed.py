"""A unit that takes only signed commands, on a real broker: `unit-controller send` with an
operator key acts and is journaled under the key's name; an unsigned command is refused."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from tests.daemon.harness import ROOT, Control, Daemon
from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import command, topic
from tests.mqtt.recorder import Recorder, publish
from unit_controller.config import DEFAULT_CONFIG

UNIT = "unit-sig1"
WAIT_S = 30.0


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "unit_controller.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), WAIT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_signed_send_acts_and_an_unsigned_command_is_refused(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    key = tmp_path / "alice.key"
    code, printed, _ = await _cli("keygen", str(key), "--name", "alice")
    assert code == 0
    entry = printed.split("\n", 1)[1]  # after the comment line: the [[mqtt.operators]] entry
    config = tmp_path / "unit.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    config.write_text(
        text.replace("allow_unsigned = true\n", f"allow_unsigned = false\n{entry}", 1),
        encoding="utf-8",
    )
    daemon = Daemon(
        tmp_path, args=("--config", str(config), "--mqtt", mosquitto.url, "--unit-id", UNIT)
    )
    async with Recorder(mosquitto) as rec:
        await daemon.start()
        try:
            # Subscribed to its commands once it says it is online.
            await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "status") and r.payload == b"online",
                timeout=WAIT_S,
            )
            async with Control(daemon.socket, client="console") as console:
                assert (await console.request("authority", mode="remote"))["ok"]
            unsigned = command()
            await publish(mosquitto, topic(UNIT, "cmd/reset"), unsigned)
            refused = await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "cmd_result") and r.json()["id"] == unsigned["id"],
                timeout=WAIT_S,
            )
            assert refused.json()["ok"] is False
            assert "unsigned" in refused.json()["error"]

            code, out, err = await _cli(
                "send", "reset", "--unit", UNIT, "--key", str(key), "--by", "alice",
                "--url", mosquitto.url,
            )  # fmt: skip
            assert code == 0, (out, err)
            assert '"ok": true' in out
            async with Control(daemon.socket) as control:
                await control.until(lambda s: s["state"] == "IDLE", what="idle")
        finally:
            assert daemon.terminate() == 0
    db = sqlite3.connect(daemon.journal)
    try:
        rows = db.execute("SELECT source, command, ok FROM commands ORDER BY id").fetchall()
    finally:
        db.close()
    assert ("mqtt:alice", "reset", 1) in rows
    assert ("mqtt:test-operator (unauthenticated)", "reset", 0) in rows
