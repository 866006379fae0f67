"""A simulated unit with its controller on a virtual clock, driven scan by scan from a test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hal.clock import VirtualClock
from hal.mock.unit import SimulatedUnit
from hal.sim.faults import FaultSpec
from unit_controller.authority import Authority
from unit_controller.config import UnitConfig, load_config
from unit_controller.controller import Snapshot, UnitController
from unit_controller.events import UnitEvent
from unit_controller.recipes.loader import RECIPES_DIR

if TYPE_CHECKING:
    from unit_controller.control_socket.ops import Operations


class Rig:
    """The unit, its controller and a clock that moves only when the test says so."""

    def __init__(
        self,
        *,
        config: UnitConfig | None = None,
        preload: str = "empty",
        seed: int = 1,
        recipes_dir: Path = RECIPES_DIR,
        authority: Authority = Authority.LOCAL,
        charged: bool = False,
        charge_assumed: bool = False,
    ) -> None:
        self.config = config or load_config()
        self.clock = VirtualClock()
        self.unit = SimulatedUnit(
            wiring=self.config.wiring, params=self.config.sim.plant, clock=self.clock, seed=seed
        )
        self.unit.preload(preload)
        self.controller = UnitController(
            config=self.config,
            board=self.unit.board,
            clock=self.clock,
            recipes_dir=recipes_dir,
            authority=authority,
            charged=charged,
            charge_assumed=charge_assumed,
        )
        self.events: list[UnitEvent] = []
        self.controller.listen(self.events.append)
        self.period = self.config.unit.scan_period_s
        self.recipes_dir = recipes_dir

    def operations(self) -> Operations:
        """The control socket's operations on this unit, as the daemon wires them (no journal)."""
        from unit_controller.calibration import Calibrations
        from unit_controller.control_socket.ops import Operations
        from unit_controller.mqtt.payloads import EpochClock

        return Operations(
            config=self.config,
            controller=self.controller,
            calibrations=Calibrations(controller=self.controller),
            journal=None,
            epoch=EpochClock(clock=self.clock),
            recipes_dir=self.recipes_dir,
            batch_id=lambda: None,
            ph_calibration_due=lambda: False,
            on_calibrated=lambda: None,
        )

    async def scan(self) -> Snapshot:
        """Advance one scan period: plant, then one controller scan."""
        self.clock.advance(self.period)
        self.unit.step(self.period)
        return await self.controller.scan()

    async def run_for(self, seconds: float) -> Snapshot:
        """Scan for `seconds` of simulated time."""
        snap = await self.scan()
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end:
            snap = await self.scan()
        return snap

    async def run_until(self, done: Callable[[Snapshot], bool], *, limit_s: float) -> Snapshot:
        """Scan until `done(snapshot)`; fails the test if it takes longer than `limit_s`."""
        end = self.clock.monotonic() + limit_s
        snap = await self.scan()
        while not done(snap):
            assert self.clock.monotonic() < end, f"not reached within {limit_s} s: {snap.state}"
            snap = await self.scan()
        return snap

    def rtd_reads(self, celsius: float) -> None:
        """From now on TT-101's circuit reads `celsius`, whatever the plant's temperature
        (-1023: the EZO-RTD's open-circuit reading)."""
        from hal.mock.devices import MockRtd

        rtd = self.unit.board.temperature
        assert isinstance(rtd, MockRtd)
        rtd._measure = lambda: celsius  # type: ignore[method-assign]

    def inject(self, name: str, tag: str | None = None) -> None:
        """Make a fault happen now."""
        self.unit.inject(FaultSpec(name=name, tag=tag, at_s=self.clock.monotonic()))

    async def start(self, recipe: str) -> Snapshot:
        """Reset to Idle and start `recipe`; returns the first Execute scan."""
        await self.scan()
        await self.controller.command("reset", source="test")
        await self.scan()
        await self.controller.command("start", source="test", recipe=recipe, recipe_paths=True)
        return await self.scan()
