"""Every instrument of a simulated unit as the device it is, each on its own pty: the EZO
circuits and the relay board, and the serial faults that befall them.

What `unit-controller emulate` serves to any tool, and what the serial-backend simulator puts
its drivers in front of.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from hal.clock import Clock
from hal.log import get_logger
from hal.mock.unit import SimulatedUnit, UnknownFault
from hal.serial.modbus_frames import RelayBoardMap
from hal.sim.emulators.ezo import EzoEmulator, EzoPhEmulator, EzoPmpEmulator, EzoRtdEmulator
from hal.sim.emulators.pty_port import PtyPort
from hal.sim.emulators.relay_board import RelayBoardEmulator
from hal.sim.faults import DEVICE_AWAY_S, SERIAL_FAULTS, FaultSpec
from hal.tasks import cancel_and_wait
from hal.wiring import BoardWiring, SerialSettings

log = get_logger(__name__)

RELAY_BOARD = "relay-board"
PLANT_STEP_S = 0.5


async def step_plant(unit: SimulatedUnit, clock: Clock, *, step_s: float = PLANT_STEP_S) -> None:
    """Step the simulated plant on `clock` every `step_s`, until cancelled: what runs behind the
    emulators when no simulation runner steps it."""
    last = clock.monotonic()
    while True:
        await clock.sleep(step_s)
        now = clock.monotonic()
        unit.step(now - last)
        last = now


@dataclass
class EmulatorSet:
    """The emulators of one unit and the ports they answer on (by tag; `relay-board`)."""

    unit: SimulatedUnit
    emulators: dict[str, EzoEmulator]
    relay_emulator: RelayBoardEmulator
    ports: dict[str, PtyPort]
    relay_tags: frozenset[str]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def wired(self) -> BoardWiring:
        """The unit's wiring with every instrument's port pointing at its emulator."""
        devices = self.unit.wiring.devices
        return BoardWiring(
            devices={
                tag: device.model_copy(update={"port": self.ports[tag].path})
                if tag in self.ports
                else device
                for tag, device in devices.items()
            }
        )

    def busy(self) -> bool:
        """True while bytes are on their way across any port (for a LockstepClock)."""
        return any(port.pending() for port in self.ports.values())

    def check_fault(self, fault: FaultSpec) -> None:
        """Raise UnknownFault unless `fault` is a serial fault on a device of this unit."""
        if fault.name not in SERIAL_FAULTS:
            raise UnknownFault(f"unknown serial fault {fault.name!r}")
        self._port_of(fault)

    def _port_of(self, fault: FaultSpec) -> str:
        if fault.tag is None:
            raise UnknownFault(f"{fault.name} needs a device: {fault.name}:TAG@MINUTES")
        tag = fault.tag.upper()
        if tag in self.emulators:
            return tag
        if tag in self.relay_tags or fault.tag == RELAY_BOARD:
            return RELAY_BOARD
        raise UnknownFault(
            f"{fault.name}: no serial device {fault.tag!r} (devices: "
            f"{', '.join(sorted(self.emulators))}, and on the relay board "
            f"{', '.join(sorted(self.relay_tags))})"
        )

    def inject(self, fault: FaultSpec, *, clock: Clock) -> None:
        """Make a serial fault happen now; silence and unplugging end by themselves."""
        name = self._port_of(fault)
        emulator = self.relay_emulator if name == RELAY_BOARD else self.emulators[name]
        if fault.name == "serial_garbage":
            if isinstance(emulator, RelayBoardEmulator):
                emulator.garbage(20)
            else:
                emulator.garbage(400)
            return
        port = self.ports[name]
        if fault.name == "device_silent":
            emulator.silent(True)
            self._later(clock, lambda: emulator.silent(False))
        else:
            port.unplug()
            self._later(clock, port.replug)
        log.warning("sim.serial_fault", fault=fault.name, device=name)

    def _later(self, clock: Clock, action: Callable[[], None]) -> None:
        async def come_back() -> None:
            await clock.sleep(DEVICE_AWAY_S)
            action()
            log.warning("sim.device_back", after_s=DEVICE_AWAY_S)

        self.tasks.append(asyncio.get_running_loop().create_task(come_back()))


@contextlib.asynccontextmanager
async def emulator_set(
    *, unit: SimulatedUnit, settings: SerialSettings, clock: Clock
) -> AsyncIterator[EmulatorSet]:
    """An emulator for every instrument of `unit`, each on its own pty, running until the block
    ends (then every port is closed and its directory removed)."""
    directory = Path(tempfile.mkdtemp(prefix="unit-serial-"))
    wiring = unit.wiring
    ports: dict[str, PtyPort] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        for tag in (wiring.rtd_tag, wiring.ph_tag, *wiring.pumps(), RELAY_BOARD):
            ports[tag] = PtyPort(directory=directory, name=tag)
        emulators: dict[str, EzoEmulator] = {
            wiring.rtd_tag: EzoRtdEmulator(port=ports[wiring.rtd_tag], unit=unit, clock=clock),
            wiring.ph_tag: EzoPhEmulator(port=ports[wiring.ph_tag], unit=unit, clock=clock),
        }
        for tag in wiring.pumps():
            emulators[tag] = EzoPmpEmulator(port=ports[tag], unit=unit, clock=clock, tag=tag)
        channels = RelayBoardMap.from_wiring(wiring)
        relay_emulator = RelayBoardEmulator(
            port=ports[RELAY_BOARD],
            unit=unit,
            clock=clock,
            channels=channels,
            slave=settings.relay_board_slave,
            baudrate=settings.baudrate,
        )
        loop = asyncio.get_running_loop()
        for tag, emulator in emulators.items():
            tasks.append(loop.create_task(emulator.run(), name=f"emulator:{tag}"))
        tasks.append(loop.create_task(relay_emulator.run(), name="emulator:relay-board"))
        yield EmulatorSet(
            unit=unit,
            emulators=emulators,
            relay_emulator=relay_emulator,
            ports=ports,
            relay_tags=frozenset(channels.tags.values()),
            tasks=tasks,
        )
    finally:
        await cancel_and_wait(tasks)
        for port in ports.values():
            port.close()
        shutil.rmtree(directory, ignore_errors=True)
