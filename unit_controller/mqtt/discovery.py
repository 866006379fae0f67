"""Home Assistant MQTT discovery: the retained configs that make a unit a device with sensors.

Published (retained) on every connect when `[mqtt] discovery = true`, under
`<prefix>/<platform>/<node>/<object>/config`; the entities read the unit's own telemetry, status
and alarms topics, so nothing is published twice. Names and keys as Home Assistant's MQTT
sensor and binary sensor schemas document them (tests/fleet/ha_schema.py checks them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from unit_controller.machine import State
from unit_controller.mqtt.payloads import LEVEL_KEYS, encode
from unit_controller.mqtt.topics import Topics

DEFAULT_PREFIX = "homeassistant"
_NODE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity of a unit."""

    platform: str  # "sensor" | "binary_sensor"
    key: str  # the telemetry key it shows (also its object id)
    name: str
    extra: dict[str, Any]


def _value(key: str) -> str:
    # A null value renders "None", which Home Assistant's MQTT entities take as unknown.
    return "{{ value_json." + key + " }}"


def entities() -> list[Entity]:
    """What a unit shows in Home Assistant: readings, state, phase, alarms, switches, E-stop."""
    level_names = {
        "level_low_low": "Level low-low",
        "level_low": "Level low",
        "level_high": "Level high",
        "level_high_high": "Level high-high",
    }
    found: list[Entity] = [
        Entity(
            "sensor",
            "temperature_c",
            "Temperature",
            {"device_class": "temperature", "unit_of_measurement": "°C",
             "state_class": "measurement", "suggested_display_precision": 1},
        ),
        Entity(
            "sensor",
            "ph",
            "pH",
            {"device_class": "ph", "state_class": "measurement",
             "suggested_display_precision": 2},
        ),
        Entity(
            "sensor",
            "temperature_sp_c",
            "Temperature setpoint",
            {"device_class": "temperature", "unit_of_measurement": "°C",
             "state_class": "measurement"},
        ),
        Entity("sensor", "ph_sp", "pH setpoint", {"device_class": "ph"}),
        Entity(
            "sensor",
            "state",
            "State",
            {"device_class": "enum", "options": [s.value for s in State],
             "icon": "mdi:state-machine"},
        ),
        Entity("sensor", "phase", "Phase", {"icon": "mdi:progress-clock"}),
        Entity("sensor", "recipe", "Recipe", {"icon": "mdi:book-open-variant"}),
        Entity(
            "sensor",
            "alarms_active",
            "Alarms",
            {"state_class": "measurement", "icon": "mdi:alarm-light"},
        ),
        *(
            Entity(
                "binary_sensor",
                key,
                level_names[key],
                {"device_class": "moisture", "payload_on": "True", "payload_off": "False"},
            )
            for key in LEVEL_KEYS.values()
        ),
        Entity(
            "binary_sensor",
            "estop_pressed",
            "E-stop",
            {"device_class": "safety", "payload_on": "True", "payload_off": "False"},
        ),
    ]  # fmt: skip
    return found


def node_id(unit: str) -> str:
    """The unit id as a discovery topic level (Home Assistant allows `[A-Za-z0-9_-]`)."""
    return _NODE_UNSAFE.sub("_", unit)


def discovery_messages(
    *, topics: Topics, prefix: str, site: str, version: str, model: str = "battery-recycling unit"
) -> list[tuple[str, bytes]]:
    """Every entity's (config topic, retained payload) for one unit."""
    unit = topics.unit
    node = node_id(unit)
    device = {
        "identifiers": [f"unit-controller-{unit}"],
        "name": unit,
        "manufacturer": "unit-controller",
        "model": model,
        "sw_version": version,
        "suggested_area": site,
    }
    origin = {"name": "unit-controller", "sw_version": version}
    messages = []
    for entity in entities():
        config: dict[str, Any] = {
            "name": entity.name,
            "unique_id": f"{node}_{entity.key}",
            "state_topic": topics.telemetry,
            "value_template": _value(entity.key),
            "availability_topic": topics.status,
            "payload_available": "online",
            "payload_not_available": "offline",
            "qos": 1,
            "device": device,
            "origin": origin,
            **entity.extra,
        }
        if entity.key == "alarms_active":
            config |= {
                "json_attributes_topic": topics.alarms,
                "json_attributes_template": "{{ {'alarms': value_json.alarms} | tojson }}",
            }
        topic = f"{prefix}/{entity.platform}/{node}/{entity.key}/config"
        messages.append((topic, encode(config)))
    return messages
