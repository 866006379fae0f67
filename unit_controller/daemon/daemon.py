"""`unit-controller run`: the unit's controller as a long-running service.

Starts Stopped (Aborted after an unclean end) with every output off, scans at a fixed period,
takes commands from the control socket and MQTT, journals everything, and never resumes a batch
by itself. SIGTERM stops it cleanly: outputs off, journal closed, MQTT `offline`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hal.board import Board
from hal.clock import Clock, ScaledClock
from hal.log import get_logger
from hal.outputs import Outputs
from hal.wiring import CoilFunction, LevelPoint
from unit_controller import __version__
from unit_controller.alarms import BATCH_INTERRUPTED
from unit_controller.authority import store_authority, stored_authority
from unit_controller.backend import open_backend
from unit_controller.calibration import Calibrations
from unit_controller.config import UnitConfig, state_directory
from unit_controller.control_socket.server import ControlServer, socket_answers
from unit_controller.controller import UnitController
from unit_controller.controller.abort_on_stop import abort_on_stop
from unit_controller.daemon.dirs import Directories
from unit_controller.daemon.gc_policy import GcWatch, settle_after_startup
from unit_controller.daemon.housekeeping import Housekeeping
from unit_controller.daemon.sdnotify import SdNotifier, watchdog_interval_s
from unit_controller.events import CommandHandled, StateChanged, UnitEvent
from unit_controller.interlocks import Priority
from unit_controller.journal.recorder import JournalRecorder, record_remote_command
from unit_controller.journal.store import JOURNAL_FILE, Journal
from unit_controller.logs import log_loop_errors
from unit_controller.machine import State
from unit_controller.mqtt.payloads import EpochClock
from unit_controller.recipes.loader import RECIPES_DIR
from unit_controller.safety_memory import SafetyMemory, charge_assumed, charged_at_start
from unit_controller.scan.driver import ScanDriver
from unit_controller.scan.timing import ScanTimes
from unit_controller.sqlite_worker import StoreError, storage_may_recover
from unit_controller.state_lock import PRIVATE_UMASK, AlreadyRunning, hold_state_dir
from unit_controller.storage_watch import StorageWatch

if TYPE_CHECKING:
    from hal.mock.unit import SimulatedUnit
    from hal.serial.board import SerialHardware
    from unit_controller.control_socket.ops import Operations
    from unit_controller.mqtt.service import FleetService

log = get_logger(__name__)

# Scans that fail in a row before the daemon gives up (systemd restarts it, outputs off).
MAX_FAILED_SCANS = 10
# The outbox a full disk refused at start is tried again at most this far apart.
FLEET_RETRY_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """How to run: directories and, on the simulator, the speed."""

    dirs: Directories
    speed: float | None = None  # mock backend: times real time (None: config, else 1)
    recipes_dir: Path = RECIPES_DIR


class Daemon:
    """One unit's controller with its journal, control socket and fleet link."""

    def __init__(self, *, config: UnitConfig, options: DaemonOptions, out: TextIO) -> None:
        self.config = config
        self.options = options
        self.out = out
        self.state_dir = options.dirs.state or state_directory(config)
        self.notifier = SdNotifier()
        self._stop = asyncio.Event()
        self._failed_scans = 0
        self._running = False  # the scan loop has started
        self._background: set[asyncio.Future[None]] = set()
        self.unit: SimulatedUnit | None = None
        self._hardware: SerialHardware | None = None  # the serial drivers (serial backend)
        self._fleet: FleetService | None = None  # once its outbox is open
        # Why the outbox could not open at start (a full disk), while it is tried again.
        self._fleet_waits: str | None = None
        self.clock: Clock = self._make_clock()
        self.epoch = EpochClock(clock=self.clock)
        self._started = time.monotonic()
        self.scan_times = ScanTimes(period_s=config.unit.scan_period_s)
        self.gc_watch = GcWatch()

    def _make_clock(self) -> Clock:
        if self.config.hal.backend == "mock":
            speed = self.options.speed or self.config.sim.speed or 1.0
            # The scan reads the clock every period; a longer gap is the host stalling. Five
            # periods of simulated time at most, whatever the speed: a 0.4 s stall at 10x was 4 s
            # of silence, past the E-stop's 3 s staleness (a false critical abort). A loaded host
            # runs the simulation slower than asked instead.
            return ScaledClock(speed=speed, max_stall_s=5 * self.config.unit.scan_period_s / speed)
        return ScaledClock(speed=1.0)

    def stop(self) -> None:
        """Ask the daemon to stop cleanly (what SIGTERM does)."""
        self._stop.set()

    def _hung_up(self) -> None:
        """SIGHUP: the terminal is gone. Every write to it would fail (EIO) and end the stop as
        a crash, so output that went to a terminal goes to /dev/null; then stop as SIGTERM."""
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                for fd in (1, 2):
                    with contextlib.suppress(OSError):
                        if stat.S_ISCHR(os.fstat(fd).st_mode):  # a terminal (a file, pipe stays)
                            os.dup2(devnull, fd)
            finally:
                os.close(devnull)
        except OSError:
            pass  # out of descriptors: stop all the same, output or not
        finally:
            self.stop()

    async def run(self) -> int:
        """Run until stopped; 0 after a clean stop, 1 when scans kept failing."""
        os.umask(os.umask(0) | PRIVATE_UMASK)
        loop = asyncio.get_running_loop()
        log_loop_errors(loop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        # SIGHUP too: a daemon run from a terminal that closes (an SSH session dropped) stops
        # as cleanly as under systemd, not as a crash that leaves its batch interrupted. Unless
        # it was started to ignore it (nohup): then it goes on running.
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, self._hung_up)
        with self._single_instance():
            if await socket_answers(self.options.dirs.socket):
                raise AlreadyRunning(
                    f"another unit-controller is listening on {self.options.dirs.socket}; "
                    "give this run its own --runtime-dir"
                )
            journal = Journal(path=self.state_dir / JOURNAL_FILE)
            # A full disk must not leave the reactor without its controller (the relay board's
            # lease would drop every output, the purge too): start, and save once it can.
            opening = await journal.open(wait_for_disk=True)
            self.epoch = EpochClock(clock=self.clock, not_before_ms=await journal.latest_ts())
            code = 1
            try:
                async with open_backend(
                    self.config, clock=self.clock, state_dir=self.state_dir
                ) as backend:
                    self.unit, board = backend.simulated, backend.board
                    self._hardware = backend.serial
                    code = await self._serve(board, journal, opening)
                    return code
            finally:
                # Only a clean stop is clean: a daemon that fails while running restarts as after
                # a crash. One that failed to start (a bad directory) ran nothing.
                await journal.close(clean=code == 0 or not self._running)
                if self._fleet is not None:
                    # Stopped already after a run; after a failed start, its outbox is closed.
                    try:
                        await self._fleet.stop(drain_timeout_s=0.0)
                    except Exception:
                        log.exception("daemon.fleet_stop_failed")  # the first error stands
                self.notifier.close()

    async def _commission_report(self) -> dict[str, Any]:
        # Imported here: the mock backend has no serial drivers to survey.
        from unit_controller.commissioning.running import survey_running

        assert self._hardware is not None
        report = await survey_running(self.config, self._hardware, state_dir=self.state_dir)
        return report.as_json()

    @contextlib.contextmanager
    def _single_instance(self) -> Iterator[None]:
        """Hold `<state dir>/lock`: a second daemon on the same unit stops before touching
        anything (journal, outbox, serial ports, socket)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        _make_private(self.state_dir)
        with hold_state_dir(self.state_dir):
            yield

    async def _serve(self, board: Board, journal: Journal, opening: Any) -> int:
        config = self.config
        # An interrupted batch nobody has reset keeps the unit Aborted across restarts too.
        clean = opening.previous_run_clean and not opening.unreset_interrupted
        memory = (
            SafetyMemory.unknown(opening.unreadable)
            if opening.unreadable is not None
            else SafetyMemory.from_json(opening.safety)
        )
        controller = UnitController(
            config=config,
            board=board,
            clock=self.clock,
            recipes_dir=self.options.recipes_dir,
            # After a crash or power loss the unit comes up Aborted: someone must look first;
            # after a clean stop, Aborted if it was (nobody has cleared it yet).
            initial_state=State.ABORTED
            if not clean or (memory is not None and memory.aborted)
            else State.STOPPED,
            # Acid may still be in the reactor (the last run said so, an interrupted batch, a
            # crash, or nothing known): keep the N2 blanket until the level switches read it
            # empty.
            charged=charged_at_start(
                memory,
                batch_interrupted=bool(opening.unreset_interrupted),
                previous_run_clean=opening.previous_run_clean,
            ),
            # Nothing known (a first start, a crash after a "no"): the switches reading dry are
            # enough.
            charge_assumed=charge_assumed(
                memory,
                batch_interrupted=bool(opening.unreset_interrupted),
                previous_run_clean=opening.previous_run_clean,
            ),
            # After a crash or power loss only someone at the unit may operate it.
            authority=stored_authority(self.state_dir, clean=clean),
        )
        await asyncio.to_thread(store_authority, self.state_dir, controller.authority)
        if self.unit is not None:
            # The simulated plant leaves out what a console jog doses into a measuring cylinder.
            self.unit.cylinder_pumps = controller.manual_cylinder_pumps
        self._controller = controller
        self._journal = journal
        controller.refuse_starts_while(lambda: _journal_not_open(journal))
        recorder = JournalRecorder(
            controller=controller,
            journal=journal,
            epoch_ms=self.epoch.ms,
            mark_clock=not self.epoch.live,
        )
        recorder.attach()
        controller.listen(self._on_event)
        if self.unit is not None:
            # A person confirms the charge went in: the simulated plant gets it then.
            plant = self.unit.plant
            controller.on_charge(lambda charge: plant.charge_black_mass(charge.kg))
        housekeeping = Housekeeping(
            config=config,
            controller=controller,
            journal=journal,
            clock=self.clock,
            epoch=self.epoch,
        )
        self._housekeeping = housekeeping
        fleet = None
        if config.mqtt.enabled:
            from unit_controller.mqtt.service import FleetService

            fleet = FleetService(
                config=config,
                controller=controller,
                clock=self.clock,
                state_dir=self.state_dir,
                recipes_dir=self.options.recipes_dir,
                on_command=partial(record_remote_command, journal),
                clock_synchronized=lambda: housekeeping.clock_synced,
                epoch=self.epoch,
            )
            # Open (no publishing yet) before the start-up alarms, so they go out on events.
            try:
                await fleet.open()
            except StoreError as exc:
                if not storage_may_recover(exc):
                    raise
                # As for the journal: the reactor keeps its controller; the fleet waits.
                self._fleet_waits = exc.reason
                log.error("daemon.fleet_deferred", error=str(exc))
            else:
                self._fleet = fleet  # `run` closes it should the start fail from here on
        await self._interrupted(controller, opening)
        if memory is not None and memory.latched:
            # A restart is no reset: what latched before it forces its outputs still.
            await controller.restore_latched(memory.latched)
            log.warning("daemon.latched_restored", alarms=[e.trip.alarm_id for e in memory.latched])
        calibrations = Calibrations(controller=controller)

        def make_ops() -> Operations:
            # Built by the first control-socket session (with the request models it loads).
            from unit_controller.control_socket.ops import Operations

            return Operations(
                config=config,
                controller=controller,
                calibrations=calibrations,
                journal=journal,
                epoch=self.epoch,
                recipes_dir=self.options.recipes_dir,
                batch_id=lambda: recorder.batch_id,
                ended_batch=lambda: recorder.ended,
                ph_calibration_due=lambda: housekeeping.ph_due,
                commission=self._commission_report if self._hardware is not None else None,
                on_calibrated=housekeeping.calibrated,
                clock_synchronized=lambda: housekeeping.clock_synced,
                stats=self.stats,
            )

        server = ControlServer(
            path=self.options.dirs.socket,
            make_ops=make_ops,
            epoch=self.epoch,
            hello=lambda: self._hello(controller),
            group=socket_group(config.console.group, os.environ),
            max_connections=config.console.socket_max_connections,
            idle_timeout_s=config.console.socket_idle_timeout_s,
        )
        controller.listen(server.event)
        board.apply(controller.safe_outputs())
        await controller.scan()
        await housekeeping.check_now()
        await server.start()
        fleet_later: asyncio.Task[None] | None = None
        if self._fleet is not None:
            await self._fleet.start()
        elif fleet is not None:
            fleet_later = asyncio.create_task(self._start_fleet_later(fleet), name="fleet-later")
        storage = StorageWatch(controller)
        storage.watch(
            "journal",
            lambda: journal.write_error,
            loses="events, commands and batch records are held in memory only (up to a cap)",
        )
        if fleet is not None:
            outbox = fleet.outbox
            storage.watch(
                "outbox",
                lambda: self._fleet_waits or outbox.write_error,
                loses=lambda: (
                    "nothing goes to the fleet until it opens (tried again every few seconds)"
                    if self._fleet_waits
                    else "telemetry is held in memory only (up to a cap) and lost if the unit stops"
                ),
            )
        keeper = asyncio.create_task(housekeeping.run(), name="housekeeping")
        watcher = asyncio.create_task(storage.run(), name="storage-watch")
        self.notifier.ready(self._status_text(controller))
        self._say(
            f"unit {config.unit.id} ({config.hal.backend} backend) {controller.machine.state}; "
            f"control socket {server.path}; journal {journal.path}"
            + (f"; publishing to {config.mqtt.url}" if self._fleet else "")
            + (
                f"; not publishing until the outbox opens ({self._fleet_waits})"
                if self._fleet_waits
                else ""
            )
        )
        log.info(
            "daemon.ready",
            unit=config.unit.id,
            state=str(controller.machine.state),
            socket=str(server.path),
            previous_run_clean=clean,
        )
        code: int | None = None  # None: the scan loop failed by an exception
        try:
            code = await self._scan_loop(controller)
        finally:
            self.notifier.stopping()
            if fleet is not None:
                # No scan will carry out a command from here on: each gets its refusal at once.
                fleet.refuse_commands(
                    "the unit is stopping: send it again, with a new id, once it is back online"
                )
            keeper.cancel()
            watcher.cancel()
            if fleet_later is not None:
                fleet_later.cancel()
                await asyncio.wait([fleet_later])
            await self._end_batch(controller)
            # Every output at its own safe state first (the rest of the stop may take a while):
            # not all off, for the purge stays open on a charged reactor and the cooling
            # while a high-high trip is in effect.
            resting = controller.safe_outputs()
            board.apply(resting)
            log.info("daemon.stopping", state=str(controller.machine.state))
            self._say_leases_lapse(config, resting)
            await server.close()
            if fleet is not None:
                # The journal is closed (a clean stop marked clean) before the drain, which may
                # wait on a hung broker past systemd's TimeoutStopSec: a SIGKILL then must not
                # make the next start one after a crash (Aborted, local). The outbox keeps
                # whatever the drain does not get out.
                await journal.close(clean=code == 0)
                await fleet.stop()
            # A moment for the drivers to write the offs before their tasks stop.
            await asyncio.sleep(min(0.5, 3 * config.unit.scan_period_s))
        self._say("stopped")
        assert code is not None  # an exception from the scan loop left above
        return code

    async def _start_fleet_later(self, fleet: FleetService) -> None:
        """Try the outbox the disk refused at start until it opens, then link to the fleet."""
        delay = 2.0
        while True:
            await asyncio.sleep(delay)
            try:
                await fleet.open()
            except StoreError as exc:
                self._fleet_waits = exc.reason
                delay = min(delay * 2, FLEET_RETRY_MAX_S)
                continue
            except Exception:
                log.exception("daemon.fleet_failed")  # not a disk: trying again cannot mend it
                return
            break
        self._fleet = fleet
        self._fleet_waits = None
        await fleet.start()
        log.warning("daemon.fleet_opened_late", outbox=str(fleet.outbox.path))

    def stats(self, window_s: float | None = None) -> dict[str, Any]:
        """The `stats` op: scan lateness and duration over the last `window_s` (default: all
        kept, ten minutes), garbage collections and their pauses, uptime and resident memory."""
        return {
            **self.scan_times.summary(window_s),
            "gc": self.gc_watch.summary(),
            "uptime_s": round(time.monotonic() - self._started, 3),
            "rss_mb": _rss_mb(),
        }

    def _hello(self, controller: UnitController) -> dict[str, Any]:
        unit = self.config.unit
        return {
            "unit": unit.id,
            "site": unit.site,
            "version": __version__,
            "state": controller.machine.state.value,
            "pin_required": self.config.console.pin_required,
            # An interactive console sends something well within this, so a tech who leaves it
            # open is never cut off.
            "idle_timeout_s": self.config.console.socket_idle_timeout_s,
        }

    async def _interrupted(self, controller: UnitController, opening: Any) -> None:
        batches = list(opening.unreset_interrupted)
        if not batches:
            return
        ids = ", ".join(str(b) for b in batches)
        # Its cause is in the past: the alarm stays latched until acknowledged and reset.
        await controller.raise_alarm(
            alarm_id=BATCH_INTERRUPTED,
            tag="batch",
            priority=Priority.HIGH,
            latch=True,
            over=True,
            message=(
                f"batch {ids} was interrupted (power loss or crash) and will not resume: "
                "check the reactor, then (console) ack all, clear, reset"
            ),
        )
        log.warning("daemon.batch_interrupted", batches=batches)

    async def _scan_loop(self, controller: UnitController) -> int:
        self._running = True
        unit = self.unit

        async def step_plant(now: float, dt: float) -> None:
            if unit is not None:
                unit.step(dt)

        driver = ScanDriver(
            controller=controller,
            clock=self.clock,
            period_s=self.config.unit.scan_period_s,
            stall_alarm_s=self.config.unit.stall_alarm_s,
            overrun_alarm_s=self.config.unit.overrun_alarm_s,
            before_scan=step_plant,
            times=self.scan_times,
        )
        # Only when systemd watches (WatchdogSec=): a ping nobody reads is a wasted datagram.
        watchdog_every = watchdog_interval_s()
        loop = asyncio.get_running_loop()
        last_ping = 0.0
        # Everything start-up made is up now: out of the collector's way for good. Collections
        # are timed from here on (the one that settles start-up is not the running daemon's).
        settle_after_startup()
        self.gc_watch.install()
        try:
            while await driver.wait(self._stop):
                try:
                    await driver.scan()
                    self._failed_scans = 0
                except Exception:
                    # The controller has written every output safe already.
                    self._failed_scans += 1
                    if self._failed_scans >= MAX_FAILED_SCANS:
                        log.error("daemon.scans_failing", count=self._failed_scans)
                        return 1
                # The watchdog is fed from the scan loop itself, so a hung loop gets restarted.
                if watchdog_every is not None and loop.time() - last_ping >= watchdog_every:
                    self.notifier.watchdog()
                    last_ping = loop.time()
            return 0
        finally:
            driver.close()
            self.gc_watch.uninstall()

    async def _end_batch(self, controller: UnitController) -> None:
        """A service stop during a batch aborts it through the machine, so the journal closes
        its record (phases, reagents) as aborted by the stop, not as a crash."""
        try:
            await abort_on_stop(
                controller, source="daemon", reason="service stop", scan=controller.scan
            )
        except Exception:
            log.exception("daemon.abort_on_stop_failed")

    def _on_event(self, event: UnitEvent) -> None:
        if isinstance(event, CommandHandled) and event.command == "authority":
            # Kept for the next clean start; off the event loop (it syncs the file).
            task = asyncio.get_running_loop().create_task(
                asyncio.to_thread(store_authority, self.state_dir, self._controller.authority),
                name="store-authority",
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        if isinstance(event, StateChanged):
            self.notifier.status(self._status_text(self._controller))
            if event.new is State.STARTING and self.unit is not None:
                # An empty simulated reactor gets the charge the recipe starts from, as a
                # person would load it; one that holds something keeps it, as a real one does
                # (what an aborted batch left is what the next one starts on).
                recipe = self._controller.recipe
                if recipe is not None and not self.unit.plant.wet(LevelPoint.LOW_LOW):
                    self.unit.preload(recipe.recipe.starts_with.value)

    def _status_text(self, controller: UnitController) -> str:
        snap = controller.snapshot
        phase = f" {snap.phase}" if snap and snap.phase else ""
        recipe = f" {snap.recipe}" if snap and snap.recipe else ""
        return f"{controller.machine.state}{recipe}{phase}"

    def _say_leases_lapse(self, config: UnitConfig, resting: Outputs) -> None:
        # A valve held open as its safe state is a renewed lease (DESIGN §2): with no
        # controller it closes once its lease runs out. Said where the person who stopped it
        # looks (systemd's journal, the terminal).
        held = [
            (CoilFunction.PURGE_VALVE, "the N2 purge", "the reactor may hold acid")
            if resting.purge_valve
            else None,
            (CoilFunction.COOLING_VALVE, "the jacket cooling", "a high-high trip stands")
            if resting.cooling_valve
            else None,
        ]
        for function, name, why in (h for h in held if h is not None):
            if not config.wiring.has_coil(function):
                continue  # asked safe, but not fitted on this unit
            lease_s = config.wiring.coil(function).lease_s
            log.warning("daemon.lease_lapses", output=function.value, lease_s=lease_s)
            self._say(
                f"{why}: {name} stays open only {lease_s:g} s (its lease) after this stop; "
                "start the controller again, or see to it by hand"
            )

    def _say(self, text: str) -> None:
        # The unit's clock, as every other stamp it writes (ahead of the wall when sped up).
        now_s = self.epoch.ms(self.clock.monotonic()) / 1000
        stamp = time.strftime("%H:%M:%S", time.localtime(now_s))
        self.out.write(f"[{stamp}] {text}\n")
        self.out.flush()


def _rss_mb() -> float | None:
    """Resident memory (MB) from /proc/self/statm; None where there is no /proc."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)


def _make_private(state_dir: Path) -> None:
    """Take 'other' access off the state directory and its files: an earlier release or a hand
    start under a lax umask may have left them readable by anyone on the box."""
    for path in (state_dir, *state_dir.iterdir()):
        with contextlib.suppress(OSError):  # not ours to change: the daemon runs on regardless
            mode = path.lstat().st_mode
            if mode & 0o007 and not stat.S_ISLNK(mode):
                path.chmod(stat.S_IMODE(mode) & ~0o007)


def _journal_not_open(journal: Journal) -> str | None:
    if journal.deferred is None:
        return None
    return (
        f"the journal cannot be opened ({journal.deferred}), and a batch is not run without "
        "its record: free space in the state directory"
    )


def socket_group(group: str | None, env: Mapping[str, str]) -> str | None:
    """The group the daemon gives its control socket itself: `[console] group`, except under
    the service, which hands it to unit-console from outside its sandbox (ExecStartPost=): the
    daemon may not chown there, and trying stopped the service for good (exit 2)."""
    if group is None or not env.get("RUNTIME_DIRECTORY"):
        return group
    log.warning(
        "console.group_ignored",
        group=group,
        text="under the service, ExecStartPost= hands the control socket to unit-console",
    )
    return None
