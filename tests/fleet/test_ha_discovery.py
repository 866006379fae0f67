"""Home Assistant MQTT discovery: every config validates against HA's schema for its platform,
reads keys the telemetry carries, and a unit with `discovery = true` publishes them retained."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fleet.ha_schema import validate
from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import fleet_config, sim_run
from tests.mqtt.recorder import Recorder
from unit_controller.config import load_config
from unit_controller.mqtt.discovery import discovery_messages, entities, node_id
from unit_controller.mqtt.payloads import telemetry_metrics
from unit_controller.mqtt.topics import Topics

UNIT = "unit-ha1"
WAIT_S = 30.0


def _messages(unit: str = UNIT) -> list[tuple[str, dict[str, object]]]:
    found = discovery_messages(
        topics=Topics(root="fleet/v2", unit=unit), prefix="homeassistant", site="lab", version="1"
    )
    return [(topic, json.loads(payload)) for topic, payload in found]


def test_every_config_validates_for_its_platform() -> None:
    messages = _messages()
    assert len(messages) == len(entities())
    platforms = set()
    for topic, config in messages:
        prefix, platform, node, key, leaf = topic.split("/")
        platforms.add(platform)
        assert (prefix, node, leaf) == ("homeassistant", UNIT, "config")
        assert validate(platform, config) == [], (topic, config)
        assert config["unique_id"] == f"{UNIT}_{key}"
    assert platforms == {"sensor", "binary_sensor"}


def test_entities_read_what_telemetry_carries_and_go_unavailable_with_the_unit() -> None:
    types = {m.name: m.type for m in telemetry_metrics(load_config().wiring)}
    keys = {topic.split("/")[3]: config for topic, config in _messages()}
    assert {"temperature_c", "ph", "state", "phase", "alarms_active", "estop_pressed"} <= set(keys)
    assert {"level_low_low", "level_low", "level_high", "level_high_high"} <= set(keys)
    for key, config in keys.items():
        assert config["value_template"] == "{{ value_json.%s }}" % key  # noqa: UP031
        assert config["state_topic"] == f"fleet/v2/{UNIT}/telemetry"
        assert config["availability_topic"] == f"fleet/v2/{UNIT}/status"
        if topic_platform(key) == "binary_sensor":
            assert types[key] == "bool"
    assert keys["alarms_active"]["json_attributes_topic"] == f"fleet/v2/{UNIT}/alarms"


def topic_platform(key: str) -> str:
    return next(t.split("/")[1] for t, _ in _messages() if t.split("/")[3] == key)


def test_a_unit_id_becomes_a_valid_node_id() -> None:
    assert node_id("unit.01") == "unit_01"
    topic, config = _messages("site.a-01")[0]
    assert topic.split("/")[2] == "site_a-01"
    assert validate(topic.split("/")[1], config) == []


async def test_a_unit_with_discovery_on_publishes_its_configs_retained(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with Recorder(mosquitto, topic_filter="homeassistant/#") as rec:
        config = fleet_config(mosquitto, tmp_path / "state", unit_id=UNIT, discovery=True)
        await sim_run(config).run()
        await rec.wait_for(lambda r: len(rec.received) >= len(entities()), timeout=WAIT_S)
    # A Home Assistant that starts later gets them from the broker.
    async with Recorder(mosquitto, topic_filter="homeassistant/#") as late:
        await late.wait_for(lambda r: len(late.received) >= len(entities()), timeout=WAIT_S)
    configs = {r.topic: json.loads(r.payload) for r in late.received}
    assert set(configs) == {topic for topic, _ in _messages()}
    for topic, config in configs.items():
        assert validate(topic.split("/")[1], config) == []


async def test_discovery_is_off_unless_asked_for(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with Recorder(mosquitto, topic_filter="#") as rec:
        await sim_run(fleet_config(mosquitto, tmp_path / "state", unit_id=UNIT)).run()
        await rec.wait_for(lambda r: r.topic.endswith("/status") and r.payload == b"offline")
    assert not [r for r in rec.received if r.topic.startswith("homeassistant/")]
