"""Fixtures for the serial drivers: a simulated unit, and an EZO emulator on a real pty per device.

Each fixture cleans up after itself (tasks cancelled, ports closed). Time runs on a LockstepClock:
it moves only when every task waits and no byte is in flight, so a loaded machine runs the same
exchanges, only slower; tests await conditions with bounds in that time, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from hal.clock import LockstepClock
from hal.mock.unit import SimulatedUnit
from hal.serial.ezo_device import EzoDevice
from hal.serial.ezo_ph import EzoPhProbe
from hal.serial.ezo_pump import EzoPump
from hal.serial.ezo_rtd import EzoRtd
from hal.serial.reconnect import Backoff
from hal.sim.emulator_set import step_plant
from hal.sim.emulators.ezo import EzoEmulator, EzoPhEmulator, EzoPmpEmulator, EzoRtdEmulator
from hal.sim.emulators.pty_port import PtyPort
from unit_controller.config import load_config

PLANT_DT_S = 0.5
BACKOFF = Backoff(initial_s=0.5, max_s=2.0)
# Reply margin past the circuit's processing time, as on a unit.
TIMEOUT_S = 1.0
PUMP_TAG = "P-203"  # NaOH

E = TypeVar("E", bound=EzoEmulator)
D = TypeVar("D", bound=EzoDevice)


@dataclass
class EzoRig(Generic[E, D]):
    """One EZO emulator on a pty in front of the simulated unit, and the driver on its path."""

    clock: LockstepClock
    unit: SimulatedUnit
    port: PtyPort
    emulator: E
    driver: D
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def until(self, condition: Callable[[], bool], *, within_s: float, what: str) -> None:
        """Wait until `condition` holds, failing after `within_s` clock seconds."""
        deadline = self.clock.monotonic() + within_s
        while not condition():
            if self.clock.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {within_s} s")
            await self.clock.sleep(0.05)

    def sent(self, prefix: str) -> list[str]:
        """Commands the circuit received that start with `prefix`."""
        return [c for c in self.emulator.commands if c.startswith(prefix)]

    def start_driver(self) -> None:
        """Start the driver's task (fixtures start it; a test may want to delay it)."""
        self.tasks.append(asyncio.create_task(self.driver.serve()))


@contextlib.asynccontextmanager
async def lockstep(ports: list[PtyPort]) -> AsyncIterator[LockstepClock]:
    """A LockstepClock that waits for the bytes on `ports` (append ports as they are made),
    moving while the block runs."""
    clock = LockstepClock(busy=lambda: any(p.pending() for p in ports))
    task = asyncio.create_task(clock.run(), name="lockstep-clock")
    try:
        yield clock
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def ezo_rig(
    tmp_path: Path,
    name: str,
    make_emulator: Callable[[PtyPort, SimulatedUnit, LockstepClock], E],
    make_driver: Callable[[str, LockstepClock], D],
    *,
    start: bool = True,
) -> AsyncIterator[EzoRig[E, D]]:
    """Unit + pty + emulator + driver, all torn down on exit."""
    ports: list[PtyPort] = []
    async with (
        lockstep(ports) as clock,
        _ezo_rig(tmp_path, name, make_emulator, make_driver, clock, ports, start) as rig,
    ):
        yield rig


@contextlib.asynccontextmanager
async def _ezo_rig(
    tmp_path: Path,
    name: str,
    make_emulator: Callable[[PtyPort, SimulatedUnit, LockstepClock], E],
    make_driver: Callable[[str, LockstepClock], D],
    clock: LockstepClock,
    ports: list[PtyPort],
    start: bool,
) -> AsyncIterator[EzoRig[E, D]]:
    config = load_config()
    unit = SimulatedUnit(wiring=config.wiring, params=config.sim.plant, clock=clock, seed=1)
    port = PtyPort(directory=tmp_path, name=name)
    ports.append(port)
    emulator = make_emulator(port, unit, clock)
    rig = EzoRig(clock, unit, port, emulator, make_driver(port.path, clock))
    rig.tasks.append(asyncio.create_task(step_plant(unit, clock, step_s=PLANT_DT_S)))
    emulator.start()
    if start:
        rig.start_driver()
    try:
        yield rig
    finally:
        for task in reversed(rig.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await rig.driver.link.close()
        await emulator.stop()
        port.close()


RtdRig = EzoRig[EzoRtdEmulator, EzoRtd]
PhRig = EzoRig[EzoPhEmulator, EzoPhProbe]
PumpRig = EzoRig[EzoPmpEmulator, EzoPump]


def _rtd_emulator(port: PtyPort, unit: SimulatedUnit, clock: LockstepClock) -> EzoRtdEmulator:
    return EzoRtdEmulator(port=port, unit=unit, clock=clock)


def _ph_emulator(port: PtyPort, unit: SimulatedUnit, clock: LockstepClock) -> EzoPhEmulator:
    return EzoPhEmulator(port=port, unit=unit, clock=clock)


def _pump_emulator(port: PtyPort, unit: SimulatedUnit, clock: LockstepClock) -> EzoPmpEmulator:
    return EzoPmpEmulator(port=port, unit=unit, clock=clock, tag=PUMP_TAG)


def make_rtd(path: str, clock: LockstepClock) -> EzoRtd:
    """The RTD driver as the board would build it (stale 5 s, lost after 15 s)."""
    return EzoRtd(
        tag="TT-101", path=path, clock=clock, stale_s=5.0, timeout_s=TIMEOUT_S, backoff=BACKOFF
    )


def make_ph(path: str, clock: LockstepClock) -> EzoPhProbe:
    """The pH driver (stale 10 s, lost after 30 s)."""
    return EzoPhProbe(
        tag="AT-101", path=path, clock=clock, stale_s=10.0, timeout_s=TIMEOUT_S, backoff=BACKOFF
    )


def make_pump(path: str, clock: LockstepClock, **options: Any) -> EzoPump:
    """The NaOH pump driver with the example wiring's range and a 15 s run bound for speed."""
    wiring = load_config().wiring.pumps()[PUMP_TAG]
    settings: dict[str, Any] = {
        "run_bound_min": 0.25,
        "renew_before_s": 5.0,
        "lease_s": 1e6,  # tests call run() once unless they test the lease
        "totals_period_s": 2.0,
        "timeout_s": TIMEOUT_S,
    }
    settings.update(options)
    return EzoPump(
        tag=PUMP_TAG,
        path=path,
        clock=clock,
        min_ml_min=wiring.min_ml_min,
        max_ml_min=wiring.max_ml_min,
        backoff=BACKOFF,
        **settings,
    )


@pytest.fixture
async def rtd_rig(tmp_path: Path) -> AsyncIterator[RtdRig]:
    """EZO-RTD emulator + driver, with a first good reading in."""
    async with ezo_rig(tmp_path, "usb-ezo-rtd-TT-101", _rtd_emulator, make_rtd) as rig:
        await rig.until(lambda: rig.driver.latest().good, within_s=30.0, what="first reading")
        yield rig


@pytest.fixture
async def ph_rig(tmp_path: Path) -> AsyncIterator[PhRig]:
    """EZO-pH emulator + driver, with a first good reading in."""
    async with ezo_rig(tmp_path, "usb-ezo-ph-AT-101", _ph_emulator, make_ph) as rig:
        await rig.until(lambda: rig.driver.latest().good, within_s=30.0, what="first reading")
        yield rig


@pytest.fixture
async def pump_rig(tmp_path: Path) -> AsyncIterator[PumpRig]:
    """EZO-PMP emulator + driver, with a first total read."""
    async with ezo_rig(tmp_path, "usb-ezo-pmp-P-203", _pump_emulator, make_pump) as rig:
        await rig.until(lambda: rig.driver.dispensed_ml().good, within_s=30.0, what="first total")
        yield rig


@pytest.fixture
def pump_rig_factory(
    tmp_path: Path,
) -> Callable[..., contextlib.AbstractAsyncContextManager[PumpRig]]:
    """A pump rig with driver options of the test's choosing (`emulator`: the circuit's)."""

    def make(
        *, emulator: dict[str, Any] | None = None, **options: Any
    ) -> contextlib.AbstractAsyncContextManager[PumpRig]:
        circuit = emulator or {}
        return ezo_rig(
            tmp_path,
            "usb-ezo-pmp-P-203",
            lambda port, unit, clock: EzoPmpEmulator(
                port=port, unit=unit, clock=clock, tag=PUMP_TAG, **circuit
            ),
            lambda path, clock: make_pump(path, clock, **options),
        )

    return make
