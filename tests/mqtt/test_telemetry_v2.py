"""Telemetry a generic consumer reads (fleet/v2): flat, identifier keys, exactly the metrics the
birth names, every value of its declared type, null never absent; a v1 backlog goes out flat.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hal.schema import ValidationError
from tests.mqtt.fleet import fleet_config
from tests.mqtt.test_fleet_service import NO_BROKER, _service
from tests.rig import Rig
from unit_controller.config import UnitConfig, load_config
from unit_controller.mqtt.legacy import flatten_v1_telemetry, is_v1_telemetry
from unit_controller.mqtt.metric_names import IDENTIFIER, pump_ident
from unit_controller.mqtt.payloads import telemetry_metrics

TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "string": (str,),
}


def _check(message: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
    assert list(message) == [m["name"] for m in metrics]
    for metric in metrics:
        value = message[metric["name"]]
        if value is None:
            assert metric["nullable"], f"{metric['name']} is null but not nullable"
            continue
        allowed = TYPES[metric["type"]]
        assert isinstance(value, allowed), (metric, value)
        if metric["type"] in ("int", "float"):
            assert not isinstance(value, bool), (metric, value)


async def test_every_message_is_flat_and_carries_exactly_the_birth_metrics(
    tmp_path: Path,
) -> None:
    rig = Rig(config=fleet_config(NO_BROKER, tmp_path))
    service = await _service(rig, tmp_path)
    try:
        await rig.run_for(2.0)
        await rig.start("smoke")
        await rig.run_for(20.0)
        rig.inject("device_silent", "TT-101")  # the temperature goes bad, with a reason
        await rig.run_for(10.0)
        rig.inject("estop")
        await rig.run_for(5.0)
        await service.outbox.flush()
        rows = await service.outbox.read(after_id=0, up_to_id=10**9, limit=10_000)
        birth = json.loads(service._birth(1))
    finally:
        await service.stop(drain_timeout_s=0.0)
    metrics = birth["metrics"]
    assert birth["format"] == 2
    assert all(IDENTIFIER.match(m["name"]) for m in metrics), metrics
    assert "pump_p201_ml_min" in {m["name"] for m in metrics}
    telemetry = [json.loads(r.payload) for r in rows if r.kind == "telemetry"]
    assert len(telemetry) > 30
    for message in telemetry:
        _check(message, metrics)
    states = {t["state"] for t in telemetry}
    assert {"STOPPED", "EXECUTE"} <= states, states
    assert states & {"ABORTING", "ABORTED"}, states
    bad = [t for t in telemetry if t["temperature_c"] is None]
    assert bad
    assert all(isinstance(t["temperature_c_bad"], str) for t in bad)
    good = [t for t in telemetry if t["temperature_c"] is not None]
    assert good
    assert all(t["temperature_c_bad"] is None for t in good)
    assert any(t["phase"] is not None for t in telemetry)
    assert any(t["phase"] is None for t in telemetry)  # before the batch: null, not absent


def test_pump_tags_become_identifiers() -> None:
    assert pump_ident("P-201") == "p201"
    assert pump_ident("P-202A") == "p202a"
    assert pump_ident("DP-1001") == "dp1001"


def test_pump_tags_that_would_share_metric_names_are_refused() -> None:
    document = load_config().model_dump(exclude_unset=True)
    devices = document["devices"]
    devices["P2-01"] = devices["P-201"]
    with pytest.raises(ValidationError) as caught:
        UnitConfig.model_validate(document)
    assert "P-201" in str(caught.value)
    assert "P2-01" in str(caught.value)
    assert "pump_p201_" in str(caught.value)


V1 = {
    "ts": 1767225600000,
    "seq": 7,
    "sess": 2,
    "boot": 3,
    "state": "EXECUTE",
    "state_no": 6,
    "unit_mode": "production",
    "StateCurrent": 6,
    "UnitModeCurrent": 1,
    "authority": "remote",
    "phase": "leach",
    "phase_no": 2,
    "phase_count": 5,
    "phase_elapsed_s": 12.5,
    "phase_remaining_s": None,
    "phase_waits_on_event": False,
    "phase_waits_for": None,
    "recipe": "leach",
    "temperature_c": None,
    "temperature_sp_c": 60.0,
    "ph": 1.52,
    "ph_sp": None,
    "level_low_low": True,
    "level_low": True,
    "level_high": False,
    "level_high_high": False,
    "estop_pressed": False,
    "heater_duty": 0.4,
    "heater_on": True,
    "contactor": True,
    "agitator": True,
    "fill_pump": False,
    "drain_valve": False,
    "purge_valve": True,
    "cooling_valve": False,
    "pumps_ml_min": {f"P-20{n}": 0.0 for n in range(1, 6)},
    "dispensed_ml": {f"P-20{n}": (None if n == 3 else 1.5) for n in range(1, 6)},
    "reagents_ml": {f"P-20{n}": 3.0 for n in range(1, 6)},
    "awaiting_confirmation": None,
    "alarms_active": 1,
    "outbox_backlog": 12,
    "outbox_dropped": 0,
    "clock_synchronized": True,
    "storage_failing": False,
    "bad": {"temperature_c": "device silent", "dispensed_ml.P-203": "timeout"},
}


def test_a_v1_message_in_the_outbox_goes_out_in_the_v2_shape() -> None:
    stored = json.dumps(V1, separators=(",", ":")).encode()
    assert is_v1_telemetry(stored)
    flat = json.loads(flatten_v1_telemetry(stored))
    metrics = [m.as_json() for m in telemetry_metrics(load_config().wiring)]
    assert set(flat) == {m["name"] for m in metrics}
    _check({m["name"]: flat[m["name"]] for m in metrics}, metrics)
    assert flat["temperature_c_bad"] == "device silent"
    assert flat["ph_bad"] is None
    assert flat["unit_mode_no"] == 1
    assert (flat["pump_p203_dispensed_ml"], flat["pump_p203_dispensed_ml_bad"]) == (None, "timeout")
    assert (flat["pump_p201_dispensed_ml"], flat["pump_p201_dispensed_ml_bad"]) == (1.5, None)
    # v2 messages and anything not telemetry of ours pass unchanged
    v2 = flatten_v1_telemetry(stored)
    assert flatten_v1_telemetry(v2) == v2
    assert flatten_v1_telemetry(b'{"bad":{not json') == b'{"bad":{not json'
