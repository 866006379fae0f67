"""The Sparkplug B wire on its own: births, data by alias, deaths, sequence numbers, commands;
what it encodes is read back with Eclipse Tahu's decoder, not ours."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hal.schema import ValidationError
from tests.sparkplug.conftest import TahuDecode
from unit_controller.config import UnitConfig, load_config
from unit_controller.mqtt.outbox import OutboxRow
from unit_controller.mqtt.payloads import telemetry_metrics
from unit_controller.mqtt.sparkplug.schema import Payload
from unit_controller.mqtt.sparkplug.wire import MAX_NCMD_BYTES, MAX_NCMD_METRICS, SparkplugWire

METRICS = telemetry_metrics(load_config().wiring)
LATEST = {"ts": 1_767_225_600_000, "state": "IDLE", "temperature_c": 20.5, "ph": None, "seq": 4}


def _wire(latest: dict[str, Any] | None = None) -> SparkplugWire:
    return SparkplugWire(
        group="site-a",
        node="unit-01",
        metrics=METRICS,
        latest=lambda: LATEST if latest is None else latest,
        alarms=lambda: b'{"ts":0,"alarms":[]}',
        commands=["hold", "start"],
        wall=lambda: 1_767_225_601.0,
    )


def _row(n: int, kind: str = "telemetry", **fields: Any) -> OutboxRow:
    body = {"ts": 1_767_225_600_000 + n, "seq": n, "temperature_c": 20.0 + n, **fields}
    payload = json.dumps(body).encode() if kind == "telemetry" else b'{"kind":"note"}'
    return OutboxRow(id=n, kind=kind, created_ms=1_767_225_600_000 + n, payload=payload)


def test_a_birth_names_every_metric_with_alias_type_and_value(tahu_decode: TahuDecode) -> None:
    wire = _wire()
    will = wire.will()
    [birth] = wire.announce(session=1)
    assert (birth.topic, birth.qos, birth.retain) == ("spBv1.0/site-a/NBIRTH/unit-01", 0, False)
    assert (will.topic, will.qos, will.retain) == ("spBv1.0/site-a/NDEATH/unit-01", 1, False)
    [decoded, death] = tahu_decode([(birth.topic, birth.payload), (will.topic, will.payload)])
    assert decoded["seq"] == 0
    metrics = {m["name"]: m for m in decoded["metrics"]}
    assert metrics["bdSeq"]["value"] == 0
    assert metrics["bdSeq"]["type"] == "UInt64"
    assert metrics["Node Control/Rebirth"] == metrics["Node Control/Rebirth"] | {
        "type": "Boolean",
        "value": False,
    }
    assert {m.name for m in METRICS} <= set(metrics)
    assert {"Unit/alarms", "Unit/event", "Unit/cmd_result", "Command/hold"} <= set(metrics)
    aliases = [m["alias"] for m in decoded["metrics"] if m.get("alias") is not None]
    assert len(aliases) == len(set(aliases)) == len(metrics) - 2  # all but bdSeq and Rebirth
    assert (metrics["temperature_c"]["type"], metrics["temperature_c"]["value"]) == ("Double", 20.5)
    assert metrics["ph"]["value"] is None
    assert (metrics["state"]["type"], metrics["state"]["value"]) == ("String", "IDLE")
    assert metrics["seq"]["type"] == "Int64"
    assert metrics["heater_on"]["type"] == "Boolean"
    assert death["metrics"] == [death["metrics"][0]]
    assert (death["metrics"][0]["name"], death["metrics"][0]["value"]) == ("bdSeq", 0)


def test_data_goes_by_alias_in_sequence_and_replays_are_historical(
    tahu_decode: TahuDecode,
) -> None:
    wire = _wire()
    wire.will()
    [birth] = wire.announce(session=1)
    sent = [(birth.topic, birth.payload)]
    for n in range(300):  # past 255: the sequence wraps to 0
        topic, row, qos = wire.stored(_row(n), backfill=n < 2)
        assert (topic, qos) == ("spBv1.0/site-a/NDATA/unit-01", 0)
        sent.append((topic, row.payload))
    decoded = tahu_decode(sent)
    seqs = [d["seq"] for d in decoded]
    assert seqs[:3] == [0, 1, 2]
    assert seqs[255:258] == [255, 0, 1]
    aliases = {m["name"]: m["alias"] for m in decoded[0]["metrics"] if "alias" in m}
    first = decoded[1]["metrics"]
    assert all("name" not in m or m["name"] is None for m in first)
    by_alias = {m["alias"]: m for m in first}
    temperature = by_alias[aliases["temperature_c"]]
    assert (temperature["value"], temperature["timestamp"]) == (20.0, 1_767_225_600_000)
    assert temperature["isHistorical"] is True
    assert all(not m["isHistorical"] for m in decoded[3]["metrics"])


def test_events_results_and_alarms_are_string_metrics() -> None:
    wire = _wire()
    wire.will()
    wire.announce(session=1)
    _, event, _ = wire.stored(_row(1, kind="event"), backfill=False)
    _, result, _ = wire.stored(_row(2, kind="cmd_result"), backfill=False)
    alarms = wire.alarms_update()
    decoded = [Payload.FromString(p) for p in (event.payload, result.payload, alarms.payload)]
    assert [d.seq for d in decoded] == [1, 2, 3]
    assert [d.metrics[0].string_value for d in decoded] == [
        '{"kind":"note"}',
        '{"kind":"note"}',
        '{"ts":0,"alarms":[]}',
    ]
    assert len({d.metrics[0].alias for d in decoded}) == 3


def test_each_connect_attempt_has_its_own_bdseq_and_the_death_matches_the_birth() -> None:
    wire = _wire()
    deaths = [Payload.FromString(wire.will().payload) for _ in range(3)]
    assert [d.metrics[0].long_value for d in deaths] == [0, 1, 2]
    [birth] = wire.announce(session=9)
    bd = next(m for m in Payload.FromString(birth.payload).metrics if m.name == "bdSeq")
    assert bd.long_value == 2
    assert Payload.FromString(wire.offline().payload).metrics[0].long_value == 2
    for _ in range(254):
        wire.will()
    assert Payload.FromString(wire.will().payload).metrics[0].long_value == 1  # 257 % 256


def _ncmd(*metrics: dict[str, Any]) -> bytes:
    payload = Payload(timestamp=1)
    for fields in metrics:
        payload.metrics.add(**fields)
    return bytes(payload.SerializeToString())


def test_commands_arrive_by_name_or_alias_and_a_rebirth_is_asked_for() -> None:
    wire = _wire()
    wire.will()
    [birth] = wire.announce(session=1)
    aliases = {m.name: m.alias for m in Payload.FromString(birth.payload).metrics}
    topic = "spBv1.0/site-a/NCMD/unit-01"
    envelope = '{"id":"x","ts":1,"exp":2,"by":"op","args":{}}'
    by_name = wire.incoming(
        topic, _ncmd({"name": "Command/hold", "string_value": envelope}), retained=False
    )
    assert [(c.name, c.payload) for c in by_name] == [("hold", envelope.encode())]
    by_alias = wire.incoming(
        topic, _ncmd({"alias": aliases["Command/start"], "string_value": "{}"}), retained=False
    )
    assert [c.name for c in by_alias] == ["start"]
    rebirth = {"name": "Node Control/Rebirth", "boolean_value": True}
    [asked] = wire.incoming(topic, _ncmd(rebirth), retained=False)
    assert asked.rebirth
    # A rebirth beside a command: both, in order (neither dropped for the other).
    both = wire.incoming(
        topic, _ncmd(rebirth, {"name": "Command/start", "string_value": envelope}), retained=False
    )
    assert [(c.rebirth, c.name, c.error) for c in both] == [
        (True, "Node Control/Rebirth", None),
        (False, "start", None),
    ]
    # Garbage, a command of the wrong type, a metric that is no command: each refused, saying
    # why (a cmd_result answers it); another node's topic is not ours.
    [garbage] = wire.incoming(topic, b"\xff\xff\xff", retained=False)
    assert garbage.error is not None
    assert garbage.error.startswith("the NCMD is not a Sparkplug B payload (3 bytes)")
    [typed] = wire.incoming(
        topic, _ncmd({"name": "Command/hold", "boolean_value": True}), retained=False
    )
    assert (typed.name, typed.error) == (
        "hold",
        "Command/hold must be a String metric holding the command's JSON (got boolean_value)",
    )
    [written] = wire.incoming(
        topic, _ncmd({"name": "temperature_c", "double_value": 99.0}), retained=False
    )
    assert written.error is not None
    assert written.error.startswith("temperature_c cannot be written")
    assert wire.incoming("spBv1.0/site-a/NCMD/other", _ncmd(rebirth), retained=False) == []


def test_an_ncmd_of_too_many_metrics_or_bytes_is_refused_whole_with_one_answer() -> None:
    wire = _wire()
    wire.will()
    topic = "spBv1.0/site-a/NCMD/unit-01"
    hold = {"name": "Command/hold", "string_value": '{"id":"x","ts":1,"exp":2,"by":"op"}'}
    most = wire.incoming(topic, _ncmd(*[hold] * MAX_NCMD_METRICS), retained=False)
    assert [c.error for c in most] == [None] * MAX_NCMD_METRICS
    # One per scan would stand the scan still for seconds and flood the journal: one answer.
    [flood] = wire.incoming(topic, _ncmd(*[{"name": "x"}] * 4_000), retained=False)
    assert flood.error == (
        "the NCMD carries 4000 metrics; at most 8 (nothing in it was carried out)"
    )
    [many] = wire.incoming(topic, _ncmd(*[hold] * (MAX_NCMD_METRICS + 1)), retained=False)
    assert many.error is not None
    assert many.error.startswith("the NCMD carries 9 metrics")
    big = {"name": "Command/hold", "string_value": "x" * MAX_NCMD_BYTES}
    [huge] = wire.incoming(topic, _ncmd(big), retained=False)
    assert huge.error is not None
    assert huge.error.endswith(f"bytes; at most {MAX_NCMD_BYTES} (nothing in it was carried out)")


def test_a_sparkplug_unit_needs_a_group_id() -> None:
    document = load_config().model_dump(exclude_unset=True)
    document["mqtt"] = {"url": "mqtt://localhost", "payload": "sparkplug"}
    assert UnitConfig.model_validate(document).mqtt.payload == "sparkplug"  # site "lab"
    document["unit"] = {**document["unit"], "site": ""}
    with pytest.raises(ValidationError, match="sparkplug_group"):
        UnitConfig.model_validate(document)
    document["mqtt"] |= {"sparkplug_group": "bad/group"}
    with pytest.raises(ValidationError, match="sparkplug_group"):
        UnitConfig.model_validate(document)
    document["mqtt"] |= {"sparkplug_group": "north-plant"}
    assert UnitConfig.model_validate(document).mqtt.sparkplug_group == "north-plant"
