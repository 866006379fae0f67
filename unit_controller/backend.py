"""The unit's hardware, chosen from config in this one place: the serial drivers on real
instruments, or the mock devices on the simulated plant (the mock backend).

Each backend's code is imported when that backend opens: a unit on real instruments never loads
the plant simulator, and the simulator never loads pyserial or pymodbus.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hal.board import Board
from hal.clock import Clock
from unit_controller.config import UnitConfig

if TYPE_CHECKING:
    from hal.mock.unit import SimulatedUnit
    from hal.serial.board import SerialHardware


@dataclass(frozen=True, slots=True)
class Backend:
    """The board the controller drives, and the simulated unit behind it (mock backend) or the
    serial drivers (serial backend)."""

    board: Board
    simulated: SimulatedUnit | None = None
    serial: SerialHardware | None = None


@contextlib.asynccontextmanager
async def open_backend(config: UnitConfig, *, clock: Clock) -> AsyncIterator[Backend]:
    """The backend `[hal] backend` names, its drivers running while inside."""
    if config.hal.backend == "mock":
        from hal.mock.unit import SimulatedUnit

        unit = SimulatedUnit(
            wiring=config.wiring, params=config.sim.plant, clock=clock, seed=config.sim.seed
        )
        yield Backend(board=unit.board, simulated=unit)
        return
    from hal.serial.board import serial_board

    async with serial_board(
        wiring=config.wiring, settings=config.hal.serial, clock=clock
    ) as hardware:
        yield Backend(board=hardware.board, serial=hardware)
