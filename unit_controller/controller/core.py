"""The controller's state, listeners and events: what the scan and every request share."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from hal.board import Board
from hal.clock import Clock
from hal.log import get_logger
from hal.outputs import Outputs
from hal.wiring import LevelPoint
from unit_controller.alarms import AlarmManager
from unit_controller.authority import Authority
from unit_controller.batch.phase_runner import IDLE_TARGETS, PhaseRunner, PhaseTargets
from unit_controller.batch.record import BatchRecord
from unit_controller.config import UnitConfig
from unit_controller.control.process import ProcessControllers
from unit_controller.controller.snapshot import Snapshot
from unit_controller.events import (
    REMOTE_COMMAND_ID,
    CommandHandled,
    Detail,
    EventListener,
    StateChanged,
    UnitEvent,
)
from unit_controller.interlocks import Interlocks, SafetyFilter, Trip
from unit_controller.interlocks.reactive_charge import ReactiveCharge, purge_fitted
from unit_controller.machine import PackMLMachine, State
from unit_controller.manual import MANUAL_STOPPED, ManualMode
from unit_controller.recipes.loader import RECIPES_DIR, LoadedRecipe
from unit_controller.recipes.model import Charge
from unit_controller.safety_memory import LatchedTrip, SafetyMemory
from unit_controller.scan.snapshot import InputQualifier
from unit_controller.unit_modes import UnitModes

log = get_logger(__name__)


@dataclass(eq=False, slots=True)
class _Turn:
    """A request waiting for the scan: `go` when its turn comes, `done` when it has run."""

    go: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ControllerCore:
    """The controller's state and its event plumbing; the scan and the requests build on it."""

    def __init__(
        self,
        *,
        config: UnitConfig,
        board: Board,
        clock: Clock,
        recipes_dir: Path = RECIPES_DIR,
        initial_state: State = State.STOPPED,
        recipe_adapter: Callable[[LoadedRecipe], LoadedRecipe] | None = None,
        charged: bool = False,
        charge_assumed: bool = False,
        authority: Authority = Authority.LOCAL,
    ) -> None:
        """`recipe_adapter`: the simulator's operating point for a recipe it starts (a feed
        rate scaled, or sized to the liquor a campaign made); RecipeError when it cannot.
        `charged`: the reactor may hold acid or reactive liquor already (the previous run said
        so, or a batch was interrupted), so the N2 purge's safe state is open from the first
        scan; the level switches reading dry and the heel drained clear it (`charge_assumed`:
        nothing was known, the switches alone clear it).
        `authority`: where operating commands may come from at start (a new unit: local)."""
        self.config = config
        self._recipe_adapter = recipe_adapter
        self.board = board
        self.clock = clock
        self.recipes_dir = recipes_dir
        # Power-up is Stopped; after an unclean end the daemon starts Aborted (DESIGN §2).
        self.machine = PackMLMachine(initial=initial_state, on_change=self._state_changed)
        self.alarms = AlarmManager()
        self._authority = authority
        self.interlocks = Interlocks(limits=config.interlocks, wiring=config.wiring)
        self.safety = SafetyFilter()
        self._charge = ReactiveCharge(
            wiring=config.wiring,
            charged=charged,
            heel_drain_s=config.safe_state.heel_drain_s,
            assumed=charge_assumed,
        )
        self._purge_holds = config.safe_state.purge == "open_while_charged" and purge_fitted(
            config.wiring
        )
        self._qualifier = InputQualifier(config=config)
        self._low_tag = config.wiring.level_tag(LevelPoint.LOW)
        self._controllers = ProcessControllers(config=config)
        self._listeners: list[EventListener] = []
        self._watchers: list[Callable[[Snapshot], None]] = []
        self._charge_listeners: list[Callable[[Charge], None]] = []
        self._pending: list[UnitEvent] = []
        self._last_event_at = float("-inf")
        self.recipe: LoadedRecipe | None = None
        self.runner: PhaseRunner | None = None
        self.batch: BatchRecord | None = None
        self.snapshot: Snapshot | None = None
        self._applied = Outputs.safe()
        self._into_reactor = self._applied  # the same, less pumps dosing into a cylinder
        self._targets: PhaseTargets = IDLE_TARGETS
        self._trips: list[Trip] = []
        self._last_now: float | None = None
        self._dosed_phase: dict[str, float] = {}
        self._prompted: tuple[int | None, str] | None = None  # (phase index, prompt) asked
        self._manual = ManualMode(config=config)
        self._modes = UnitModes(self._manual)
        self._busy: str | None = None  # a console job (a calibration) that holds off batches
        # Who has the pH probe out in a buffer for a guided calibration (it holds off starts):
        # the reading a batch would dose on is a beaker's.
        self._probe_out: str | None = None
        # What the last unit-mode change stopped (leaving manual ends its jogs and heater run).
        self.mode_change_stopped: list[str] = []
        self._stops_announced = 0  # ManualMode.stops_told as last announced
        self._start_checks: list[Callable[[], str | None]] = []
        # Scans and requests from any source (MQTT, control socket, simulator) take turns:
        # a request never lands between two steps of one scan. While a loop runs the scans in
        # its own task, requests from other tasks wait for the next scan and run at its first
        # step (`_turn`); the scanning task's own requests run between its scans.
        self._lock = asyncio.Lock()
        self._turns: deque[_Turn] = deque()
        self._scanning_task: asyncio.Task[object] | None = None

    def refuse_starts_while(self, check: Callable[[], str | None]) -> None:
        """Refuse a batch start while `check()` names a reason (the journal not open yet)."""
        self._start_checks.append(check)

    # --- requests take turns with the scan ------------------------------------------------
    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """Hold the controller for one request: at the next scan's first step when a loop
        scans in another task, else between scans (the caller is the scanning task, or no
        loop runs yet)."""
        scanning = self._scanning_task
        if scanning is None or scanning.done() or scanning is asyncio.current_task():
            async with self._lock:
                yield
            return
        turn = _Turn()
        self._turns.append(turn)
        try:
            await turn.go.wait()
            yield
        finally:
            # Also when cancelled: the scan must never wait for a request that is gone.
            turn.done.set()
            with contextlib.suppress(ValueError):
                self._turns.remove(turn)

    async def _apply_requests(self) -> None:
        """The scan's first step: let every waiting request run, one after the other."""
        while self._turns:
            turn = self._turns.popleft()
            turn.go.set()
            await turn.done.wait()

    # --- listeners -----------------------------------------------------------------------
    def listen(self, listener: EventListener) -> None:
        """Call `listener` with every event, after the scan has applied its outputs."""
        self._listeners.append(listener)

    def watch(self, watcher: Callable[[Snapshot], None]) -> None:
        """Call `watcher` with every scan's snapshot (it must not block)."""
        self._watchers.append(watcher)

    @property
    def reactor_charged(self) -> bool:
        """The reactor may hold acid or reactive liquor: the N2 purge's safe state is open."""
        return self._charge.charged

    def safety_memory(self) -> SafetyMemory:
        """What a restart must not forget: latched trips not yet reset, the reactor's charge."""
        return SafetyMemory(
            reactor_charged=self._charge.charged,
            aborted=self.machine.state in (State.ABORTING, State.ABORTED),
            latched=tuple(
                LatchedTrip(trip=trip, acked=acked) for trip, acked in self.alarms.latching()
            ),
        )

    def on_charge(self, listener: Callable[[Charge], None]) -> None:
        """Call `listener` when a person confirms a phase's charge went in (a simulated plant
        tips it into its reactor then)."""
        self._charge_listeners.append(listener)

    def _post(self, event: UnitEvent) -> None:
        # Queued: listeners run once outputs are applied, so none can delay a trip.
        # Stamped in the order told: an event of this scan stamped with the scan's start never
        # goes before one stamped a moment into it (journal, events topic, console).
        if event.at < self._last_event_at:
            event = replace(event, at=self._last_event_at)
        self._last_event_at = event.at
        self._pending.append(event)

    def get_under_way(self, now: float) -> None:
        """Starting's work at once (the scan cycle's): see ScanCycle.get_under_way."""
        raise NotImplementedError

    def _flush_events(self) -> None:
        if self._manual.stops_told != self._stops_announced:
            # A tech's jog or heater run cut short (a trip, another session's stop): told as
            # it happens, so the console that started it hears of it (an announcement).
            self._stops_announced = self._manual.stops_told
            self._post(
                CommandHandled(
                    at=self.clock.monotonic(),
                    command=MANUAL_STOPPED,
                    source="manual mode",
                    text=self._manual.last_stop or "manual action stopped",
                )
            )
        pending, self._pending = self._pending, []
        for event in pending:
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("controller.listener_failed", failed_event=event.text)

    def _state_changed(self, old: State, new: State, cause: str) -> None:
        self._post(StateChanged(at=self.clock.monotonic(), old=old, new=new, cause=cause))

    @property
    def awaiting_confirmation(self) -> str | None:
        """The prompt an executing phase waits on (None outside Execute)."""
        if self.runner is None or self.machine.state is not State.EXECUTE:
            return None
        return self.runner.awaiting_confirmation

    @property
    def reagents_ml(self) -> Mapping[str, float]:
        """Reagent totals of the current batch."""
        return self.batch.reagents_ml if self.batch else {}

    async def report_command(self, text: str, *, command: str, source: str, **data: Detail) -> None:
        """Report a console command done outside the machine (a calibration) as an event; it
        takes its turn like any request, so listeners never hear it in the middle of a scan."""
        async with self._turn():
            self._emit_console(command, text, source, **data)
            self._flush_events()

    def _change_authority(self, wanted: Authority, *, source: str) -> None:
        old = self._authority
        if wanted is old:
            return
        self._authority = wanted
        log.info("authority.changed", old=str(old), new=str(wanted), source=source)
        self._emit_console(
            "authority", f"mode {old} -> {wanted}", source, old=str(old), new=str(wanted)
        )

    def _emit_console(self, command: str, text: str, source: str, **details: Detail) -> None:
        command_id = REMOTE_COMMAND_ID.get()
        if command_id is not None:
            details = {**details, "id": command_id}
        self._post(
            CommandHandled(
                at=self.clock.monotonic(),
                command=command,
                source=source,
                text=f"{text} by {source}",
                details=details,
            )
        )
