"""The simulated EZO-pH keeps its calibration through a restart of the simulated unit, as the
circuit keeps it through a power cycle; what it cannot read back it does not half-take."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hal.clock import VirtualClock
from unit_controller.backend import SIM_PH_MEMORY, open_backend
from unit_controller.config import load_config


async def _calibrate_mid_and_low(state_dir: Path) -> tuple[float, float]:
    async with open_backend(load_config(), clock=VirtualClock(), state_dir=state_dir) as backend:
        assert backend.simulated is not None
        probe = backend.simulated.ph
        await probe.calibrate("mid", 7.0, temperature_c=25.0)
        result = await probe.calibrate("low", 4.0, temperature_c=25.0)
        return result.status.acid_slope_pct, result.status.offset_mv


async def test_a_restarted_simulated_unit_keeps_its_ph_calibration(tmp_path: Path) -> None:
    acid, offset = await _calibrate_mid_and_low(tmp_path)
    async with open_backend(load_config(), clock=VirtualClock(), state_dir=tmp_path) as backend:
        assert backend.simulated is not None
        probe = backend.simulated.ph
        status = await probe.calibration_status()
        assert (status.points, status.acid_slope_pct, status.offset_mv) == (2, acid, offset)
        await probe.clear_calibration()  # kept too
    async with open_backend(load_config(), clock=VirtualClock(), state_dir=tmp_path) as backend:
        assert backend.simulated is not None
        assert (await backend.simulated.ph.calibration_status()).points == 0


@pytest.mark.parametrize(
    "memory",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"points": [{"point": "low", "value": 4.0, "temperature_c": 25, "read": 4.1}]}),
        json.dumps({"points": [{"point": "mid", "value": "7", "temperature_c": 25, "read": 7}]}),
        json.dumps({"points": [{"point": "mid", "value": 7.0, "temperature_c": 25}]}),
    ],
    ids=["garbage", "a list", "low without mid", "a quoted number", "no reading"],
)
async def test_a_memory_it_cannot_read_leaves_the_probe_uncalibrated(
    tmp_path: Path, memory: str
) -> None:
    (tmp_path / SIM_PH_MEMORY).write_text(memory)
    async with open_backend(load_config(), clock=VirtualClock(), state_dir=tmp_path) as backend:
        assert backend.simulated is not None
        probe = backend.simulated.ph
        assert (await probe.calibration_status()).points == 0
        await probe.calibrate("mid", 7.0, temperature_c=25.0)  # and it calibrates as new
    assert json.loads((tmp_path / SIM_PH_MEMORY).read_text())["points"][0]["point"] == "mid"


async def test_without_a_state_directory_nothing_is_kept(tmp_path: Path) -> None:
    async with open_backend(load_config(), clock=VirtualClock()) as backend:
        assert backend.simulated is not None
        await backend.simulated.ph.calibrate("mid", 7.0, temperature_c=25.0)
    assert os.listdir(tmp_path) == []
