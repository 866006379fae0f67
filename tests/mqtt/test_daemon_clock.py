"""One clock for every stamp a sped-up unit writes: events, telemetry and command results never
go back in time, accepted or refused, and a refusal names who sent the command; a cold start's
first telemetry goes out live.

A daemon at 20× real time on a real broker; waits are on messages, bounded.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

from tests.daemon.harness import Control, Daemon
from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import command, topic
from tests.mqtt.recorder import Received, Recorder, publish

UNIT = "unit-clock"
WAIT_S = 30.0


def _answers(message: dict[str, Any], received: Received) -> bool:
    return received.topic == topic(UNIT, "cmd_result") and received.json()["id"] == message["id"]


async def test_every_stamp_of_a_sped_up_unit_is_on_one_clock(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    daemon = Daemon(tmp_path, speed=20.0, args=("--mqtt", mosquitto.url, "--unit-id", UNIT))
    async with Recorder(mosquitto) as rec:
        await daemon.start()
        try:
            await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "status") and r.payload == b"online",
                timeout=WAIT_S,
            )
            async with Control(daemon.socket, client="console") as console:
                assert (await console.request("authority", mode="remote"))["ok"]
            sent = []
            for name, args in (
                ("reset", {}),
                ("start", {"recipe": "no-such-recipe"}),  # refused by the controller
                ("start", {"recipe": "smoke"}),
                ("confirm", {}),  # refused at the gate: console-only
                ("hold", {}),
                ("unhold", {}),
            ):
                message = command(args=args, by="bob")
                await publish(mosquitto, topic(UNIT, f"cmd/{name}"), message)
                await rec.wait_for(
                    partial(_answers, message),
                    timeout=WAIT_S,
                )
                sent.append(message)
            # A garbled payload is refused before anyone is known.
            await publish(mosquitto, topic(UNIT, "cmd/hold"), b"{not json")
            await rec.wait_for(
                lambda r: r.topic == topic(UNIT, "cmd_result") and r.json()["id"] is None,
                timeout=WAIT_S,
            )
            # A few telemetry periods more, on the sped-up clock.
            first = len(rec.on("telemetry"))
            await rec.wait_for(
                lambda r: (
                    r.topic == topic(UNIT, "telemetry") and len(rec.on("telemetry")) > first + 5
                ),
                timeout=WAIT_S,
            )
        finally:
            assert daemon.terminate() == 0, daemon.log_tail()

    # A cold start with the broker up: the first telemetry goes out live, nothing as backfill.
    assert rec.on("backfill") == []
    assert rec.on("telemetry")[0].json()["seq"] == 0
    # Sent live, in the order they were made: telemetry and command results.
    for leaf in ("telemetry", "cmd_result"):
        stamps = [r.json()["ts"] for r in rec.on(leaf)]
        assert stamps, leaf
        assert stamps == sorted(stamps), f"{leaf} stamps go back: {stamps}"
    refusals = [r.json() for r in rec.on("events") if r.json().get("ok") is False]
    assert refusals
    assert {e["source"] for e in refusals} >= {"mqtt:bob (unauthenticated)"}
    db = sqlite3.connect(daemon.journal)
    try:
        events = db.execute("SELECT ts_ms, text FROM events ORDER BY id").fetchall()
        commands = db.execute("SELECT ts_ms FROM commands").fetchall()
        rows = db.execute("SELECT source, command, ok FROM commands ORDER BY id").fetchall()
    finally:
        db.close()
    # Events are stamped in the order they are made (the journal writes them in that order).
    # On `events` those made before the first connection come from the outbox's backlog and
    # may arrive after newer live ones, so there they are checked for their clock, not order.
    stamps = [ts for ts, _ in events]
    assert stamps == sorted(stamps), f"journal event stamps go back: {events[:5]}"
    journaled = set(events)
    command_stamps = {ts for (ts,) in commands}
    for event in rec.json("events"):
        if event.get("ok") is False:  # refused at the gate: the journal has it as a command
            assert event["ts"] in command_stamps, event
        else:
            assert (event["ts"], event["text"]) in journaled, event
    # The journal has the refusals with who sent them.
    assert ("mqtt:bob (unauthenticated)", "confirm", 0) in rows
    assert ("mqtt:bob (unauthenticated)", "start", 0) in rows
