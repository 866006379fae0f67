"""The unit's hardware, chosen from config in this one place: the serial drivers on real
instruments, or the mock devices on the simulated plant (the mock backend).

Each backend's code is imported when that backend opens: a unit on real instruments never loads
the plant simulator, and the simulator never loads pyserial or pymodbus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hal.board import Board
from hal.clock import Clock
from hal.log import get_logger
from unit_controller.config import UnitConfig
from unit_controller.whole_file import write_whole

if TYPE_CHECKING:
    from hal.mock.unit import SimulatedUnit
    from hal.serial.board import SerialHardware

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Backend:
    """The board the controller drives, and the simulated unit behind it (mock backend) or the
    serial drivers (serial backend)."""

    board: Board
    simulated: SimulatedUnit | None = None
    serial: SerialHardware | None = None


# In the state directory of a daemon on the mock backend: what the simulated EZO-pH keeps
# through a power cycle (a real one keeps its calibration in the circuit).
SIM_PH_MEMORY = "sim-ph-calibration.json"


@contextlib.asynccontextmanager
async def open_backend(
    config: UnitConfig, *, clock: Clock, state_dir: Path | None = None
) -> AsyncIterator[Backend]:
    """The backend `[hal] backend` names, its drivers running while inside. With `state_dir`,
    the mock backend's pH probe keeps its calibration there across restarts, as a circuit does."""
    if config.hal.backend == "mock":
        from hal.mock.unit import SimulatedUnit

        unit = SimulatedUnit(
            wiring=config.wiring, params=config.sim.plant, clock=clock, seed=config.sim.seed
        )
        if state_dir is not None:
            await _keep_ph_calibration(unit, state_dir / SIM_PH_MEMORY)
        yield Backend(board=unit.board, simulated=unit)
        return
    from hal.serial.board import serial_board

    async with serial_board(
        wiring=config.wiring, settings=config.hal.serial, clock=clock
    ) as hardware:
        yield Backend(board=hardware.board, serial=hardware)


async def _keep_ph_calibration(unit: SimulatedUnit, path: Path) -> None:
    probe = unit.ph
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("sim.ph_calibration_unreadable", path=str(path), error=str(exc))
        text = None
    if text is not None:
        try:
            probe.restore(json.loads(text))
        except ValueError as exc:  # JSONDecodeError too: the probe starts uncalibrated
            log.warning("sim.ph_calibration_unreadable", path=str(path), error=str(exc))

    async def remember() -> None:
        data = json.dumps(probe.memory()).encode()
        try:
            await asyncio.to_thread(write_whole, path, data, mode=0o640)
        except OSError as exc:  # the calibration holds; only the next restart forgets it
            log.warning("sim.ph_calibration_not_kept", path=str(path), error=str(exc))

    probe.remember = remember
