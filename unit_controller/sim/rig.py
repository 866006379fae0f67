"""A fleet test rig: many simulated units in one process, into one broker.

Each unit is what a daemon on the simulator runs: its own plant (seeded apart), controller and
fleet link (its own MQTT client, Will, outbox file and commands). What the units share is the
interpreter, the event loop and one scan tick: every period the rig steps each plant and scans
each controller in turn, so a hundred units cost one wake-up, not a hundred. Their outboxes
share one SQLite thread: a thread each made a hundred threads queue for the GIL after every
tick (~200 context switches a second each, 20 % of a core for 100 units, against 2.7 % on one
thread). No journal and no control socket per unit: a rig is for loading brokers, dashboards
and `unit-controller fleet`, not for operating units.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hal.clock import ScaledClock
from hal.log import get_logger
from hal.mock.unit import SimulatedUnit
from unit_controller.authority import Authority
from unit_controller.config import UnitConfig, with_overrides
from unit_controller.controller import UnitController
from unit_controller.errors import CommandRefused
from unit_controller.machine import State
from unit_controller.mqtt.payloads import EpochClock
from unit_controller.mqtt.service import FleetService
from unit_controller.shipped import SHIPPED_RECIPES

log = get_logger(__name__)

# Descriptors a unit holds: its MQTT socket; its outbox's database, WAL and shared memory.
FDS_PER_UNIT = 4
FDS_SPARE = 64
# How long a unit may take to leave RESETTING before its batch start is given up.
RESET_SCANS = 100
MAX_UNITS = 5000


class RigError(Exception):
    """The rig cannot start as asked; says why."""


@dataclass(frozen=True, slots=True)
class RigOptions:
    """What the rig runs: `units` units named `<prefix>0001`…, their base config (its [mqtt]
    settings, TLS included, apply to every unit), outboxes under `state_dir`."""

    units: int
    config: UnitConfig
    state_dir: Path
    prefix: str = "rig-"
    recipe: str | None = "coprecipitation"
    recipes_dir: Path = SHIPPED_RECIPES
    seconds: float | None = None  # None: until stopped
    status_every_s: float = 10.0


@dataclass(slots=True)
class RigUnit:
    """One simulated unit of the rig."""

    config: UnitConfig
    simulated: SimulatedUnit
    controller: UnitController
    fleet: FleetService

    @property
    def id(self) -> str:
        """The unit's id (its topics' unit segment)."""
        return self.config.unit.id


def unit_ids(prefix: str, count: int) -> list[str]:
    """`count` unit ids: the prefix and a zero-padded number from 1."""
    width = max(4, len(str(count)))
    return [f"{prefix}{n:0{width}d}" for n in range(1, count + 1)]


def ensure_descriptors(units: int) -> int:
    """Raise the soft limit on open files to what `units` need (up to the hard limit); the
    limit now. RigError when the hard limit is too low."""
    need = units * FDS_PER_UNIT + FDS_SPARE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    if hard != resource.RLIM_INFINITY and hard < need:
        raise RigError(
            f"{units} units need about {need} open files; the hard limit is {hard} "
            "(raise it with `ulimit -Hn` or LimitNOFILE=, or run fewer units per rig)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return need


class Rig:
    """N units on one scan tick, each with its own fleet link."""

    def __init__(self, options: RigOptions, *, say: Callable[[str], None] = print) -> None:
        if not 1 <= options.units <= MAX_UNITS:
            raise RigError(f"units must be 1..{MAX_UNITS}, got {options.units}")
        if not options.config.mqtt.enabled:
            raise RigError("a rig publishes to a broker: give --mqtt URL or [mqtt] url")
        self.options = options
        self._say = say
        self.clock = ScaledClock(speed=1.0)
        self.epoch = EpochClock(clock=self.clock)
        self.period_s = options.config.unit.scan_period_s
        self.units: list[RigUnit] = []
        self.scans = 0
        self.overruns = 0
        self._stop = asyncio.Event()
        self._outbox_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rig-outboxes")

    def stop(self) -> None:
        """End the run after the scan under way (what SIGTERM and Ctrl-C do)."""
        self._stop.set()

    def _make_unit(self, unit_id: str, seed: int) -> RigUnit:
        base = self.options.config
        config = with_overrides(base, unit_id=unit_id)
        simulated = SimulatedUnit(
            wiring=config.wiring, params=config.sim.plant, clock=self.clock, seed=seed
        )
        controller = UnitController(
            config=config,
            board=simulated.board,
            clock=self.clock,
            recipes_dir=self.options.recipes_dir,
            # A test unit: the fleet may command it (signed, unless the config allows unsigned).
            authority=Authority.REMOTE,
        )
        # A person confirms a charge on a daemon; on the rig, whoever confirms it remotely.
        plant = simulated.plant
        controller.on_charge(lambda charge: plant.charge_black_mass(charge.kg))
        fleet = FleetService(
            config=config,
            controller=controller,
            clock=self.clock,
            state_dir=self.options.state_dir / unit_id,
            recipes_dir=self.options.recipes_dir,
            epoch=self.epoch,
            outbox_thread=self._outbox_thread,
        )
        return RigUnit(config=config, simulated=simulated, controller=controller, fleet=fleet)

    async def run(self) -> int:
        """Start every unit, scan them all every period until stopped (or `seconds`), stop
        them; 0 after a clean run."""
        ensure_descriptors(self.options.units)
        seed = self.options.config.sim.seed
        try:
            for n, unit_id in enumerate(unit_ids(self.options.prefix, self.options.units)):
                if self._stop.is_set():
                    return 0  # stopped while starting: the units made so far stop below
                unit = self._make_unit(unit_id, seed + n)
                self.units.append(unit)
                unit.simulated.board.apply(unit.controller.safe_outputs())
                await unit.controller.scan()
                await unit.fleet.start()
            self._say(
                f"rig: {len(self.units)} units ({self.units[0].id}..{self.units[-1].id}) "
                f"publishing to {self.options.config.mqtt.url}"
            )
            if self.options.recipe is not None and not self._stop.is_set():
                await self._start_batches(self.options.recipe)
            await self._scan_loop()
            return 0
        finally:
            await self._stop_units()

    async def _start_batches(self, recipe: str) -> None:
        for unit in self.units:
            with contextlib.suppress(CommandRefused):
                await unit.controller.command("reset", source="rig")
        for _ in range(RESET_SCANS):
            if all(u.controller.machine.state is not State.RESETTING for u in self.units):
                break
            await asyncio.sleep(self.period_s)
            await self._tick(self.period_s)
        started = 0
        for unit in self.units:
            try:
                await unit.controller.command("start", source="rig", recipe=recipe)
                started += 1
            except CommandRefused as exc:
                log.warning("rig.start_refused", unit=unit.id, reason=str(exc))
        self._say(f"rig: {recipe} started on {started} of {len(self.units)} units")

    async def _scan_loop(self) -> None:
        loop = asyncio.get_running_loop()
        began = next_at = loop.time()
        last_status = began
        ends = None if self.options.seconds is None else began + self.options.seconds
        last_scan = self.clock.monotonic()
        while not self._stop.is_set():
            if ends is not None and loop.time() >= ends:
                return
            # Waited even when late (0 s): the links, the flushers and a stop get their turn
            # between two ticks however far behind the rig is.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, next_at - loop.time()))
            if self._stop.is_set():
                return
            now = self.clock.monotonic()
            await self._tick(now - last_scan)
            last_scan = now
            # No catching up after an overrun: the next tick is a period from now.
            next_at += self.period_s
            if loop.time() > next_at:
                self.overruns += 1
                next_at = loop.time()
            if loop.time() - last_status >= self.options.status_every_s:
                last_status = loop.time()
                self._say(self.status_line())

    async def _tick(self, dt: float) -> None:
        for unit in self.units:
            unit.simulated.step(dt)
            try:
                await unit.controller.scan()
            except Exception:
                # That unit's controller has written its outputs safe; the others go on.
                log.exception("rig.scan_failed", unit=unit.id)
        self.scans += 1

    def status_line(self) -> str:
        """Units by state, the fleet links up, and outbox backlog, on one line."""
        states = Counter(str(u.controller.machine.state) for u in self.units)
        connected = sum(1 for u in self.units if u.fleet.link.connected)
        backlog = sum(u.fleet.outbox.pending_count for u in self.units)
        by_state = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        return (
            f"rig: {time.strftime('%H:%M:%S')} {by_state}; {connected}/{len(self.units)} "
            f"connected; backlog {backlog}; {self.overruns} late tick(s)"
        )

    async def _stop_units(self) -> None:
        for unit in self.units:
            unit.simulated.board.apply(unit.controller.safe_outputs())
        # Every link at once: each waits (bounded) for its outbox to drain.
        results = await asyncio.gather(
            *(u.fleet.stop() for u in self.units), return_exceptions=True
        )
        for unit, result in zip(self.units, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("rig.stop_failed", unit=unit.id, reason=str(result))
        self._outbox_thread.shutdown(wait=False)
