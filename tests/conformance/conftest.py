"""Each instrument's protocol, checked on whatever answers on its port: the emulator on a pty in
CI, or a real circuit on a bench when its port is named in the environment.

    UNIT_CONTROLLER_BENCH_PH=/dev/serial/by-id/...  (EZO-pH)
    UNIT_CONTROLLER_BENCH_RTD=...                    (EZO-RTD)
    UNIT_CONTROLLER_BENCH_PMP=...                    (EZO-PMP: it pumps a few mL)
    UNIT_CONTROLLER_BENCH_RELAY=...                  (Modbus relay board, slave 1, 9600 baud)

Every test runs twice: on the emulator, and on hardware (skipped with a one-line reason when
none is named).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hal.clock import Clock, SystemClock
from hal.mock.unit import SimulatedUnit
from hal.serial.ezo_link import EzoLink
from hal.serial.modbus_frames import RelayBoardMap
from hal.serial.reconnect import Backoff, SerialStreams, open_serial, within
from hal.sim.emulators.ezo import EzoPhEmulator, EzoPmpEmulator, EzoRtdEmulator
from hal.sim.emulators.pty_port import PtyPort
from hal.sim.emulators.relay_board import RelayBoardEmulator
from tests.serial.conftest import lockstep
from unit_controller.config import load_config

ENV = {
    "pH": "UNIT_CONTROLLER_BENCH_PH",
    "RTD": "UNIT_CONTROLLER_BENCH_RTD",
    "PMP": "UNIT_CONTROLLER_BENCH_PMP",
    "relay": "UNIT_CONTROLLER_BENCH_RELAY",
}
PUMP_TAG = "P-203"


@dataclass
class Target:
    """A port that answers as one instrument, and the clock its answers are timed on."""

    path: str
    clock: Clock
    emulator: object | None = None  # None on real hardware
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@pytest.fixture(params=["emulator", "hardware"])
def where(request: pytest.FixtureRequest) -> str:
    """Run each test on the emulator and on named hardware."""
    return str(request.param)


@contextlib.asynccontextmanager
async def target(kind: str, where: str, tmp_path: Path) -> AsyncIterator[Target]:
    """The port of `kind` (pH, RTD, PMP, relay): named hardware or a fresh emulator."""
    if where == "hardware":
        path = os.environ.get(ENV[kind])
        if not path:
            pytest.skip(f"no {kind} hardware named (set {ENV[kind]}=/dev/serial/by-id/...)")
        yield Target(path=path, clock=SystemClock())
        return
    ports: list[PtyPort] = []
    async with lockstep(ports) as clock:
        config = load_config()
        unit = SimulatedUnit(wiring=config.wiring, params=config.sim.plant, clock=clock, seed=1)
        unit.step(1.0)  # the probes have a first value
        port = PtyPort(directory=tmp_path, name=f"bench-{kind}")
        ports.append(port)
        emulator: EzoPhEmulator | EzoRtdEmulator | EzoPmpEmulator | RelayBoardEmulator
        if kind == "relay":
            emulator = RelayBoardEmulator(
                port=port, unit=unit, clock=clock, channels=RelayBoardMap.from_wiring(unit.wiring)
            )
            task = asyncio.create_task(emulator.run())
        else:
            if kind == "pH":
                emulator = EzoPhEmulator(port=port, unit=unit, clock=clock)
            elif kind == "RTD":
                emulator = EzoRtdEmulator(port=port, unit=unit, clock=clock)
            else:
                emulator = EzoPmpEmulator(port=port, unit=unit, clock=clock, tag=PUMP_TAG)
            task = emulator.start()
        try:
            yield Target(path=port.path, clock=clock, emulator=emulator, tasks=[task])
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            port.close()


@contextlib.asynccontextmanager
async def ezo(kind: str, where: str, tmp_path: Path) -> AsyncIterator[EzoLink]:
    """An EzoLink to the `kind` circuit, through its start-up sequence."""
    async with target(kind, where, tmp_path) as bench:
        link = EzoLink(
            tag=kind, path=bench.path, clock=bench.clock, backoff=Backoff(initial_s=0.5, max_s=1.0)
        )
        await link.connect()
        try:
            yield link
        finally:
            await link.close()


class RawLine:
    """Bytes in and out of a port, for frames no driver would send."""

    def __init__(self, streams: SerialStreams, clock: Clock) -> None:
        self.reader, self.writer = streams
        self.clock = clock

    async def ask(self, frame: bytes, *, expect: int, within_s: float = 1.0) -> bytes:
        """Send `frame`; return the `expect` bytes answered, or b"" after `within_s` of silence."""
        self.writer.write(frame)
        await self.writer.drain()
        try:
            return await within(self.clock, within_s, self.reader.readexactly(expect))
        except TimeoutError:
            return b""

    async def send_torn(self, frame: bytes, *, split: int, gap_s: float) -> None:
        """Send `frame` in two pieces with `gap_s` of real silence between them."""
        self.writer.write(frame[:split])
        await self.writer.drain()
        await asyncio.sleep(gap_s)
        self.writer.write(frame[split:])
        await self.writer.drain()


@contextlib.asynccontextmanager
async def relay_line(where: str, tmp_path: Path) -> AsyncIterator[RawLine]:
    """A raw line to the relay board."""
    async with target("relay", where, tmp_path) as bench:
        streams = await open_serial(bench.path)
        try:
            yield RawLine(streams, bench.clock)
        finally:
            streams[1].transport.abort()
