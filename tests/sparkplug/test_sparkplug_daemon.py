"""A daemon with `[mqtt] payload = "sparkplug"` on a real broker: NBIRTH, NDATA in sequence,
rebirth on NCMD, commands through the same gate and authority rules, NDEATH with the birth's
bdSeq; everything it publishes read back with Eclipse Tahu's decoder."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.harness import Control, Daemon
from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import command
from tests.mqtt.recorder import Received, Recorder, publish
from tests.sparkplug.conftest import TahuDecode
from unit_controller.mqtt.sparkplug.schema import Payload
from unit_controller.shipped import EXAMPLE_CONFIG

pytestmark = pytest.mark.xdist_group("real_time")

UNIT = "unit-spb1"
GROUP = "lab"  # the example's [unit] site
BASE = f"spBv1.0/{GROUP}"
WAIT_S = 30.0


def _config(tmp_path: Path) -> Path:
    text = EXAMPLE_CONFIG.read_text().replace("[mqtt]\n", '[mqtt]\npayload = "sparkplug"\n', 1)
    path = tmp_path / "unit.toml"
    path.write_text(text)
    return path


def _metrics(received: Received) -> dict[str, Any]:
    """Name (or alias) → value of a message, with our own schema (for waiting only)."""
    payload = Payload.FromString(received.payload)
    found: dict[str, Any] = {}
    for metric in payload.metrics:
        kind = metric.WhichOneof("value")
        found[metric.name or str(metric.alias)] = None if kind is None else getattr(metric, kind)
    return found


def _result_of(sent: dict[str, Any], alias: int) -> Callable[[Received], bool]:
    def match(r: Received) -> bool:
        if "/NDATA/" not in r.topic:
            return False
        text = _metrics(r).get(str(alias))
        return isinstance(text, str) and json.loads(text).get("id") == sent["id"]

    return match


def _ncmd(name: str, **value: Any) -> bytes:
    payload = Payload(timestamp=1)
    payload.metrics.add(name=name, **value)
    return bytes(payload.SerializeToString())


async def _command(broker: Mosquitto, rec: Recorder, name: str, alias: int) -> dict[str, Any]:
    """Write `Command/<name>` with a fresh envelope; the unit's `Unit/cmd_result` for it."""
    sent = command()
    payload = _ncmd(f"Command/{name}", string_value=json.dumps(sent))
    await publish(broker, f"{BASE}/NCMD/{UNIT}", payload)
    answer = await rec.wait_for(_result_of(sent, alias), timeout=WAIT_S)
    result: dict[str, Any] = json.loads(_metrics(answer)[str(alias)])
    return result


async def test_a_sparkplug_unit_births_reports_obeys_and_dies(
    mosquitto: Mosquitto, tmp_path: Path, tahu_decode: TahuDecode
) -> None:
    daemon = Daemon(
        tmp_path,
        speed=10.0,
        args=("--config", str(_config(tmp_path)), "--mqtt", mosquitto.url, "--unit-id", UNIT),
    )
    async with Recorder(mosquitto, topic_filter="spBv1.0/#") as rec:
        await daemon.start()
        try:
            birth = await rec.wait_for(lambda r: r.topic == f"{BASE}/NBIRTH/{UNIT}", timeout=WAIT_S)
            await rec.wait_for(lambda r: r.topic == f"{BASE}/NDATA/{UNIT}", timeout=WAIT_S)
            aliases = {m.name: m.alias for m in Payload.FromString(birth.payload).metrics}
            result_alias = aliases["Unit/cmd_result"]

            await publish(
                mosquitto, f"{BASE}/NCMD/{UNIT}",
                _ncmd("Node Control/Rebirth", boolean_value=True),
            )  # fmt: skip
            await rec.wait_for(lambda r: len(rec.on(f"NBIRTH/{UNIT}")) == 2, timeout=WAIT_S)

            # Commands go through the same gate: a local unit refuses them...
            answer = await _command(mosquitto, rec, "reset", result_alias)
            assert answer["ok"] is False
            assert "local mode" in answer["error"]
            # ...and a remote one carries them out.
            async with Control(daemon.socket, client="console") as console:
                await console.request("authority", mode="remote")
            assert (await _command(mosquitto, rec, "reset", result_alias))["ok"] is True
            # A command of the wrong type is answered, not dropped unsaid.
            await publish(
                mosquitto, f"{BASE}/NCMD/{UNIT}", _ncmd("Command/hold", boolean_value=True)
            )

            def refused_hold(r: Received) -> bool:
                text = _metrics(r).get(str(result_alias)) if "/NDATA/" in r.topic else None
                return isinstance(text, str) and "Command/hold must be a String" in text

            refusal = await rec.wait_for(refused_hold, timeout=WAIT_S)
            assert json.loads(_metrics(refusal)[str(result_alias)])["ok"] is False
            state = str(aliases["state"])
            await rec.wait_for(
                lambda r: "/NDATA/" in r.topic and _metrics(r).get(state) == "IDLE",
                timeout=WAIT_S,
            )
        finally:
            assert daemon.terminate() == 0, daemon.log_tail()
        await rec.wait_for(lambda r: r.topic == f"{BASE}/NDEATH/{UNIT}", timeout=WAIT_S)

    # The NCMD that was no command is journaled as refused, as every refusal is.
    db = sqlite3.connect(daemon.journal)
    try:
        refused = db.execute("SELECT command, ok, error FROM commands WHERE ok = 0").fetchall()
    finally:
        db.close()
    assert any(c == "hold" and "must be a String" in (e or "") for c, _, e in refused), refused

    decoded = tahu_decode([(r.topic, r.payload) for r in rec.received if "/NCMD/" not in r.topic])
    assert all("error" not in d for d in decoded), decoded
    births = [d for d in decoded if "/NBIRTH/" in d["topic"]]
    deaths = [d for d in decoded if "/NDEATH/" in d["topic"]]
    bd_seqs = {m["value"] for d in births + deaths for m in d["metrics"] if m["name"] == "bdSeq"}
    assert len(bd_seqs) == 1  # one connection: its births and its death share a bdSeq
    # After each birth (seq 0) the data count up without a gap.
    expected = -1  # no birth yet: no data may come
    for message in decoded:
        if "/NBIRTH/" in message["topic"]:
            assert message["seq"] == 0
            expected = 1
        elif "/NDATA/" in message["topic"]:
            assert message["seq"] == expected
            expected = (expected + 1) % 256
    names = {m["name"] for m in births[-1]["metrics"]}
    assert {"bdSeq", "Node Control/Rebirth", "temperature_c", "ph", "state"} <= names
    temperatures = [
        m["value"]
        for d in decoded
        if "/NDATA/" in d["topic"]
        for m in d["metrics"]
        if m["alias"] == aliases["temperature_c"]
    ]
    assert temperatures
    assert all(isinstance(t, int | float) and 5.0 < t < 95.0 for t in temperatures)
