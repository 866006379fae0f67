"""The simulated unit behind its real serial protocols: emulators on ptys, real drivers on top.

Everything the controller sees comes through the serial drivers, byte for byte as on a unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from hal.board import Board
from hal.clock import Clock
from hal.mock.unit import SimulatedUnit, UnknownFault
from hal.serial import EzoDevices, ezo_devices
from hal.serial.board import board_from
from hal.serial.modbus_frames import RelayBoardMap, RelayBoardTiming
from hal.serial.relay_board import RelayBoard
from hal.sim.emulators.ezo import EzoEmulator, EzoPhEmulator, EzoPmpEmulator, EzoRtdEmulator
from hal.sim.emulators.pty_port import PtyPort
from hal.sim.emulators.relay_board import RelayBoardEmulator
from hal.sim.faults import DEVICE_AWAY_S, SERIAL_FAULTS, FaultSpec
from hal.wiring import BoardWiring, SerialSettings

log = structlog.get_logger(__name__)

RELAY_BOARD = "relay-board"


@dataclass
class SerialBench:
    """The board the controller drives, and the emulators and ports behind it."""

    board: Board
    ezo: EzoDevices
    relay_board: RelayBoard
    emulators: dict[str, EzoEmulator]
    relay_emulator: RelayBoardEmulator
    ports: dict[str, PtyPort]
    relay_tags: frozenset[str]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def check_fault(self, fault: FaultSpec) -> None:
        """Raise UnknownFault unless `fault` is a serial fault on a device of this bench."""
        if fault.name not in SERIAL_FAULTS:
            raise UnknownFault(f"unknown serial fault {fault.name!r}")
        self._port_of(fault)

    def _port_of(self, fault: FaultSpec) -> str:
        if fault.tag is None:
            raise UnknownFault(f"{fault.name} needs a device: {fault.name}:TAG@MINUTES")
        if fault.tag in self.emulators:
            return fault.tag
        if fault.tag in self.relay_tags:
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
async def serial_bench(
    *, unit: SimulatedUnit, settings: SerialSettings, clock: Clock
) -> AsyncIterator[SerialBench]:
    """Emulators for every instrument of `unit` on ptys, and the serial drivers talking to them."""
    directory = Path(tempfile.mkdtemp(prefix="unit-serial-"))
    wiring = unit.wiring
    ports: dict[str, PtyPort] = {}
    emulators: dict[str, EzoEmulator] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        for tag in (wiring.rtd_tag, wiring.ph_tag, *wiring.pumps()):
            ports[tag] = PtyPort(directory=directory, name=tag)
        ports[RELAY_BOARD] = PtyPort(directory=directory, name=RELAY_BOARD)
        emulators[wiring.rtd_tag] = EzoRtdEmulator(
            port=ports[wiring.rtd_tag], unit=unit, clock=clock
        )
        emulators[wiring.ph_tag] = EzoPhEmulator(port=ports[wiring.ph_tag], unit=unit, clock=clock)
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
        # The drivers find the emulators where a unit's config would name its adapters.
        wired = BoardWiring(
            devices={
                tag: device.model_copy(update={"port": ports[tag].path}) if tag in ports else device
                for tag, device in wiring.devices.items()
            }
        )
        ezo = ezo_devices(wired, clock=clock)
        relay_board = RelayBoard(
            path=ports[RELAY_BOARD].path,
            clock=clock,
            wiring=wired,
            slave=settings.relay_board_slave,
            baudrate=settings.baudrate,
            # On a sped-up clock the pty's real latency counts many times over: allow for it.
            # The board is judged lost before its inputs go stale (3 s), so the alarm says
            # device_lost rather than only a stale E-stop.
            timing=RelayBoardTiming(timeout_s=0.6, retries=1, lost_after_s=2.5),
        )
        board = board_from(ezo=ezo, relay_board=relay_board)
        loop = asyncio.get_running_loop()
        for tag, emulator in emulators.items():
            tasks.append(loop.create_task(emulator.run(), name=f"emulator:{tag}"))
        tasks.append(loop.create_task(relay_emulator.run(), name="emulator:relay-board"))
        tasks.append(loop.create_task(ezo.run(), name="drivers:ezo"))
        tasks.append(loop.create_task(relay_board.run(), name="drivers:relay-board"))
        bench = SerialBench(
            board=board,
            ezo=ezo,
            relay_board=relay_board,
            emulators=emulators,
            relay_emulator=relay_emulator,
            ports=ports,
            relay_tags=frozenset(channels.tags.values()),
            tasks=tasks,
        )
        yield bench
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for port in ports.values():
            port.close()
        shutil.rmtree(directory, ignore_errors=True)
