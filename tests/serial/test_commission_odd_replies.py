"""`commission` against circuits that answer oddly: each is a problem named on its device's
line, never a traceback (the console's own survey, through the daemon, already was)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hal.sim.emulators.ezo_pmp import EzoPmpEmulator
from hal.sim.emulators.ezo_sensors import EzoPhEmulator
from tests.serial.conftest import (
    PUMP_TAG,
    _ph_emulator,
    _pump_emulator,
    ezo_rig,
    make_ph,
    make_pump,
)
from unit_controller.commissioning.report import DeviceReport
from unit_controller.commissioning.survey import _ezo
from unit_controller.config import load_config

Handle = Callable[[Any, str], Awaitable[list[str]]]


def _answering(cls: type, replies: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """`cls`'s circuits answer each command in `replies` with those lines instead."""
    answer: Handle = cls._handle  # type: ignore[attr-defined]

    async def odd(self: Any, text: str) -> list[str]:
        if text in replies:
            return list(replies[text])
        return await answer(self, text)

    monkeypatch.setattr(cls, "_handle", odd)


async def _ph_report(tmp_path: Path) -> DeviceReport:
    config = load_config()
    async with ezo_rig(tmp_path, "usb-ezo-ph-odd", _ph_emulator, make_ph, start=False) as rig:
        rig.emulator.cal_points = ["mid", "low", "high"]  # so its slope is asked
        wiring = config.wiring.ph_probe().model_copy(update={"port": rig.port.path})
        return await _ezo("AT-101", "pH", wiring, config, rig.clock, None, tmp_path)


async def test_a_ph_circuit_answering_its_slope_with_no_line_is_a_problem_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by a controls engineer: IndexError out of `commission`, no report.
    _answering(EzoPhEmulator, {"Slope,?": []}, monkeypatch)
    report = await _ph_report(tmp_path)
    assert report.found
    assert any("answered Slope,? with a reply the checks cannot read" in p for p in report.problems)


async def test_a_ph_reading_outside_the_probes_range_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answering(EzoPhEmulator, {"R": ["99.000"]}, monkeypatch)
    report = await _ph_report(tmp_path)
    assert any(p.startswith("reads pH 99, outside the probe's range") for p in report.problems)


@pytest.mark.parametrize(
    ("command", "reply"),
    [("DC,?", "?MAXRATE,abc"), ("PV,?", "?PV,11.9V"), ("DC,?", "?MAXRATE,1_0")],
)
async def test_a_pump_answering_a_number_that_is_not_one_is_a_problem_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, reply: str
) -> None:
    _answering(EzoPmpEmulator, {command: [reply]}, monkeypatch)
    config = load_config()
    async with ezo_rig(tmp_path, "usb-ezo-pmp-odd", _pump_emulator, make_pump, start=False) as rig:
        wiring = config.wiring.pumps()[PUMP_TAG].model_copy(update={"port": rig.port.path})
        report = await _ezo(PUMP_TAG, "PMP", wiring, config, rig.clock, None, tmp_path)
    assert report.found
    assert [p for p in report.problems if f"answered {command} with a reply" in p], report
    assert "not a number in the reply" in report.problems[0]
