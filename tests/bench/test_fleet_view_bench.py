"""The fleet view's load benchmark on a tiny scale: its code runs end to end, no timing asserted."""

from __future__ import annotations

import pytest

from bench.bench_fleet_view import measure
from bench.fleet_load import telemetry
from unit_controller.config import load_config
from unit_controller.mqtt.payloads import telemetry_metrics

pytestmark = pytest.mark.xdist_group("real_time")


def test_generated_telemetry_has_the_shape_of_a_real_units() -> None:
    names = [m.name for m in telemetry_metrics(load_config().wiring)]
    assert list(telemetry(3, seq=5, ts_ms=42)) == names


def test_the_benchmark_sees_every_unit_and_reports_its_figures() -> None:
    figures = measure(units=4, seconds=2.0)
    assert figures["units_seen"] == 4
    assert figures["telemetry_sent"] >= 8
    assert figures["messages_received"] >= figures["telemetry_sent"]
    for key in ("view_cpu_percent", "lag_p99_worst_second_s", "lag_max_s", "pass"):
        assert key in figures
