"""EzoLink alone against an emulator on a real pty: framing, typed errors, reopening the port.

What the drivers build on: every reply checked, the start-up sequence, a port that comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hal.mock.unit import SimulatedUnit
from hal.serial.ezo_link import EzoError, EzoGarbage, EzoLink, EzoPortLost, EzoTimeout
from hal.serial.reconnect import Backoff, within
from hal.sim.emulators.ezo import EzoRtdEmulator
from hal.sim.emulators.pty_port import PtyPort
from tests.serial.conftest import lockstep
from unit_controller.config import load_config


@pytest.fixture
async def wire(tmp_path: Path) -> AsyncIterator[tuple[EzoLink, EzoRtdEmulator, PtyPort]]:
    """An RTD emulator on a pty and a link on its path (not yet connected)."""
    ports: list[PtyPort] = []
    async with lockstep(ports) as clock:
        config = load_config()
        unit = SimulatedUnit(wiring=config.wiring, params=config.sim.plant, clock=clock, seed=1)
        port = PtyPort(directory=tmp_path, name="usb-ezo-rtd")
        ports.append(port)
        emulator = EzoRtdEmulator(port=port, unit=unit, clock=clock)
        emulator.start()
        link = EzoLink(
            tag="TT-101",
            path=port.path,
            clock=clock,
            timeout_s=1.0,
            backoff=Backoff(initial_s=0.5, max_s=2.0),
        )
        try:
            yield link, emulator, port
        finally:
            await link.close()
            await emulator.stop()
            port.close()


async def test_start_up_turns_continuous_off_and_codes_on(
    wire: tuple[EzoLink, EzoRtdEmulator, PtyPort],
) -> None:
    link, emulator, _ = wire
    await link.connect()
    assert emulator.commands == ["C,0", "*OK,1", "i", "Status"]
    assert not emulator.continuous
    assert link.generation == 1
    assert link.firmware is not None
    assert (link.firmware.device, link.firmware.text) == ("RTD", "2.13")
    assert (link.restart_reason, link.voltage) == ("P", 5.038)
    assert await link.command("i", wait_s=0.3, timeout_s=2.0) == ["?i,RTD,2.13"]


async def test_refusal_is_a_typed_error_with_its_code(
    wire: tuple[EzoLink, EzoRtdEmulator, PtyPort],
) -> None:
    link, emulator, _ = wire
    await link.connect()
    emulator.error_next(1)
    with pytest.raises(EzoError) as refused:
        await link.command("R", wait_s=0.9, timeout_s=2.0)
    assert refused.value.code == "*ER"
    with pytest.raises(EzoError):
        await link.command("Bogus,1", wait_s=0.3, timeout_s=2.0)


async def test_silence_times_out_and_garbage_is_reported_then_the_line_recovers(
    wire: tuple[EzoLink, EzoRtdEmulator, PtyPort],
) -> None:
    link, emulator, _ = wire
    await link.connect()
    emulator.silent(True)
    with pytest.raises(EzoTimeout):
        await link.command("R", wait_s=0.9, timeout_s=1.0)
    emulator.silent(False)
    emulator.garbage(4)
    with pytest.raises(EzoGarbage):
        await link.command("R", wait_s=0.9, timeout_s=2.0)
    assert await link.command("Status", wait_s=0.3, timeout_s=2.0) == ["?Status,P,5.038"]


async def test_a_run_of_late_replies_does_not_leave_the_link_a_reply_behind(
    wire: tuple[EzoLink, EzoRtdEmulator, PtyPort],
) -> None:
    # Four replies 2.5 s late (the link waits 1.3 s for these): each command then took its
    # predecessor's reply, for good ('i' answered by '?Status,...'), until a restart.
    link, emulator, _ = wire
    await link.connect()
    emulator.delay_next(4, 2.5)
    for command in ("i", "Status", "i", "Status"):
        with contextlib.suppress(EzoTimeout, EzoGarbage):
            await link.command(command, wait_s=0.3, timeout_s=1.0)
    # The circuit works through its backlog of late replies; then every answer is its own.
    for _ in range(6):
        with contextlib.suppress(EzoTimeout, EzoGarbage):
            if await link.command("i", wait_s=0.3, timeout_s=1.0) == ["?i,RTD,2.13"]:
                break
    for _ in range(3):
        assert await link.command("i", wait_s=0.3, timeout_s=1.0) == ["?i,RTD,2.13"]
        assert await link.command("Status", wait_s=0.3, timeout_s=1.0) == ["?Status,P,5.038"]
        (reading,) = await link.command("R", wait_s=0.9, timeout_s=1.0)
        float(reading)


async def test_a_late_query_reply_is_not_taken_for_the_next_ones(
    wire: tuple[EzoLink, EzoRtdEmulator, PtyPort],
) -> None:
    link, _, port = wire
    await link.connect()
    port.write(b"?Status,P,5.038\r*OK\r")  # a reply that came after its command gave up
    assert await link.command("i", wait_s=0.3, timeout_s=1.0) == ["?i,RTD,2.13"]


async def test_restart_codes_ask_for_the_start_up_sequence_again(
    wire: tuple[EzoLink, EzoRtdEmulator, PtyPort],
) -> None:
    link, emulator, _ = wire
    await link.connect()
    emulator.brownout()
    await link.command("i", wait_s=0.3, timeout_s=2.0)  # *RS/*RE are discarded, and noted
    assert link.needs_init
    await link.initialise()
    assert link.generation == 2
    assert not emulator.continuous


async def test_a_vanished_port_is_reopened_with_backoff_when_it_returns(
    wire: tuple[EzoLink, EzoRtdEmulator, PtyPort],
) -> None:
    link, _, port = wire
    await link.connect()
    with capture_logs() as logs:
        port.unplug()
        with pytest.raises(EzoPortLost):
            await link.command("R", wait_s=0.9, timeout_s=2.0)
        reconnecting = asyncio.ensure_future(link.connect())
        await asyncio.sleep(0)
        assert not reconnecting.done()
        port.replug()
        await asyncio.wait_for(reconnecting, timeout=5.0)
    events = [entry["event"] for entry in logs]
    assert events.index("ezo.port_lost") < events.index("ezo.reconnected")
    assert (await link.command("i", wait_s=0.3, timeout_s=2.0)) == ["?i,RTD,2.13"]


async def test_within_gives_up_on_the_clock_and_passes_cancellation_on() -> None:
    async with lockstep([]) as clock:
        with pytest.raises(TimeoutError):
            await within(clock, 0.5, asyncio.Event().wait())
        task = asyncio.ensure_future(within(clock, 100.0, asyncio.Event().wait()))
        await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()


@pytest.mark.parametrize("text", ["1_0", " 3e1", "3e1", "nan", "inf", "+25.0", "25.", ".5", "0x1F"])
def test_a_reading_is_only_what_an_ezo_circuit_writes_not_what_python_takes(text: str) -> None:
    # Found by a controls engineer: float() took "1_0" as 10.0 °C, flagged good.
    from hal.serial.ezo_link import EzoGarbage, ezo_number
    from hal.serial.ezo_rtd import _reading

    with pytest.raises(ValueError, match="not a number as an EZO"):
        ezo_number(text)
    with pytest.raises(EzoGarbage, match="not a number"):
        _reading([text], tag="TT-101", command="R")


@pytest.mark.parametrize(("text", "value"), [("25.104", 25.104), ("-1023.000", -1023.0), ("7", 7)])
def test_what_an_ezo_circuit_writes_is_read(text: str, value: float) -> None:
    from hal.serial.ezo_link import ezo_number

    assert ezo_number(text) == value
