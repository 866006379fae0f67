"""The EZO-pH, EZO-RTD and EZO-PMP UART command tables, answered as the datasheets and real
circuits answer them (case of the reply prefix aside: firmware versions differ in it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hal.serial.ezo_link import COMMAND_S, READ_S, EzoError, EzoLink
from tests.conformance.conftest import ezo

NUMBER = r"-?\d+(\.\d+)?"


async def _ask(link: EzoLink, command: str, wait_s: float = COMMAND_S) -> list[str]:
    return await link.command(command, wait_s=wait_s, timeout_s=1.0)


def _one(lines: list[str], pattern: str) -> str:
    assert len(lines) == 1, lines
    assert re.fullmatch(pattern, lines[0], flags=re.IGNORECASE), lines
    return lines[0]


@pytest.mark.parametrize("kind", ["pH", "RTD", "PMP"])
async def test_identity_status_and_the_common_commands(
    kind: str, where: str, tmp_path: Path
) -> None:
    async with ezo(kind, where, tmp_path) as link:
        assert link.firmware is not None
        assert link.firmware.device.upper() == kind.upper()
        _one(await _ask(link, "Status"), rf"\?Status,[PSBWU],{NUMBER}")
        _one(await _ask(link, "*OK,?"), r"\?\*OK,1")
        _one(await _ask(link, "L,?"), r"\?L,[01]")
        _one(await _ask(link, "C,?"), r"\?C,\d+")  # 0 after the start-up sequence
        with pytest.raises(EzoError) as refused:
            await _ask(link, "Frobnicate,7")
        assert refused.value.code == "*ER"


@pytest.mark.parametrize("kind", ["pH", "RTD"])
async def test_a_reading_is_one_number_and_commands_are_not_case_sensitive(
    kind: str, where: str, tmp_path: Path
) -> None:
    async with ezo(kind, where, tmp_path) as link:
        _one(await _ask(link, "R", wait_s=READ_S), NUMBER)
        _one(await _ask(link, "r", wait_s=READ_S), NUMBER)
        _one(await _ask(link, "Cal,?"), r"\?Cal,\d")


async def test_ph_compensation_and_slope(where: str, tmp_path: Path) -> None:
    async with ezo("pH", where, tmp_path) as link:
        assert await _ask(link, "T,25.3") == []
        _one(await _ask(link, "T,?"), r"\?T,25\.3\d*")
        # Two fields on older firmware, the zero-point offset (mV) as a third on newer.
        _one(await _ask(link, "Slope,?"), rf"\?Slope,{NUMBER},{NUMBER}(,{NUMBER})?")


async def test_rtd_scale_and_logger(where: str, tmp_path: Path) -> None:
    async with ezo("RTD", where, tmp_path) as link:
        _one(await _ask(link, "S,?"), r"\?S,[ckf]")
        _one(await _ask(link, "D,?"), r"\?D,\d+")


async def test_pump_maximum_too_fast_totals_and_an_idle_stop(where: str, tmp_path: Path) -> None:
    async with ezo("PMP", where, tmp_path) as link:
        line = _one(await _ask(link, "DC,?"), rf"\?MAXRATE,{NUMBER}")
        maximum = float(line.split(",")[1])
        with pytest.raises(EzoError) as refused:
            await _ask(link, f"DC,{maximum * 2:.2f},1")
        assert "*TOOFAST" in refused.value.reasons
        _one(await _ask(link, "TV,?"), rf"\?TV,{NUMBER}")
        _one(await _ask(link, "ATV,?"), rf"\?ATV,{NUMBER}")
        _one(await _ask(link, "PV,?"), rf"\?PV,{NUMBER}")
        _one(await _ask(link, "D,?"), rf"\?D,{NUMBER},[01]")
        _one(await _ask(link, "P,?"), r"\?P,0")
        stopped = await link.command("X", wait_s=COMMAND_S, timeout_s=1.0, done_ends=True)
        assert stopped in ([], ["*DONE,0.00"])


async def test_a_pump_dose_answers_ok_then_done_when_it_ends(where: str, tmp_path: Path) -> None:
    async with ezo("PMP", where, tmp_path) as link:
        done: list[str] = []
        link.on_done(done.append)
        assert await _ask(link, "D,1") == []  # 1 mL at full speed: about a second
        for _ in range(20):
            if done:
                break
            await _ask(link, "D,?")
        assert done
        assert re.fullmatch(rf"\*DONE,{NUMBER}", done[0])
