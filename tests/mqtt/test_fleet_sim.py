"""Simulated batches publishing to a real Mosquitto: what a fleet dashboard sees and can do.

Waits are on messages and states, bounded; the batch runs on the simulator's clock.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import command, fleet_config, in_order_but_redelivered, seqs, sim_run, topic
from tests.mqtt.recorder import Recorder, publish
from unit_controller.machine import State

UNIT = "unit-t1"
# Bound of every wait: generous, since a loaded CI machine is slow, not wrong.
WAIT_S = 30.0


async def test_a_batch_announces_itself_publishes_every_second_and_says_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with Recorder(mosquitto) as rec:
        run = sim_run(fleet_config(mosquitto, tmp_path / "state"))
        result = await run.run()
        await rec.wait_for(
            lambda r: r.topic.endswith("/status") and r.payload == b"offline", timeout=WAIT_S
        )

    assert result.final_state is State.COMPLETE
    statuses = [r.payload for r in rec.on("status")]
    assert statuses[0] == b"online"
    assert statuses[-1] == b"offline"
    birth = rec.json("birth")[0]
    assert birth["unit"] == UNIT
    assert birth["sess"] >= 1
    assert "smoke" in birth["recipes"]
    names = {m["name"] for m in birth["metrics"]}
    assert {"temperature_c", "ph", "state", "seq", "pump_p203_ml_min"} <= names

    telemetry = rec.json("telemetry") + rec.json("backfill")
    numbers = sorted({t["seq"] for t in telemetry})
    assert numbers == list(range(run.fleet.bridge.seq if run.fleet else 0))
    # 1 Hz on the unit's clock: a 21-minute batch is ~1260 messages, one a second apart.
    live = rec.json("telemetry")
    steps = {round((b["ts"] - a["ts"]) / 1000, 1) for a, b in itertools.pairwise(live[:-1])}
    assert steps == {1.0}
    # The last one, off the cadence, says where the unit stopped before it goes offline.
    assert 0 <= live[-1]["ts"] - live[-2]["ts"] <= 1000
    assert live[-1]["state"] == result.final_state.value
    first = live[-1]
    assert {"ts", "seq", "sess", "state", "state_no", "phase", "temperature_c", "ph"} <= set(first)

    events = rec.json("events")
    states = [e["new"] for e in events if e["kind"] == "state"]
    assert states == ["RESETTING", "IDLE", "STARTING", "EXECUTE", "COMPLETING", "COMPLETE"]
    phases = [e["phase"] for e in events if e["kind"] == "phase"]
    assert phases == ["fill", "heat", "ph", "drain", "drain_heel"]
    assert rec.json("alarms")[0]["alarms"] == []
    assert result.summary["mqtt"]["drained"] is True


async def test_an_operator_holds_and_unholds_a_batch_and_bad_commands_change_nothing(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with Recorder(mosquitto) as rec:
        run = sim_run(fleet_config(mosquitto, tmp_path / "state"), speed=100.0)
        batch = asyncio.create_task(run.run())
        await rec.wait_for(
            lambda r: r.topic.endswith("/events") and r.json().get("phase") == "heat",
            timeout=WAIT_S,
        )

        # Malformed, expired and replayed commands: refused, each with a reason, nothing held.
        bad = command(ts="yesterday")
        await publish(mosquitto, topic(UNIT, "cmd/hold"), bad)
        refused = await rec.wait_for(
            lambda r: r.topic.endswith("/cmd_result") and r.json()["id"] == bad["id"],
            timeout=WAIT_S,
        )
        assert refused.json()["ok"] is False
        assert "ts" in refused.json()["error"]
        expired = command(ts=1_000, exp=2_000)
        await publish(mosquitto, topic(UNIT, "cmd/hold"), expired)
        gone = await rec.wait_for(
            lambda r: r.topic.endswith("/cmd_result") and r.json()["id"] == expired["id"],
            timeout=WAIT_S,
        )
        assert "expired" in gone.json()["error"]
        await publish(mosquitto, topic(UNIT, "cmd/hold"), b"{not json")
        await rec.wait_for(
            lambda r: r.topic.endswith("/cmd_result") and r.json()["id"] is None, timeout=WAIT_S
        )
        # Nested 2,000 deep (4,000 bytes): a refusal that names the depth; the link stays up.
        births = len([r for r in rec.received if r.topic.endswith("/birth")])
        await publish(mosquitto, topic(UNIT, "cmd/hold"), b"[" * 2000 + b"]" * 2000)
        deep = await rec.wait_for(
            lambda r: r.topic.endswith("/cmd_result") and "nested" in (r.json()["error"] or ""),
            timeout=WAIT_S,
        )
        assert deep.json()["ok"] is False
        assert "2000 levels deep" in deep.json()["error"]
        await publish(mosquitto, topic(UNIT, "cmd/jog"), command(args={"output": "heater"}))
        jog = await rec.wait_for(
            lambda r: r.topic.endswith("/cmd_result") and r.json()["command"] == "jog",
            timeout=WAIT_S,
        )
        assert "console" in jog.json()["error"]
        assert run.controller.machine.state is State.EXECUTE
        # No reconnect happened: a reconnect publishes a new birth.
        assert len([r for r in rec.received if r.topic.endswith("/birth")]) == births

        hold = command()
        await publish(mosquitto, topic(UNIT, "cmd/hold"), hold)
        held = await rec.wait_for(
            lambda r: r.topic.endswith("/cmd_result") and r.json()["id"] == hold["id"],
            timeout=WAIT_S,
        )
        assert held.json()["ok"] is True, held.json()
        assert held.json()["error"] is None
        await rec.wait_for(
            lambda r: r.topic.endswith("/events") and r.json().get("new") == "HELD", timeout=WAIT_S
        )
        # Held by a person: the run waits (telemetry keeps coming, state HELD) for the unhold.
        first_held = await rec.wait_for(
            lambda r: r.topic.endswith("/telemetry") and r.json()["state"] == "HELD", timeout=WAIT_S
        )
        await rec.wait_for(
            lambda r: (
                r.topic.endswith("/telemetry")
                and r.json()["state"] == "HELD"
                and r.json()["seq"] >= first_held.json()["seq"] + 30
            ),
            timeout=WAIT_S,
        )
        assert not batch.done()

        await publish(mosquitto, topic(UNIT, "cmd/hold"), hold)  # the same id again
        replay = await rec.wait_for(
            lambda r: (
                r.topic.endswith("/cmd_result")
                and r.json()["id"] == hold["id"]
                and r.json()["ok"] is False
            ),
            timeout=WAIT_S,
        )
        assert "replayed" in replay.json()["error"]

        unhold = command()
        await publish(mosquitto, topic(UNIT, "cmd/unhold"), unhold)
        resumed = await rec.wait_for(
            lambda r: r.topic.endswith("/cmd_result") and r.json()["id"] == unhold["id"],
            timeout=WAIT_S,
        )
        assert resumed.json()["ok"] is True, resumed.json()
        result = await asyncio.wait_for(batch, 60)

    assert result.final_state is State.COMPLETE
    events = rec.json("events")
    commands = [
        (e["command"], e["ok"])
        for e in events
        if e["kind"] == "command" and e.get("source") != "sim"
    ]
    assert ("hold", True) in commands
    assert ("unhold", True) in commands
    assert sum(1 for _, ok in commands if not ok) >= 4


async def test_broker_restart_mid_batch_loses_no_telemetry(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with Recorder(mosquitto, persistent=True) as rec:
        run = sim_run(fleet_config(mosquitto, tmp_path / "state"), speed=100.0)
        batch = asyncio.create_task(run.run())
        await rec.wait_for(
            lambda r: r.topic.endswith("/telemetry") and r.json()["seq"] >= 100, timeout=WAIT_S
        )
        async with rec.offline(disconnect=False, timeout=WAIT_S):
            mosquitto.stop()
            # The unit goes on: its telemetry piles up in the outbox while the broker is away.
            fleet = run.fleet
            assert fleet is not None
            grown = asyncio.Event()
            run.watch(lambda _: grown.set() if fleet.outbox.pending_count >= 150 else None)
            await asyncio.wait_for(grown.wait(), WAIT_S)
            mosquitto.start()
        result = await asyncio.wait_for(batch, 60)
        sent = run.fleet.bridge.seq if run.fleet else 0
        await rec.wait_for(
            lambda r: r.topic.endswith("/status") and r.payload == b"offline" and not r.retain,
            timeout=WAIT_S,
        )
        await rec.wait_for(
            lambda _: len({*seqs(rec.on("telemetry")), *seqs(rec.on("backfill"))}) >= sent,
            timeout=WAIT_S,
        )

    assert result.final_state is State.COMPLETE
    live, backfill = seqs(rec.on("telemetry")), seqs(rec.on("backfill"))
    assert backfill, "the backlog went out on backfill"
    assert sorted({*live, *backfill}) == list(range(sent))
    assert in_order_but_redelivered(live)
    assert in_order_but_redelivered(backfill)
    assert result.summary["mqtt"]["sessions"] >= 2
    assert result.summary["mqtt"]["drained"] is True


async def test_tls_with_a_client_certificate(tls_mosquitto: Mosquitto, tmp_path: Path) -> None:
    recorder_tls = tls_mosquitto.client_tls("dashboard")
    unit_tls = tls_mosquitto.client_tls(UNIT)
    async with Recorder(tls_mosquitto, tls=recorder_tls) as rec:
        run = sim_run(fleet_config(tls_mosquitto, tmp_path / "state", tls=unit_tls))
        result = await run.run()
        await rec.wait_for(
            lambda r: r.topic.endswith("/status") and r.payload == b"offline", timeout=WAIT_S
        )
    assert result.final_state is State.COMPLETE
    assert rec.on("birth")
    assert (
        len(rec.on("telemetry")) + len(rec.on("backfill")) == run.fleet.bridge.seq
        if run.fleet
        else 0
    )
