"""Telemetry stored by a unit before `fleet/v2` (nested pumps, a `bad` object), made flat.

An upgrade keeps the outbox: a backlog written by the old software goes out after it, on the
v2 topics, so it is sent in the v2 shape that the birth certificate describes.
"""

from __future__ import annotations

import json
from typing import Any

from unit_controller.mqtt.metric_names import pump_ident

# Every stored v1 telemetry message has it; no v2 message has a `bad` key.
_V1_MARK = b'"bad":'
_PER_PUMP = {"pumps_ml_min": "ml_min", "dispensed_ml": "dispensed_ml", "reagents_ml": "reagents_ml"}
# The values v1 flagged under `bad` when they were not good.
_READINGS = (
    "temperature_c",
    "ph",
    "level_low_low",
    "level_low",
    "level_high",
    "level_high_high",
    "estop_pressed",
)


def is_v1_telemetry(payload: bytes) -> bool:
    """True for a telemetry message in the pre-v2 (nested) shape."""
    return _V1_MARK in payload


def flatten_v1_telemetry(payload: bytes) -> bytes:
    """The v2 (flat) form of a v1 telemetry message; anything else comes back unchanged."""
    if not is_v1_telemetry(payload):
        return payload
    try:
        old = json.loads(payload)
    except ValueError:
        return payload  # not ours to mend: sent as it was stored
    if not isinstance(old, dict) or not isinstance(old.get("bad"), dict):
        return payload
    bad: dict[str, Any] = old["bad"]
    new: dict[str, Any] = {}
    for key, value in old.items():
        if key in ("bad", "StateCurrent"):  # StateCurrent is state_no
            continue
        if key == "UnitModeCurrent":
            new["unit_mode_no"] = value
        elif key in _PER_PUMP and isinstance(value, dict):
            for tag, number in value.items():
                name = f"pump_{pump_ident(tag)}_{_PER_PUMP[key]}"
                new[name] = number
                if key == "dispensed_ml":
                    why = bad.get(f"dispensed_ml.{tag}")
                    new[f"{name}_bad"] = why if why or number is not None else "no reading yet"
        else:
            new[key] = value
            if key in _READINGS:
                new[f"{key}_bad"] = bad.get(key)
    return json.dumps(new, separators=(",", ":"), allow_nan=False).encode()
