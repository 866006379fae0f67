"""Runs one batch on the simulated unit, with faults and a simulated operator, and summarises it.

Mock backend: virtual time, deterministic for a seed. Serial backend: the real drivers talk to
device emulators over ptys, on a clock sped up `speed` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from hal.board import Board
from hal.clock import Clock, LockstepClock, VirtualClock
from hal.log import get_logger
from hal.mock.unit import SimulatedUnit, UnknownFault
from hal.sim.faults import DEVICE_AWAY_S, SERIAL_FAULTS, FaultSpec
from unit_controller.authority import Authority
from unit_controller.config import UnitConfig, state_directory
from unit_controller.controller import Snapshot, UnitController
from unit_controller.controller.abort_on_stop import abort_on_stop
from unit_controller.errors import CommandRefused
from unit_controller.events import UnitEvent
from unit_controller.journal.recorder import JournalRecorder, record_remote_command
from unit_controller.journal.store import JOURNAL_FILE, Journal
from unit_controller.machine import State
from unit_controller.mqtt.payloads import EpochClock
from unit_controller.recipes.loader import RECIPES_DIR, LoadedRecipe, load_recipe
from unit_controller.scan.driver import ScanDriver
from unit_controller.sim.operating_point import scale_feed
from unit_controller.sim.operator import SimulatedOperator
from unit_controller.sim.progress import ProgressPrinter
from unit_controller.sim.summary import run_summary
from unit_controller.sim.truth import TruthRecorder
from unit_controller.state_lock import PRIVATE_UMASK, hold_state_dir

if TYPE_CHECKING:
    from unit_controller.mqtt.service import FleetService, StopReport

log = get_logger(__name__)

# With a broker, the run waits this long (real seconds) for it before the batch starts.
CONNECT_WAIT_S = 5.0
# A run ends in these states once the batch has started.
_FINAL_STATES = frozenset({State.COMPLETE, State.ABORTED, State.HELD, State.STOPPED})
# Simulated seconds a serial run scans on after its end, at most, for the devices to take the
# final outputs over their lines.
DEVICES_SETTLE_S = 10.0
# The serial backend runs in lockstep with its emulators, about this many times real time: the
# progress lines are spaced for it.
SERIAL_PACE = 60.0

# A fast run hands its journal rows to the disk in commits of about this many.
JOURNAL_FLUSH_ROWS = 2000

EXIT_COMPLETE = 0
EXIT_BAD_INPUT = 2
EXIT_NOT_COMPLETE = 3

Backend = Literal["mock", "serial"]


@dataclass(frozen=True, slots=True)
class SimOptions:
    """What to simulate and how fast."""

    recipe: str
    seed: int
    speed: float | None = None  # times real time; None = as fast as possible
    faults: tuple[FaultSpec, ...] = ()
    progress_every_s: float | None = None
    recipes_dir: Path = RECIPES_DIR
    backend: Backend = "mock"
    # The simulated operator unholds a batch a phase timeout held, this many times (each gives
    # the phase another full timeout), as a person at the unit would after a look.
    resume_timeouts: int = 0
    # The unit's state directory: the batch goes into the journal there, as the daemon's do
    # (None: no journal, as in envelope and campaign runs).
    state_dir: Path | None = None


@dataclass(slots=True)
class SimResult:
    """How the batch ended, and the summary printed with --json."""

    final_state: State
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 on COMPLETE, 3 when the batch ended any other way."""
        return EXIT_COMPLETE if self.final_state is State.COMPLETE else EXIT_NOT_COMPLETE


@dataclass(frozen=True, slots=True)
class SharedUnit:
    """A simulated unit and its clock that several batches run on in turn (a campaign)."""

    unit: SimulatedUnit
    clock: VirtualClock


class SimulationRun:
    """One simulated batch: the unit, the controller, the fault schedule and the operator."""

    def __init__(
        self,
        *,
        config: UnitConfig,
        options: SimOptions,
        out: TextIO,
        shared: SharedUnit | None = None,
        recipe_adapter: Callable[[LoadedRecipe], LoadedRecipe] | None = None,
    ) -> None:
        """`shared`: run on this unit as it is (a campaign's reactor, no preset contents);
        `recipe_adapter`: the recipe's operating point instead of the plant's `feed_scale`."""
        # Bad input is found here, before anything runs (RecipeError / UnknownFault).
        self.config = config
        self.options = options
        self._recipe_adapter = recipe_adapter
        self.loaded = self._operating_point(
            load_recipe(options.recipe, config=config, recipes_dir=options.recipes_dir)
        )
        self.serial = options.backend == "serial"
        if shared is not None and self.serial:
            raise ValueError("a shared unit runs on the mock backend only")
        self.clock: Clock = (
            shared.clock
            if shared is not None
            # Time moves when every driver and emulator waits and no byte is on the wire: a
            # loaded host runs the same batch, only slower; `speed` caps it to a pace.
            else LockstepClock(speed=options.speed)
            if self.serial
            else VirtualClock()
        )
        self.unit = (
            shared.unit
            if shared is not None
            else SimulatedUnit(
                wiring=config.wiring, params=config.sim.plant, clock=self.clock, seed=options.seed
            )
        )
        for fault in options.faults:
            self._check_fault(fault)
        if shared is None:
            self.unit.preload(self.loaded.recipe.starts_with.value)
        self.progress = ProgressPrinter(out=out, start=0.0)
        self._watchers: list[Callable[[Snapshot], None]] = []
        self._pending_faults = sorted(options.faults, key=lambda f: f.at_s)
        self.period = config.unit.scan_period_s
        self._serial_bench: Any = None
        self._stepped_at = 0.0  # the warm-up's plant steps; the driver keeps its own
        self._driver: ScanDriver | None = None
        self.fleet: FleetService | None = None
        self.fleet_report: StopReport | None = None
        self.journal: Journal | None = None
        self.recorder: JournalRecorder | None = None
        self.epoch: EpochClock | None = None
        self.truth = TruthRecorder()
        # The mock backend's board exists now; the serial one only inside `run`.
        self.controller = self._make_controller(self.unit.board)

    def _check_fault(self, fault: FaultSpec) -> None:
        if fault.name not in SERIAL_FAULTS or (not self.serial and fault.name in self.unit.FAULTS):
            try:
                self.unit.check_fault(fault)
            except UnknownFault as exc:
                if self.serial and fault.name not in self.unit.FAULTS:
                    raise UnknownFault(
                        f"{exc}; and on the serial line: {', '.join(sorted(SERIAL_FAULTS))}"
                    ) from None
                raise
            return
        if not self.serial:
            raise UnknownFault(f"{fault.name} is a fault of the serial line: add --backend serial")
        if fault.tag not in self.config.wiring.devices:
            devices = ", ".join(sorted(self.config.wiring.devices))
            raise UnknownFault(
                f"{fault.name} needs the tag of a device on this unit ({fault.name}:TAG@MINUTES; "
                f"a relay board input or coil stands for the board): got {fault.tag!r}; the unit "
                f"has {devices}"
            )

    def _operating_point(self, loaded: LoadedRecipe) -> LoadedRecipe:
        """The recipe at the plant's feed rate (`feed_scale`), or as the campaign plans it:
        what the controller runs."""
        if self._recipe_adapter is not None:
            return self._recipe_adapter(loaded)
        return scale_feed(loaded, factor=self.config.sim.plant.feed_scale, config=self.config)

    def _make_controller(self, board: Board) -> UnitController:
        controller = UnitController(
            config=self.config,
            board=board,
            clock=self.clock,
            recipes_dir=self.options.recipes_dir,
            recipe_adapter=self._operating_point,
            # The simulator's operator is remote: the fleet may command a simulated unit.
            authority=Authority.REMOTE,
        )
        self.operator = SimulatedOperator(
            controller=controller,
            clock=self.clock,
            progress=self.progress,
            resume_timeouts=self.options.resume_timeouts,
        )
        controller.listen(self._on_event)
        # The simulated operator tips the charge in when the prompt is confirmed.
        plant = self.unit.plant
        controller.on_charge(lambda charge: plant.charge_black_mass(charge.kg))
        for watcher in self._watchers:
            controller.watch(watcher)
        return controller

    def schedule(self, fault: FaultSpec) -> None:
        """Add `fault` to the schedule of this run, even one under way; it must lie ahead."""
        self._check_fault(fault)
        now = self.clock.monotonic()
        if fault.at_s <= now:
            raise ValueError(f"fault {fault} is due at {fault.at_s:g} s: the run is at {now:g} s")
        self.options = replace(self.options, faults=(*self.options.faults, fault))
        self._pending_faults = sorted([*self._pending_faults, fault], key=lambda f: f.at_s)

    def watch(self, watcher: Callable[[Snapshot], None]) -> None:
        """Call `watcher` with every scan's snapshot (for tests and benchmarks)."""
        self._watchers.append(watcher)
        self.controller.watch(watcher)

    def _on_event(self, event: UnitEvent) -> None:
        self.progress.event(event)
        self.operator.on_event(event)

    async def run(self) -> SimResult:
        """Reset, start the recipe and scan until the batch ends; returns the result."""
        # The journal opens before a serial bench's lockstep clock runs: simulated time must
        # not pass while a thread of its own opens the file.
        async with self._journaled(), self._backend(), self._fleet():
            self._record()
            try:
                result = await self._run()
            except asyncio.CancelledError:
                # Ctrl-C: the batch ends as the daemon's service stop ends one, aborted with its
                # outputs safe, so its journal record does not stay "running" for ever.
                await self._end_interrupted()
                raise
            if self.recorder is not None:
                # A run that ends held (the simulated operator does not step in) still closes
                # its batch: the record says how it stood.
                self.recorder.close_open_batch(result.final_state.value)
        if self.fleet is not None:
            result.summary["mqtt"] = self._fleet_summary()
        if self.journal is not None and self.recorder is not None:
            result.summary["journal"] = {
                "path": str(self.journal.path),
                "batch_id": self.recorder.last_batch_id,
            }
        return result

    async def _end_interrupted(self) -> None:
        controller = self.controller
        try:
            await abort_on_stop(
                controller, source="sim", reason="simulation interrupted", scan=self._tick
            )
            if self.recorder is not None:
                self.recorder.close_open_batch(controller.machine.state.value)
        except Exception:
            log.exception("sim.abort_on_interrupt_failed")

    @contextlib.asynccontextmanager
    async def _journaled(self) -> AsyncIterator[None]:
        state_dir = self.options.state_dir
        if state_dir is None:
            yield
            return
        # The journal is the unit's record, never readable by others (as the daemon keeps it).
        os.umask(os.umask(0) | PRIVATE_UMASK)
        with hold_state_dir(state_dir, what="unit-controller (daemon or sim)"):
            journal = Journal(path=state_dir / JOURNAL_FILE)
            opening = await journal.open()
            try:
                # The unit's clock: every stamp of this run (journal, telemetry, events).
                self.epoch = EpochClock(clock=self.clock, not_before_ms=await journal.latest_ts())
                self.journal = journal
                yield
            finally:
                # A daemon may share this state directory (the simulator's, or a unit's named
                # with --state-dir): a simulated batch never makes its crash look like a clean
                # stop, nor replaces its safety memory (the recorder keeps none).
                await journal.close(clean=opening.previous_run_clean)

    def _record(self) -> None:
        """Journal the controller the run ends up with (the serial bench makes its own)."""
        if self.journal is None or self.epoch is None:
            return
        self.recorder = JournalRecorder(
            controller=self.controller,
            journal=self.journal,
            epoch_ms=self.epoch.ms,
            mark_clock=not self.epoch.live,
            keep_safety=False,
        )
        self.recorder.attach()

    @contextlib.asynccontextmanager
    async def _fleet(self) -> AsyncIterator[None]:
        if not self.config.mqtt.enabled:
            yield
            return
        # Imported here: a run without a broker needs no MQTT client.
        from unit_controller.mqtt.service import FleetService

        fleet = FleetService(
            config=self.config,
            controller=self.controller,
            clock=self.clock,
            state_dir=self.options.state_dir or state_directory(self.config),
            recipes_dir=self.options.recipes_dir,
            epoch=self.epoch,
            on_command=partial(record_remote_command, self.journal)
            if self.journal is not None
            else None,
        )
        self.fleet = fleet
        await fleet.start()
        if not await fleet.link.wait_connected(CONNECT_WAIT_S):
            self.progress.note(
                self.clock.monotonic(),
                f"broker {self.config.mqtt.url} not reachable yet: telemetry waits in the outbox "
                "and goes out on backfill once it is",
            )
        try:
            yield
        finally:
            self.progress.note(
                self.clock.monotonic(),
                f"waiting up to {self.config.mqtt.drain_timeout_s:g} s for the outbox to drain",
            )
            self.fleet_report = await fleet.stop()

    def _fleet_summary(self) -> dict[str, Any]:
        assert self.fleet is not None
        report = self.fleet_report
        return {
            "url": self.config.mqtt.url,
            "unit": self.config.unit.id,
            "topics": self.fleet.topics.base,
            "telemetry_messages": self.fleet.bridge.seq,
            "sessions": self.fleet.link.connects,
            "outbox": str(self.fleet.outbox.path),
            "drained": report.drained if report else False,
            "left_in_outbox": report.left if report else None,
            "offline_published": report.offline_published if report else False,
        }

    @contextlib.asynccontextmanager
    async def _backend(self) -> AsyncIterator[None]:
        if not self.serial:
            yield
            return
        # Imported here: the mock backend needs no pymodbus or pyserial.
        from hal.sim.serial_bench import serial_bench

        async with serial_bench(
            unit=self.unit, settings=self.config.hal.serial, clock=self.clock
        ) as bench:
            assert isinstance(self.clock, LockstepClock)
            self.clock.also_busy(bench.emulated.busy)
            ticking = asyncio.get_running_loop().create_task(self.clock.run(), name="lockstep")
            self._serial_bench = bench
            self.controller = self._make_controller(bench.board)
            self._stepped_at = self.clock.monotonic()
            try:
                yield
            finally:
                ticking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticking

    async def _run(self) -> SimResult:
        wall_start = time.monotonic()
        controller = self.controller
        if self.serial:
            await self._warm_up(limit_s=60)
        await controller.scan()
        await controller.command("reset", source="sim")
        await self._scan_until(lambda: controller.machine.state is not State.RESETTING, limit_s=60)
        try:
            await controller.command(
                "start", source="sim", recipe=self.options.recipe, recipe_paths=True
            )
        except CommandRefused as exc:
            # E.g. a fault injected at minute 0 trips before the batch can start.
            self.progress.note(self.clock.monotonic(), f"start refused: {exc}")
            await self._tick()
            state = controller.machine.state
            return SimResult(
                final_state=state,
                summary=self._summary(state, wall_s=time.monotonic() - wall_start),
            )
        limit_s = self.loaded.recipe.max_duration_min * 60.0 * 1.5 + 3600.0
        await self._scan_until(self._batch_over, limit_s=limit_s)
        # One more scan shows the outputs the final state holds.
        await self._tick()
        if self.serial:
            await self._until_devices_hold_outputs()
        final = controller.machine.state
        if controller.batch is not None and controller.batch.end_s is None:
            controller.batch.finish(now=self.clock.monotonic())
        return SimResult(
            final_state=final, summary=self._summary(final, wall_s=time.monotonic() - wall_start)
        )

    async def _warm_up(self, *, limit_s: float) -> None:
        """Let the drivers open their ports and take first readings, as a unit does at boot."""
        board = self.controller.board
        deadline = self.clock.monotonic() + limit_s
        while self.clock.monotonic() < deadline:
            analog = [board.temperature.latest(), board.ph.latest()]
            discrete = [board.estop.latest(), *(s.latest() for s in board.levels.values())]
            if all(r.good for r in analog) and all(r.good for r in discrete):
                return
            await self.clock.sleep(self.period)
            now = self.clock.monotonic()
            self.unit.step(now - self._stepped_at)
            self._stepped_at = now
        self.progress.note(self.clock.monotonic(), "some instruments gave no reading at start-up")

    async def _until_devices_hold_outputs(self) -> None:
        """Scan on until the devices hold what the last scan commanded: on the lines a pump's X
        and the coils' offs take a few exchanges after it (an aborted run ended with P-204
        dosing, and said so, where the daemon's stop sends them)."""
        deadline = self.clock.monotonic() + DEVICES_SETTLE_S
        while not self._devices_hold_outputs() and self.clock.monotonic() < deadline:
            await self._tick()

    def _devices_hold_outputs(self) -> bool:
        snapshot = self.controller.snapshot
        if snapshot is None:
            return True
        wanted = snapshot.outputs
        pumps = all(
            abs(pump.commanded_ml_min() - wanted.pump(tag)) < 1e-6
            for tag, pump in self.unit.pumps.items()
        )
        coils = all(
            coil.energised == bool(getattr(wanted, str(function), coil.energised))
            for function, coil in self.unit.coils.items()
        )
        return pumps and coils

    def _batch_over(self) -> bool:
        state = self.controller.machine.state
        waits = self.operator.waits(state)
        if waits is not None:
            return not waits
        return state in _FINAL_STATES

    async def _scan_until(self, done: Callable[[], bool], *, limit_s: float) -> None:
        deadline = self.clock.monotonic() + limit_s
        every = self.options.progress_every_s or self._default_progress_s()
        next_status = self.clock.monotonic()
        wall_start, sim_start = time.monotonic(), self.clock.monotonic()
        while not done():
            if self.clock.monotonic() >= deadline:
                self.progress.note(self.clock.monotonic(), "simulation time limit reached")
                return
            snap = await self._tick()
            journal = self.journal
            if journal is not None and journal.backlog >= JOURNAL_FLUSH_ROWS:
                # As fast as possible the loop never idles: the journal's writer gets its turn.
                await journal.flush()
            if snap.at >= next_status:
                self.progress.status(snap, active_alarms=self._alarm_names())
                next_status = snap.at + every
            if self.options.speed and not self.serial:
                ahead = (snap.at - sim_start) / self.options.speed - (time.monotonic() - wall_start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
                elif self.fleet is not None:
                    await asyncio.sleep(0)
            elif self.fleet is not None:
                # As fast as possible still lets the fleet link publish and take commands.
                await asyncio.sleep(0)

    def _default_progress_s(self) -> float:
        speed = self.options.speed or (SERIAL_PACE if self.serial else None)
        return 300.0 if speed is None else max(1.0, 2.0 * speed)

    async def _tick(self) -> Snapshot:
        if self._driver is None:
            # The one scan loop of the daemon too: pacing, overrun and stall detection.
            unit = self.config.unit
            self._driver = ScanDriver(
                controller=self.controller,
                clock=self.clock,
                period_s=self.period,
                stall_alarm_s=unit.stall_alarm_s,
                overrun_alarm_s=unit.overrun_alarm_s,
                before_scan=self._before_scan,
                stepped_at=self._stepped_at if self.serial else None,
            )
        await self._driver.wait()
        snap = await self._driver.scan()
        plant = self.unit.plant
        self.truth.observe(
            snap,
            true_ph=plant.ph,
            true_temperature_c=plant.temperature_c,
            probe_bias=self.unit.ph.bias(plant.ph),
        )
        return snap

    async def _before_scan(self, now: float, dt: float) -> None:
        """The simulated world before each scan: faults, the plant, the simulated operator."""
        while self._pending_faults and self._pending_faults[0].at_s <= now:
            self._inject(self._resolve(self._pending_faults.pop(0)), now)
        self.unit.step(dt)
        await self.operator.act(now)

    def _inject(self, fault: FaultSpec, now: float) -> None:
        bench = self._serial_bench
        if bench is not None and fault.name in SERIAL_FAULTS:
            bench.emulated.inject(fault, clock=self.clock)
            # Garbage too: its reading goes stale and the batch may hold; the simulated
            # operator looks again once a silent device would be back.
            self.operator.device_back_at = now + DEVICE_AWAY_S
            described = SERIAL_FAULTS[fault.name]
        else:
            self.unit.inject(fault)
            if fault.name == "device_silent":
                self.operator.device_back_at = now + DEVICE_AWAY_S
            described = self.unit.FAULTS[fault.name]
        self.progress.note(now, f"fault injected: {fault} — {described}")

    def _resolve(self, fault: FaultSpec) -> FaultSpec:
        """A pump stall with no tag hits the pump controlling pH now (else the unit's base)."""
        ph = self.controller.snapshot.targets.ph if self.controller.snapshot else None
        pump_faults = ("dosing_pump_stall", "pump_motor_unpowered")
        if fault.name in pump_faults and fault.tag is None and ph is not None:
            return FaultSpec(name=fault.name, tag=ph.pump, at_s=fault.at_s)
        return fault

    def _alarm_names(self) -> list[str]:
        return [f"{a.alarm_id}({a.tag})" for a in self.controller.alarms.active()]

    def _summary(self, final: State, *, wall_s: float) -> dict[str, Any]:
        if self._pending_faults:
            # Scheduled past the batch's end: say so, lest a fault be thought tested.
            minutes = self.clock.monotonic() / 60
            for fault in self._pending_faults:
                self.progress.note(
                    self.clock.monotonic(),
                    f"fault {fault} never injected: the run ended at minute {minutes:.1f}",
                )
        summary = self._run_summary(final, wall_s=wall_s)
        summary["faults_not_injected"] = [str(fault) for fault in self._pending_faults]
        return summary

    def _run_summary(self, final: State, *, wall_s: float) -> dict[str, Any]:
        return run_summary(
            final=final,
            wall_s=wall_s,
            controller=self.controller,
            unit=self.unit,
            truth=self.truth,
            recipe=self.loaded.recipe.name,
            options=self.options,
            plant_params=self.config.sim.plant,
            sim_seconds=self.clock.monotonic(),
        )
