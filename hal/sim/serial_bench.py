"""The simulated unit behind its real serial protocols: emulators on ptys, real drivers on top.

Everything the controller sees comes through the serial drivers, byte for byte as on a unit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from hal.board import Board
from hal.clock import Clock
from hal.mock.unit import SimulatedUnit
from hal.serial import EzoDevices, ezo_devices
from hal.serial.board import board_from
from hal.serial.modbus_frames import RelayBoardTiming
from hal.serial.relay_board import RelayBoard
from hal.sim.emulator_set import EmulatorSet, emulator_set
from hal.tasks import cancel_and_wait
from hal.wiring import SerialSettings


@dataclass
class SerialBench:
    """The board the controller drives, and the emulators and ports behind it."""

    board: Board
    ezo: EzoDevices
    relay_board: RelayBoard
    emulated: EmulatorSet


@contextlib.asynccontextmanager
async def serial_bench(
    *, unit: SimulatedUnit, settings: SerialSettings, clock: Clock
) -> AsyncIterator[SerialBench]:
    """Emulators for every instrument of `unit` on ptys, and the serial drivers talking to them."""
    async with emulator_set(unit=unit, settings=settings, clock=clock) as emulated:
        # The drivers find the emulators where a unit's config would name its adapters.
        wired = emulated.wired()
        ezo = ezo_devices(wired, clock=clock)
        relay_board = RelayBoard(
            path=emulated.ports["relay-board"].path,
            clock=clock,
            wiring=wired,
            slave=settings.relay_board_slave,
            baudrate=settings.baudrate,
            # The board is judged lost before its inputs go stale (3 s), so the alarm says
            # device_lost rather than only a stale E-stop.
            timing=RelayBoardTiming(lost_after_s=2.5),
        )
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(ezo.run(), name="drivers:ezo"),
            loop.create_task(relay_board.run(), name="drivers:relay-board"),
        ]
        try:
            yield SerialBench(
                board=board_from(ezo=ezo, relay_board=relay_board),
                ezo=ezo,
                relay_board=relay_board,
                emulated=emulated,
            )
        finally:
            await cancel_and_wait(tasks)
