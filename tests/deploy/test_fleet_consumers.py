"""deploy/fleet: the Node-RED flow and the Telegraf config read what the units publish.

Structure only (no broker, no Node-RED, no Telegraf): `deploy/fleet/node-red/check` runs the
flow for real. Telegraf's json_v2 is mirrored here for a flat object (parsers/json_v2: a null is
skipped, `excluded_keys` dropped, `tags` become tags, `fields` types converted, any other number
a float) to show every telemetry metric lands as a field of its type.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from unit_controller.config import load_config
from unit_controller.mqtt.payloads import Metric, telemetry_metrics

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "deploy/fleet"
TELEMETRY = "fleet/v2/+/telemetry"
STATUS = "fleet/v2/+/status"


@pytest.fixture(scope="module")
def flow() -> dict[str, dict[str, Any]]:
    nodes = json.loads((FLEET / "node-red/flow.json").read_text())
    by_id = {node["id"]: node for node in nodes}
    assert len(by_id) == len(nodes), "node ids must be unique"
    return by_id


@pytest.fixture(scope="module")
def telegraf() -> dict[str, Any]:
    with (FLEET / "telegraf.conf").open("rb") as f:
        return tomllib.load(f)


def _of_type(flow: dict[str, dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [node for node in flow.values() if node["type"] == type_]


def _downstream(flow: dict[str, dict[str, Any]], start: str) -> set[str]:
    """The ids reachable from `start` along wires."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for port in flow[todo.pop()].get("wires", []):
            for target in port:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
    return seen


# --- Node-RED ---------------------------------------------------------------------------------


def test_flow_wires_and_references_resolve(flow: dict[str, dict[str, Any]]) -> None:
    tabs = {node["id"] for node in _of_type(flow, "tab")}
    for node in flow.values():
        for port in node.get("wires", []):
            for target in port:
                assert target in flow, (node["id"], target)
        if "z" in node:
            assert node["z"] in tabs, node["id"]
        for ref in ("broker", "group", "page", "ui", "theme"):
            if isinstance(node.get(ref), str) and node["type"] != "mqtt-broker":
                assert node[ref] in flow, (node["id"], ref)
    functions = _of_type(flow, "function")
    for node in functions:
        assert len(node["wires"]) == node["outputs"], node["id"]


def test_flow_subscribes_to_telemetry_and_status(flow: dict[str, dict[str, Any]]) -> None:
    subscriptions = {node["topic"]: node for node in _of_type(flow, "mqtt in")}
    assert set(subscriptions) == {TELEMETRY, STATUS}
    assert subscriptions[TELEMETRY]["datatype"] == "json"
    assert subscriptions[STATUS]["datatype"] == "utf8"  # plain `online` / `offline`
    for node in subscriptions.values():
        assert node["qos"] == "1"
        broker = flow[node["broker"]]
        assert broker["type"] == "mqtt-broker"
        # Node-RED substitutes a property that is exactly ${VAR} from the environment.
        assert (broker["broker"], broker["port"]) == ("${MQTT_HOST}", "${MQTT_PORT}")
        assert broker["protocolVersion"] == "5"
        # Both feed the node that keeps the fleet's state.
        assert any(flow[t]["type"] == "function" for t in _downstream(flow, node["id"]))


def test_flow_serves_the_latest_telemetry_per_unit(flow: dict[str, dict[str, Any]]) -> None:
    (http_in,) = _of_type(flow, "http in")
    assert (http_in["method"], http_in["url"]) == ("get", "/fleet/latest")
    reached = _downstream(flow, http_in["id"])
    assert any(flow[t]["type"] == "http response" for t in reached)
    (handler,) = (flow[t] for t in reached if flow[t]["type"] == "function")
    assert 'global.get("fleet")' in handler["func"]
    (keeper,) = (
        n for n in _of_type(flow, "function") if 'global.set("fleet"' in n["func"]
    )  # the one writer of what the endpoint serves
    assert keeper["id"] not in reached


def test_flow_has_the_dashboard(flow: dict[str, dict[str, Any]]) -> None:
    gauges = {node["name"]: node for node in _of_type(flow, "ui-gauge")}
    assert set(gauges) == {"temperature_c", "ph"}
    assert (gauges["temperature_c"]["units"], gauges["ph"]["units"]) == ("°C", "pH")
    assert (gauges["ph"]["min"], gauges["ph"]["max"]) == (0, 14)
    assert {node["name"] for node in _of_type(flow, "ui-text")} == {"state", "phase"}
    (table,) = _of_type(flow, "ui-table")
    assert table["action"] == "replace"
    assert "unit" in {column["key"] for column in table["columns"]}
    # Every widget sits in a group on a page of a dashboard (Dashboard 2.0's config nodes).
    widgets = [n for n in flow.values() if n["type"] in ("ui-gauge", "ui-text", "ui-table")]
    for widget in widgets:
        page = flow[flow[widget["group"]]["page"]]
        assert page["type"] == "ui-page"
        assert flow[page["ui"]]["type"] == "ui-base"
    # ... and is fed by the telemetry.
    (telemetry_in,) = (n for n in _of_type(flow, "mqtt in") if n["topic"] == TELEMETRY)
    assert {w["id"] for w in widgets} <= _downstream(flow, telemetry_in["id"])


# --- Telegraf ---------------------------------------------------------------------------------


def _consumer(telegraf: dict[str, Any], topic: str) -> dict[str, Any]:
    consumers: list[dict[str, Any]] = telegraf["inputs"]["mqtt_consumer"]
    (found,) = (c for c in consumers if topic in c["topics"])
    return found


def _unit_tag(consumer: dict[str, Any], topic: str) -> None:
    (parsing,) = (p for p in consumer["topic_parsing"] if p["topic"] == topic)
    # Telegraf refuses a `tags` pattern whose length differs from the topic's.
    assert len(parsing["tags"].split("/")) == len(topic.split("/"))
    assert parsing["tags"].split("/")[topic.split("/").index("+")] == "unit"


def test_telegraf_subscribes_to_telemetry_with_json_v2(telegraf: dict[str, Any]) -> None:
    consumer = _consumer(telegraf, TELEMETRY)
    assert consumer["qos"] == 1
    assert consumer["persistent_session"] is True
    assert consumer["client_id"]
    assert consumer["data_format"] == "json_v2"
    _unit_tag(consumer, TELEMETRY)
    for topic in consumer["topics"]:
        _unit_tag(consumer, topic)
    (parser,) = consumer["json_v2"]
    assert parser["measurement_name"] == "unit_telemetry"
    assert (parser["timestamp_path"], parser["timestamp_format"]) == ("ts", "unix_ms")
    (obj,) = parser["object"]
    assert obj["path"] == "@this"


def test_telegraf_reads_status_as_a_string_value(telegraf: dict[str, Any]) -> None:
    consumer = _consumer(telegraf, STATUS)
    assert (consumer["data_format"], consumer["data_type"]) == ("value", "string")
    assert consumer["qos"] == 1
    _unit_tag(consumer, STATUS)
    ids = [c["client_id"] for c in telegraf["inputs"]["mqtt_consumer"]]
    assert len(set(ids)) == len(ids), "two consumers with one client id throw each other off"


def _json_v2(obj: dict[str, Any], message: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """Tags and fields json_v2 makes of a flat message with this `object` config."""
    tags: dict[str, str] = {}
    fields: dict[str, Any] = {}
    convert = {"int": int, "uint": int, "float": float, "bool": bool, "string": str}
    for key, value in message.items():
        if key in obj.get("excluded_keys", []) or value is None:
            continue
        if obj.get("included_keys") and key not in obj["included_keys"] + obj.get("tags", []):
            continue
        if key in obj.get("tags", []):
            tags[key] = str(value)
        elif key in obj.get("fields", {}):
            fields[key] = convert[obj["fields"][key]](value)
        else:  # JSON's own type: every number is a float64
            fields[key] = (
                float(value)
                if isinstance(value, int | float) and not isinstance(value, bool)
                else value
            )
    return tags, fields


SAMPLE = {"int": 7, "float": 1.5, "bool": True, "string": "x"}
PYTHON = {"int": int, "float": float, "bool": bool, "string": str}


def test_json_v2_keeps_every_telemetry_metric_with_its_type(telegraf: dict[str, Any]) -> None:
    metrics: list[Metric] = telemetry_metrics(load_config().wiring)
    names = {m.name for m in metrics}
    (obj,) = _consumer(telegraf, TELEMETRY)["json_v2"][0]["object"]
    # Nothing configured names a key the telemetry does not have (a typo would do nothing).
    configured = set(obj.get("excluded_keys", [])) | set(obj.get("tags", []))
    assert configured | set(obj.get("fields", {})) <= names
    assert not obj.get("included_keys"), "every key the wiring adds (pumps) must come through"
    # `ts` is the timestamp, not a field.
    assert obj["excluded_keys"] == ["ts"]
    assert next(m for m in metrics if m.name == "ts").unit == "ms"

    message = {m.name: SAMPLE[m.type] for m in metrics}
    tags, fields = _json_v2(obj, message)
    for metric in metrics:
        if metric.name == "ts":
            continue
        if metric.name in tags:
            assert metric.type == "string", metric
            continue
        assert metric.name in fields, metric
        value = fields[metric.name]
        assert type(value) is PYTHON[metric.type], (metric, value)
    # Tags are only low-cardinality strings; the state and phase stay fields (see the comments).
    assert set(tags) == {"recipe"}
    assert {"state", "phase", "unit_mode", "authority"} <= set(fields)

    # A message with every nullable value null: those fields are absent, the rest still typed.
    nulls = {m.name: None if m.nullable else SAMPLE[m.type] for m in metrics}
    _, fields = _json_v2(obj, nulls)
    assert {m.name for m in metrics if not m.nullable} - {"ts"} == set(fields)


def test_json_v2_field_types_match_the_birth(telegraf: dict[str, Any]) -> None:
    types = {m.name: m.type for m in telemetry_metrics(load_config().wiring)}
    (obj,) = _consumer(telegraf, TELEMETRY)["json_v2"][0]["object"]
    declared: dict[str, str] = obj["fields"]
    assert set(declared.values()) <= {"int", "uint", "float", "string", "bool"}
    for name, type_ in declared.items():
        assert type_ == types[name], name
    # Every integer metric is declared, else json_v2 would write it as a float.
    assert {n for n, t in types.items() if t == "int"} - {"ts"} == set(declared)
