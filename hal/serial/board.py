"""The serial backend on real hardware: EZO circuits and the relay/IO board from the unit's wiring.

Starts each driver in its own task and stops them on exit; never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from hal.board import Board
from hal.clock import Clock
from hal.serial import EzoDevices, ezo_devices
from hal.serial.relay_board import RelayBoard
from hal.tasks import cancel_and_wait
from hal.wiring import BoardWiring, SerialSettings


def board_from(*, ezo: EzoDevices, relay_board: RelayBoard) -> Board:
    """The Board the controller sees, on the EZO drivers and the relay/IO board's views."""
    return Board(
        temperature=ezo.rtd,
        ph=ezo.ph,
        heater=relay_board.heater(),
        coils=relay_board.coils(),
        levels=relay_board.levels(),
        estop=relay_board.estop(),
        pumps=dict(ezo.pumps),
    )


@dataclass(frozen=True, slots=True)
class SerialHardware:
    """The Board on the serial drivers, and the drivers themselves (for commissioning)."""

    board: Board
    ezo: EzoDevices
    relay_board: RelayBoard


@contextlib.asynccontextmanager
async def serial_board(
    *, wiring: BoardWiring, settings: SerialSettings, clock: Clock
) -> AsyncIterator[SerialHardware]:
    """The unit's Board on its serial ports (by stable path), drivers running while inside."""
    if not settings.relay_board_port:
        raise ValueError("serial backend: [hal.serial] relay_board_port is not set")
    ezo = ezo_devices(wiring, clock=clock)
    relay_board = RelayBoard(
        path=settings.relay_board_port,
        clock=clock,
        wiring=wiring,
        slave=settings.relay_board_slave,
        baudrate=settings.baudrate,
    )
    board = board_from(ezo=ezo, relay_board=relay_board)
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(ezo.run(), name="drivers:ezo"),
        loop.create_task(relay_board.run(), name="drivers:relay-board"),
    ]
    try:
        yield SerialHardware(board=board, ezo=ezo, relay_board=relay_board)
    finally:
        await cancel_and_wait(tasks)
