"""Self-check of the test-side Home Assistant MQTT discovery validator, tests/fleet/ha_schema.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fleet.ha_schema import SENSOR_DEVICE_CLASS_UNITS, expand, validate

DEVICE = {"identifiers": ["unit-07"], "name": "Unit 07", "manufacturer": "Acme"}


def _sensor(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Leach temperature",
        "unique_id": "unit07_temperature",
        "state_topic": "fleet/v2/unit-07/telemetry",
        "value_template": "{{ value_json.temperature_c }}",
        "device_class": "temperature",
        "state_class": "measurement",
        "unit_of_measurement": "°C",
        "device": dict(DEVICE),
        "origin": {"name": "unit-controller", "sw_version": "0.1.0"},
        **extra,
    }


def _binary(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Interlock tripped",
        "unique_id": "unit07_interlock",
        "state_topic": "fleet/v2/unit-07/alarms",
        "value_template": "{{ 'ON' if value_json.alarms else 'OFF' }}",
        "device_class": "problem",
        "payload_on": "ON",
        "payload_off": "OFF",
        "device": dict(DEVICE),
        **extra,
    }


def _mentions(problems: list[str], key: str) -> bool:
    return any(key in problem for problem in problems)


def test_minimal_valid_payloads_pass() -> None:
    assert validate("sensor", _sensor()) == []
    assert validate("binary_sensor", _binary()) == []
    assert validate("sensor", {"state_topic": "a/b"}) == []
    assert validate("binary_sensor", {"state_topic": "a/b"}) == []


def test_abbreviated_payloads_pass_and_expand() -> None:
    sensor = {
        "name": "pH",
        "uniq_id": "unit07_ph",
        "~": "fleet/v2/unit-07",
        "stat_t": "~/telemetry",
        "val_tpl": "{{ value_json.ph }}",
        "dev_cla": "ph",
        "stat_cla": "measurement",
        "avty": [{"t": "~/status", "pl_avail": "online", "pl_not_avail": "offline"}],
        "dev": {"ids": "unit-07", "name": "Unit 07", "mf": "Acme", "sw": "0.1.0"},
        "o": {"name": "unit-controller", "sw": "0.1.0", "url": "https://example.com"},
        "def_ent_id": "sensor.unit07_ph",
        "ent_cat": "diagnostic",
        "ic": "mdi:flask",
    }
    assert validate("sensor", sensor) == []
    config, problems = expand(sensor)
    assert problems == []
    assert config["state_topic"] == "fleet/v2/unit-07/telemetry"
    assert config["availability"][0]["topic"] == "fleet/v2/unit-07/status"
    assert config["device"]["identifiers"] == "unit-07"
    assert config["origin"]["support_url"] == "https://example.com"
    binary = {"stat_t": "a/b", "pl_on": "1", "pl_off": "0", "dev_cla": "door", "exp_aft": 60}
    assert validate("binary_sensor", binary) == []


def test_missing_state_topic() -> None:
    payload = _sensor()
    del payload["state_topic"]
    assert _mentions(validate("sensor", payload), "state_topic")


@pytest.mark.parametrize("platform", ["sensor", "binary_sensor"])
def test_unknown_key(platform: str) -> None:
    payload = _sensor(colour="red") if platform == "sensor" else _binary(colour="red")
    assert _mentions(validate(platform, payload), "colour")


def test_object_id_is_reported_as_removed() -> None:
    problems = validate("sensor", _sensor(object_id="unit07_t"))
    assert _mentions(problems, "object_id")
    assert _mentions(problems, "default_entity_id")


def test_bad_device_class() -> None:
    assert _mentions(validate("sensor", _sensor(device_class="acidity")), "device_class")
    assert _mentions(validate("binary_sensor", _binary(device_class="temperature")), "device_class")


def test_unit_must_suit_device_class() -> None:
    assert _mentions(validate("sensor", _sensor(unit_of_measurement="C")), "unit_of_measurement")
    ph = _sensor(device_class="ph", unit_of_measurement="pH")
    assert _mentions(validate("sensor", ph), "unit_of_measurement")
    ph_clean = _sensor(device_class="ph")
    del ph_clean["unit_of_measurement"]
    assert validate("sensor", ph_clean) == []
    assert SENSOR_DEVICE_CLASS_UNITS["temperature"] == {"°C", "°F", "K"}


def test_availability_topic_with_availability() -> None:
    payload = _sensor(availability_topic="u/status", availability=[{"topic": "u/status"}])
    assert _mentions(validate("sensor", payload), "availability_topic")


def test_device_without_identifiers_or_connections() -> None:
    payload = _sensor(device={"name": "Unit 07", "manufacturer": "Acme"})
    problems = validate("sensor", payload)
    assert _mentions(problems, "device")
    assert _mentions(problems, "identifiers")


@pytest.mark.parametrize("qos", [3, -1, "1", True])
def test_bad_qos(qos: object) -> None:
    assert _mentions(validate("binary_sensor", _binary(qos=qos)), "qos")


@pytest.mark.parametrize("topic", ["fleet/+/telemetry", "fleet/#", "fleet/a#", "", "a\0b"])
def test_bad_state_topic(topic: str) -> None:
    assert _mentions(validate("sensor", _sensor(state_topic=topic)), "state_topic")


def test_more_rules() -> None:
    assert _mentions(validate("sensor", _sensor(entity_category="config")), "entity_category")
    assert _mentions(validate("sensor", _sensor(icon="flask")), "icon")
    assert _mentions(validate("sensor", _sensor(expire_after=-5)), "expire_after")
    assert validate("sensor", _sensor(expire_after=0)) == []
    assert _mentions(validate("sensor", _sensor(origin={"sw_version": "1"})), "origin.name")
    assert _mentions(validate("sensor", _sensor(device=DEVICE | {"colour": "x"})), "colour")
    assert _mentions(validate("binary_sensor", _binary(payload_on=1)), "payload_on")
    assert _mentions(validate("sensor", _sensor(state_class="average")), "state_class")
    assert _mentions(validate("sensor", _sensor(stat_t="x/y")), "state_topic")  # both forms
    assert _mentions(validate("sensor", _sensor(enabled_by_default="yes")), "enabled_by_default")
    assert _mentions(validate("sensor", _sensor(json_attributes_topic="a/+x")), "json_attributes")
    options = _sensor(device_class="enum", options=["leach", "rinse"])
    del options["state_class"], options["unit_of_measurement"]
    assert validate("sensor", options) == []
    assert _mentions(validate("sensor", _sensor(options=["a"])), "options")
