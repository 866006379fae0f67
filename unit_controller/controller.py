"""The unit controller: one scan of the six steps (DESIGN §2), and the command model.

The scan never waits on I/O: devices hand over their newest readings and take desired states.
If anything in a scan fails, every output is written safe before the error goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from hal.board import Board
from hal.clock import Clock
from hal.outputs import Outputs
from hal.wiring import LevelPoint
from unit_controller.alarms import AlarmEvent, AlarmEventKind, AlarmManager
from unit_controller.batch.phase_runner import IDLE_TARGETS, PhaseRunner, PhaseTargets
from unit_controller.batch.record import BatchRecord
from unit_controller.config import UnitConfig
from unit_controller.control.process import ProcessControllers
from unit_controller.errors import CommandRefused, RecipeError
from unit_controller.events import (
    AlarmTransition,
    CommandHandled,
    Detail,
    EventListener,
    PhaseStarted,
    PromptRaised,
    StateChanged,
    UnitEvent,
)
from unit_controller.interlocks import (
    InterlockContext,
    Interlocks,
    Priority,
    SafetyFilter,
    Trip,
    TripAction,
)
from unit_controller.interlocks.effects import Output, forcing
from unit_controller.interlocks.reactive_charge import ReactiveCharge, purge_fitted
from unit_controller.machine import Command, Guard, PackMLMachine, State, UnitMode
from unit_controller.manual import (
    MANUAL_STATES,
    ManualMode,
    refuse_during_batch,
)
from unit_controller.permissives import blocking_trips, start_blockers
from unit_controller.process_image import ProcessImage
from unit_controller.recipes.loader import RECIPES_DIR, LoadedRecipe, load_recipe
from unit_controller.recipes.model import Charge, Overshoot, StartsWith
from unit_controller.scan.snapshot import InputQualifier
from unit_controller.unit_modes import UnitModes

log = structlog.get_logger(__name__)

SCAN_FAILED = "scan_failed"

# States in which a batch is under way and the process may have outputs on; everywhere else
# the safety filter forces all off.
PROCESS_STATES = frozenset(
    {
        State.EXECUTE,
        State.HOLDING,
        State.HELD,
        State.UNHOLDING,
        State.SUSPENDING,
        State.SUSPENDED,
        State.UNSUSPENDING,
    }
)
# States in which the phase pauses: keep temperature safe, stop dosing, feeds, fill and drain.
_PAUSED_STATES = PROCESS_STATES - {State.EXECUTE}
_HOLD_OR_ABORT = frozenset({TripAction.HOLD, TripAction.ABORT})
_ABORT = frozenset({TripAction.ABORT})
PHASE_TIMEOUT = "phase_timeout"
PH_OVERSHOOT = "ph_overshoot"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one scan saw and did: for progress, telemetry and console watchers."""

    at: float
    state: State
    state_no: int
    phase: str | None
    recipe: str | None
    image: ProcessImage
    targets: PhaseTargets
    outputs: Outputs
    heater_duty: float
    awaiting_confirmation: str | None
    manual: bool = False
    unit_mode: UnitMode = UnitMode.PRODUCTION


class UnitController:
    """Owns the scan and the command model of one unit."""

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
    ) -> None:
        """`recipe_adapter`: the simulator's operating point for a recipe it starts (a feed
        rate scaled, or sized to the liquor a campaign made); RecipeError when it cannot.
        `charged`: the reactor may hold acid or reactive liquor already (a batch was
        interrupted), so the N2 purge's safe state is open from the first scan."""
        self.config = config
        self._recipe_adapter = recipe_adapter
        self.board = board
        self.clock = clock
        self.recipes_dir = recipes_dir
        # Power-up is Stopped; after an unclean end the daemon starts Aborted (DESIGN §2).
        self.machine = PackMLMachine(initial=initial_state, on_change=self._state_changed)
        self.alarms = AlarmManager()
        self.interlocks = Interlocks(limits=config.interlocks, wiring=config.wiring)
        self.safety = SafetyFilter()
        self._charge = ReactiveCharge(wiring=config.wiring, charged=charged)
        self._purge_holds = config.safe_state.purge == "open_while_charged" and purge_fitted(
            config.wiring
        )
        self._qualifier = InputQualifier(config=config)
        self._controllers = ProcessControllers(config=config)
        self._listeners: list[EventListener] = []
        self._watchers: list[Callable[[Snapshot], None]] = []
        self._charge_listeners: list[Callable[[Charge], None]] = []
        self._pending: list[UnitEvent] = []
        self.recipe: LoadedRecipe | None = None
        self.runner: PhaseRunner | None = None
        self.batch: BatchRecord | None = None
        self.snapshot: Snapshot | None = None
        self._applied = Outputs.safe()
        self._targets: PhaseTargets = IDLE_TARGETS
        self._trips: list[Trip] = []
        self._last_now: float | None = None
        self._dosed_phase: dict[str, float] = {}
        self._prompted: str | None = None
        self._manual = ManualMode(config=config)
        self._modes = UnitModes(self._manual)
        self._busy: str | None = None  # a console job (a calibration) that holds off batches
        # Scans and commands from any source (MQTT, control socket, simulator) take turns:
        # a command never lands between two steps of one scan.
        self._lock = asyncio.Lock()

    # --- listeners -----------------------------------------------------------------------
    def listen(self, listener: EventListener) -> None:
        """Call `listener` with every event, after the scan has applied its outputs."""
        self._listeners.append(listener)

    def watch(self, watcher: Callable[[Snapshot], None]) -> None:
        """Call `watcher` with every scan's snapshot (it must not block)."""
        self._watchers.append(watcher)

    def on_charge(self, listener: Callable[[Charge], None]) -> None:
        """Call `listener` when a person confirms a phase's charge went in (a simulated plant
        tips it into its reactor then)."""
        self._charge_listeners.append(listener)

    def _post(self, event: UnitEvent) -> None:
        # Queued: listeners run once outputs are applied, so none can delay a trip.
        self._pending.append(event)

    def _flush_events(self) -> None:
        pending, self._pending = self._pending, []
        for event in pending:
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("controller.listener_failed", failed_event=event.text)

    def _state_changed(self, old: State, new: State, cause: str) -> None:
        self._post(StateChanged(at=self.clock.monotonic(), old=old, new=new, cause=cause))

    # --- the scan ------------------------------------------------------------------------
    async def scan(self) -> Snapshot:
        """One scan: snapshot, interlocks, machine, controllers, safety filter, apply, publish."""
        try:
            async with self._lock:
                snapshot = await self._scan()
        except Exception as exc:
            log.exception("scan.failed")
            charged = self._purge_holds and self._charge.charged
            self._applied = replace(Outputs.safe(), purge_valve=charged)
            self.board.apply(self._applied)
            # Not only a log line: the unit's people see it (journal, console, fleet).
            self.alarms.raise_alarm(
                alarm_id=SCAN_FAILED,
                tag="controller",
                priority=Priority.HIGH,
                now=self.clock.monotonic(),
                message=f"a scan failed ({type(exc).__name__}: {exc}); outputs forced safe",
            )
            raise
        self.alarms.clear(SCAN_FAILED, "controller", now=snapshot.at)
        self._flush_events()
        for watcher in self._watchers:
            try:
                watcher(snapshot)
            except Exception:
                log.exception("controller.watcher_failed")
        return snapshot

    async def _scan(self) -> Snapshot:
        now = self.clock.monotonic()
        dt = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        was_executing = self.machine.state is State.EXECUTE

        # 1 snapshot inputs
        image = self._qualifier.snapshot(self.board, now=now, applied=self._applied)
        if self.batch is not None and self.batch.end_s is None:
            self.batch.observe(
                image=image,
                targets=self._targets,
                applied=self._applied,
                dt=dt,
                executing=was_executing,
            )
        for tag, rate in self._applied.pumps.items():
            self._dosed_phase[tag] = self._dosed_phase.get(tag, 0.0) + rate * dt / 60.0
        self._manual.account(applied=self._applied, dt=dt, now=now)

        # 2 interlocks -> alarms (latched) -> trips in effect -> PackML
        self._trips = self.interlocks.evaluate(image, self._context())
        raised = self._record_alarms(self.alarms.update(self._trips, now))
        await self._act_on_trips(self.alarms.in_effect(), raised=raised)

        # 3 machine and recipe
        await self._step_machine(image, dt, was_executing=was_executing)
        state = self.machine.state
        if self.runner is not None and state in PROCESS_STATES:
            self._targets = self.runner.targets(holding=state in _PAUSED_STATES)
        else:
            self._targets = IDLE_TARGETS

        # 4 controllers (in manual mode: the tech's jogs and heater run, nothing else)
        in_effect = self.alarms.in_effect()
        manual = self._manual.on and state in MANUAL_STATES
        purge_open = self._purge_holds and self._charge.charged
        if manual:
            self._manual.hold_permissives(
                low_level_wet=image.wet(LevelPoint.LOW),
                agitation_forced=forcing(in_effect, Output.AGITATOR),
            )
            desired = self._controllers.compute_manual(
                heater_duty=self._manual.heater_duty,
                pumps=self._manual.pump_rates(),
                now=now,
                temperature_c=image.temperature.value if image.temperature.good else None,
                agitator=self._manual.agitator_wanted,
            )
            # Manual work on a charged reactor keeps its blanket.
            desired = replace(desired, purge_valve=purge_open)
        else:
            if self._manual.active:  # a trip's abort took the unit out of rest
                aborts = blocking_trips(in_effect, actions=_ABORT)
                self._manual.cancel(f"{state}" + (f": {', '.join(aborts)}" if aborts else ""))
            desired = self._controllers.compute(self._targets, image)

        # 5 safety filter: the one place outputs are forced safe
        outputs = self.safety.apply(
            desired,
            trips=in_effect,
            allow_process_outputs=state in PROCESS_STATES or manual,
            purge_open=purge_open,
        )
        if manual:
            self._manual.cancel_forced(desired=desired, applied=outputs, trips=in_effect)

        # 6 apply
        self.board.apply(outputs)
        if image.temperature.good and image.temperature.value is not None:
            self.board.ph.compensate(image.temperature.value)
        self._applied = outputs
        self._charge.update(applied=outputs, image=image, in_process=state in PROCESS_STATES)

        # 7 publish (listeners and watchers run after the return, in `scan`)
        self.snapshot = Snapshot(
            at=now,
            state=state,
            state_no=self.machine.number,
            phase=self._targets.phase,
            recipe=self.recipe.recipe.name if self.recipe else None,
            image=image,
            targets=self._targets,
            outputs=outputs,
            heater_duty=self._controllers.duty,
            awaiting_confirmation=self.awaiting_confirmation,
            manual=self._manual.on,
            unit_mode=self._modes.mode,
        )
        return self.snapshot

    def _context(self) -> InterlockContext:
        targets = self._targets
        ph = targets.ph_active
        # A manual heater run has no setpoint: the verifier judges it heating toward the
        # high-high limit, so a heater driven hard that does not heat still trips.
        manual_heat = self._manual.heater is not None
        return InterlockContext(
            # A batch under way, held or not: its inputs matter and their trips alarm.
            executing=self.machine.state in PROCESS_STATES,
            temperature_setpoint_c=(
                self.config.interlocks.temperature_high_high_c
                if manual_heat
                else targets.temperature_c
            ),
            heat_wanted=targets.temperature_c is not None or manual_heat,
            agitator_wanted=targets.agitator or self._manual.agitator_wanted,
            ph_setpoint=ph.setpoint if ph else None,
            ph_pump=ph.pump if ph else None,
            ph_raises=ph.raises if ph else True,
            dosed_this_phase_ml=dict(self._dosed_phase),
            cap_ml=dict(targets.caps_ml),
            dosing=any(rate > 0 for rate in self._applied.pumps.values()),
            # A small phase cap means a small expected dose: judge the response on half of it.
            ph_not_responding_ml=(
                min(self.config.interlocks.ph_not_responding_ml, ph.cap_ml / 2) if ph else None
            ),
            ph_tolerance=ph.tolerance if ph else 0.05,
            ph_counter=ph is not None and ph.counter_pump is not None,
            ph_overshoot_holds=ph is None or ph.on_overshoot is Overshoot.HOLD,
            reactor_dose_wanted=bool(targets.pumps) or ph is not None,
            manual_jogs=bool(self._manual.jogs),
        )

    def _record_alarms(self, events: list[AlarmEvent]) -> set[tuple[str, str]]:
        """Report alarm transitions; returns the keys raised this scan."""
        raised = set()
        for event in events:
            if event.kind is AlarmEventKind.RAISED:
                raised.add((event.alarm_id, event.tag))
                if self.batch is not None and self.batch.end_s is None:
                    self.batch.alarm_raised(
                        alarm_id=event.alarm_id,
                        tag=event.tag,
                        priority=str(event.priority),
                        now=event.at,
                    )
            self._post(
                AlarmTransition(
                    at=self.clock.monotonic(),
                    alarm_id=event.alarm_id,
                    tag=event.tag,
                    transition=str(event.kind),
                    priority=str(event.priority),
                    state=str(event.state),
                    first_out=event.first_out,
                    message=event.message,
                )
            )
        return raised

    async def _act_on_trips(self, in_effect: list[Trip], *, raised: set[tuple[str, str]]) -> None:
        """A trip in effect takes the batch out of Execute: Abort, or Hold (DESIGN §5)."""
        aborts = [t for t in in_effect if t.action is TripAction.ABORT]
        holds = [t for t in in_effect if t.action is TripAction.HOLD]
        machine = self.machine
        state = machine.state
        if aborts and (
            state in PROCESS_STATES | {State.STARTING, State.COMPLETING}
            or (state is State.IDLE and any(t.key in raised for t in aborts))
        ):
            # A new abort cause (an E-stop) aborts a unit that is running or ready to run;
            # a stopped unit has everything off already and keeps the latched alarm.
            await machine.command(Command.ABORT, reason=aborts[0].alarm_id)
        elif holds and machine.allowed(Command.HOLD):
            if state is State.STARTING:
                # Held while getting under way (OPC 30050): the batch exists, waiting to go on.
                self._begin_batch(self.clock.monotonic())
            await machine.command(Command.HOLD, reason=holds[0].alarm_id)

    async def _step_machine(self, image: ProcessImage, dt: float, *, was_executing: bool) -> None:
        machine = self.machine
        state = machine.state
        runner = self.runner
        if state is State.STARTING:
            self._begin_batch(image.now)
            await machine.state_complete()
            self._phase_entered(image.now)
            return
        if state is State.EXECUTE and runner is not None:
            overshot = any(t.alarm_id == PH_OVERSHOOT for t in self._trips)
            if was_executing and runner.advance(
                image, dt=dt, applied_ml_min=self._applied.pumps, overshot=overshot
            ):
                self._clear_phase_timeout(image.now)
                if runner.done:
                    await machine.finish()
                    return
                self._phase_entered(image.now)
            self._prompt_if_needed()
            if runner.timed_out() and runner.phase is not None:
                name = runner.phase.name
                self.alarms.raise_alarm(
                    alarm_id=PHASE_TIMEOUT,
                    tag=name,
                    now=image.now,
                    priority=Priority.MEDIUM,
                    message=f"phase {name} did not finish within its timeout",
                )
                await machine.command(Command.HOLD, reason=PHASE_TIMEOUT)
            return
        if state is State.UNHOLDING and runner is not None and runner.timed_out():
            # The operator chose to go on: the phase gets another full timeout.
            runner.extend_timeout()
            self._clear_phase_timeout(image.now)
        if state in (State.COMPLETING, State.STOPPING, State.ABORTING) and self.batch is not None:
            self.batch.finish(now=image.now)
            self._clear_phase_timeout(image.now)
        if machine.is_acting:
            await machine.state_complete()

    def _begin_batch(self, now: float) -> None:
        """Starting's work: the recipe's first phase, fresh controllers, a batch record."""
        assert self.runner is not None
        assert self.recipe is not None
        self.runner.begin()
        self._controllers.begin_batch()
        self.batch = BatchRecord(recipe=self.recipe.recipe.name, start_s=now)

    def _clear_phase_timeout(self, now: float) -> None:
        for alarm in self.alarms.active():
            if alarm.alarm_id == PHASE_TIMEOUT:
                self.alarms.clear(PHASE_TIMEOUT, alarm.tag, now=now)

    def _phase_entered(self, now: float) -> None:
        assert self.runner is not None
        self._dosed_phase = {}
        phase = self.runner.phase
        if phase is None:
            return
        if self.batch is not None:
            self.batch.phase_started(name=phase.name, now=now, targets=self.runner.targets())
        index = self.runner.phase_index
        assert index is not None  # a phase is under way
        self._post(PhaseStarted(at=now, phase=phase.name, index=index))

    def _prompt_if_needed(self) -> None:
        prompt = self.awaiting_confirmation
        if prompt is not None and prompt != self._prompted:
            self._post(PromptRaised(at=self.clock.monotonic(), prompt=prompt))
        self._prompted = prompt

    @property
    def awaiting_confirmation(self) -> str | None:
        """The prompt an executing phase waits on (None outside Execute)."""
        if self.runner is None or self.machine.state is not State.EXECUTE:
            return None
        return self.runner.awaiting_confirmation

    # --- commands ------------------------------------------------------------------------
    async def command(
        self,
        name: str,
        *,
        source: str,
        recipe: str | None = None,
        reason: str = "",
        recipe_paths: bool = False,
    ) -> State:
        """Run a PackML command; raises CommandRefused with a clear reason when not allowed.

        A start takes a recipe name from the recipes folder; a file path only with `recipe_paths`
        (the local command line), never from a remote source.
        """
        async with self._lock:
            return await self._command(
                name, source=source, recipe=recipe, reason=reason, recipe_paths=recipe_paths
            )

    async def _command(
        self, name: str, *, source: str, recipe: str | None, reason: str, recipe_paths: bool
    ) -> State:
        try:
            command = Command(name.strip().lower())
        except ValueError:
            raise CommandRefused(
                f"unknown command {name!r}; commands are {', '.join(c.value for c in Command)}"
            ) from None
        if recipe is not None and command is not Command.START:
            raise CommandRefused(f"{command} takes no recipe")
        if command in (Command.STOP, Command.ABORT):
            # Never refused while anything manual runs: it ends every manual action first.
            stopped = self._manual.stop_all()
            if stopped:
                self._manual.last_stop = f"{'; '.join(stopped)} stopped by {command}"
                log.info("manual.stopped", command=str(command), source=source, stopped=stopped)
                if not self.machine.allowed(command):
                    self._emit_console(str(command), f"{command}", source, stopped=tuple(stopped))
                    self._flush_events()
                    return self.machine.state
        else:
            self._modes.check(command, self.machine)
        if command not in (Command.STOP, Command.ABORT) and self._busy is not None:
            raise CommandRefused(f"cannot {command}: {self._busy} is in progress")
        if command is Command.START:
            await self._prepare_start(recipe, names_only=not recipe_paths)
        state = await self.machine.command(command, reason=reason or source, check=self._guard)
        self._emit_console(str(command), str(command), source, CntrlCmd=command.code)
        log.info("command.accepted", command=str(command), source=source, state=str(state))
        self._flush_events()
        return state

    async def _prepare_start(self, recipe: str | None, *, names_only: bool) -> None:
        if not self.machine.allowed(Command.START):
            raise CommandRefused(f"cannot start in {self.machine.state}: {self._to_idle()}")
        if recipe is None:
            raise CommandRefused("start needs a recipe name")
        refused = self.machine.refusal(Command.START, self._guard)
        if refused is not None:
            raise CommandRefused(refused)
        try:
            # Reading a file is I/O: keep it off the event loop.
            loaded = await asyncio.to_thread(
                load_recipe,
                recipe,
                config=self.config,
                recipes_dir=self.recipes_dir,
                names_only=names_only,
            )
            if self._recipe_adapter is not None:
                loaded = self._recipe_adapter(loaded)
        except RecipeError as exc:
            raise CommandRefused(f"recipe refused: {'; '.join(exc.problems)}") from None
        image = self.snapshot.image if self.snapshot else None
        if (
            loaded.recipe.starts_with is StartsWith.EMPTY
            and image is not None
            and image.wet(LevelPoint.LOW)
        ):
            # Its fill would end at once and its reagents go into whatever is left in there.
            raise CommandRefused(
                f"recipe {loaded.recipe.name} starts with an empty reactor but "
                f"{self.config.wiring.level_tag(LevelPoint.LOW)} is wet: drain it first"
            )
        self.recipe = loaded
        self.runner = PhaseRunner(recipe=loaded.recipe, config=self.config)
        self.batch = None

    def _to_idle(self) -> str:
        """What it takes to get from here to IDLE, where a batch may start."""
        state = self.machine.state
        if state in (State.STOPPED, State.COMPLETE):
            return "reset to IDLE first"
        if state is State.ABORTED:
            return "clear, then reset to IDLE first"
        if state in PROCESS_STATES:
            return "a batch is under way: stop or abort it, then reset"
        return "wait for it to finish, then reset to IDLE"

    def _guard(self, guard: Guard) -> str | None:
        """Judge one guard of the transition table now: None when it holds, else why not."""
        if guard is Guard.INPUTS_READABLE:
            image = self.snapshot.image if self.snapshot else None
            blockers = start_blockers(image, wiring=self.config.wiring)
            return "; ".join(blockers) if blockers else None
        if guard is Guard.NO_HOLD_OR_ABORT_TRIP:
            trips, actions = self.alarms.in_effect(), _HOLD_OR_ABORT
        else:  # NO_ABORT_CAUSE: a cause present now (the E-stop still pressed), latched or not
            trips, actions = self._trips, _ABORT
        blocking = blocking_trips(trips, actions=actions)
        if not blocking:
            return None
        return (
            f"interlocks still in effect: {', '.join(blocking)}; "
            "clear the cause, acknowledge and reset the alarms first"
        )

    async def confirm(self, *, source: str) -> str:
        """Give the operator confirmation the running phase waits for; returns its prompt."""
        async with self._lock:
            return self._confirm(source=source)

    def _confirm(self, *, source: str) -> str:
        prompt = self.awaiting_confirmation
        if prompt is None or self.runner is None:
            raise CommandRefused("nothing is waiting for a confirmation")
        phase = self.runner.phase
        self.runner.confirm()
        charge = phase.charge if phase is not None else None
        details: dict[str, Detail] = {"prompt": prompt}
        if charge is not None:
            details |= {"charge_kg": charge.kg, "material": charge.material}
        self._emit_console("confirm", f"confirmed '{prompt}'", source, **details)
        if charge is not None:
            self.interlocks.charged(charge.kg)
            for listener in self._charge_listeners:
                try:
                    listener(charge)
                except Exception:
                    log.exception("controller.charge_listener_failed")
        self._flush_events()
        return prompt

    async def acknowledge(self, alarm_id: str | None, *, source: str) -> int:
        """Acknowledge one active alarm id (every tag) or all (None); returns how many."""
        async with self._lock:
            self._refuse_unknown_alarm(alarm_id)
            count: int = self.alarms.acknowledge(alarm_id, self.clock.monotonic())
        log.info("alarm.acknowledge_requested", alarm_id=alarm_id, source=source, count=count)
        return count

    async def reset_alarms(self, alarm_id: str | None = None, *, source: str) -> int:
        """Reset latched alarms whose condition has returned; returns how many."""
        async with self._lock:
            self._refuse_unknown_alarm(alarm_id)
            count: int = self.alarms.reset(alarm_id, self.clock.monotonic())
        log.info("alarm.reset_requested", alarm_id=alarm_id, source=source, count=count)
        return count

    def _refuse_unknown_alarm(self, alarm_id: str | None) -> None:
        active = sorted({a.alarm_id for a in self.alarms.active()})
        if alarm_id is not None and alarm_id not in active:
            raise CommandRefused(
                f"no alarm {alarm_id!r} is active (active: {', '.join(active) or 'none'})"
            )

    async def raise_alarm(
        self,
        *,
        alarm_id: str,
        tag: str,
        priority: Priority,
        message: str,
        latch: bool = False,
        over: bool = False,
    ) -> None:
        """Raise an alarm from outside the cause-and-effect table (a monitor of the host, the
        journal or the outbox). `over`: its cause is already past; it stays listed until
        acknowledged (and reset, when it latches)."""
        async with self._lock:
            now = self.clock.monotonic()
            self.alarms.raise_alarm(
                alarm_id=alarm_id,
                tag=tag,
                priority=priority,
                now=now,
                latch=latch,
                message=message,
            )
            if over:
                self.alarms.clear(alarm_id, tag, now=now)

    async def clear_alarm(self, alarm_id: str, tag: str) -> None:
        """The cause of a monitor's alarm has gone (it returns to normal once acknowledged)."""
        async with self._lock:
            self.alarms.clear(alarm_id, tag, now=self.clock.monotonic())

    @property
    def reagents_ml(self) -> Mapping[str, float]:
        """Reagent totals of the current batch."""
        return self.batch.reagents_ml if self.batch else {}

    # --- manual mode (console only; DESIGN §9 field techs) --------------------------------
    # Manual outputs are computed whole each scan like the recipe's and go through the same
    # safety filter. A trip that forces a manual output off cancels that action (nothing
    # resumes by itself, as a held batch needs an unhold); an abort or a stop cancels all of
    # them. Manual mode itself stays on, so the console shows why, until `manual off`.

    @property
    def manual(self) -> bool:
        """True while manual mode is on."""
        return self._manual.on

    def manual_status(self) -> dict[str, object]:
        """Manual mode for the console: on/off, each action's progress, the last early stop."""
        return self._manual.status(now=self.clock.monotonic())

    async def set_manual(self, on: bool, *, source: str) -> None:
        """Turn manual mode on (only with no batch under way) or off (always: stops everything);
        off returns the unit to the mode it leaves for: production."""
        async with self._lock:
            if on == self._manual.on:
                return
            if on:
                refuse_during_batch(self.machine.state, what="go to manual")
                self._modes.change(UnitMode.MANUAL, state=self.machine.state)
                log.info("manual.on", source=source, state=str(self.machine.state))
                self._emit_console("manual", "manual on", source, on=True)
            else:
                stopped = self._modes.change(UnitMode.PRODUCTION, state=self.machine.state)
                log.info("manual.off", source=source, stopped=stopped)
                self._emit_console("manual", "manual off", source, on=False, stopped=tuple(stopped))
            self._flush_events()

    @property
    def unit_mode(self) -> UnitMode:
        """The PackML unit mode now."""
        return self._modes.mode

    async def set_unit_mode(self, mode: UnitMode | str, *, source: str) -> UnitMode:
        """Go to a unit mode; out of production only with no batch under way. Leaving Manual
        stops every manual action."""
        try:
            wanted = UnitMode(str(mode).strip().lower())
        except ValueError:
            raise CommandRefused(
                f"unknown unit mode {mode!r}; modes are {', '.join(m.value for m in UnitMode)}"
            ) from None
        async with self._lock:
            old = self._modes.mode
            stopped = self._modes.change(wanted, state=self.machine.state)
            if wanted is not old:
                log.info("unit_mode.changed", old=str(old), new=str(wanted), source=source)
                self._emit_console(
                    "unitmode",
                    f"unit mode {old} -> {wanted}",
                    source,
                    old=str(old),
                    new=str(wanted),
                    stopped=tuple(stopped),
                )
                self._flush_events()
            return wanted

    async def jog_pump(
        self, tag: str, ml: float, *, source: str, cylinder: bool = False
    ) -> dict[str, float | str]:
        """Dose `ml` mL on pump `tag` at its full rate (manual only); it stops by itself.
        Into the reactor it needs liquid over the low switch and runs the agitator; with
        `cylinder` it doses out of the reactor into a measuring cylinder (pump calibration)."""
        async with self._lock:
            image = self.snapshot.image if self.snapshot is not None else None
            jog = self._manual.jog(
                tag,
                ml,
                trips=self.alarms.in_effect(),
                low_level_wet=image.wet(LevelPoint.LOW) if image is not None else None,
                cylinder=cylinder,
            )
            seconds = jog.ml / jog.max_ml_min * 60.0
            log.info("manual.jog", source=source, pump=jog.tag, ml=jog.ml, s=round(seconds, 1))
            where = "" if jog.into_reactor else " into a cylinder"
            self._emit_console(
                "jog", f"jog {jog.tag} {jog.ml:g} mL{where}", source, pump=jog.tag, ml=jog.ml
            )
            self._flush_events()
            return {"pump": jog.tag, "ml": jog.ml, "ml_min": jog.max_ml_min, "seconds": seconds}

    async def manual_heater(
        self, percent: float, seconds: float, *, source: str
    ) -> dict[str, float]:
        """Heater at `percent` duty for `seconds` (manual only; 0 % stops it); still interlocked."""
        async with self._lock:
            run = self._manual.run_heater(
                percent, seconds, now=self.clock.monotonic(), trips=self.alarms.in_effect()
            )
            seconds = run.seconds if run is not None else 0.0
            log.info("manual.heater", source=source, percent=percent, s=seconds)
            text = f"heater {percent:g} % for {seconds:g} s" if run else "heater off"
            self._emit_console("heater", text, source, percent=percent, seconds=seconds)
            self._flush_events()
            return {"percent": percent, "seconds": seconds}

    @contextlib.asynccontextmanager
    async def outside_batch(self, what: str) -> AsyncIterator[None]:
        """Run `what` (a calibration) with no batch under way; PackML commands but stop and abort
        are refused until it is done.

        The lock is not held while `what` runs (a device may take seconds): scans go on.
        """
        async with self._lock:
            refuse_during_batch(self.machine.state, what=what)
            if self._busy is not None:
                raise CommandRefused(f"cannot {what}: {self._busy} is in progress")
            self._busy = what
        try:
            yield
        finally:
            self._busy = None

    def report_command(self, text: str, *, command: str, source: str, **data: Detail) -> None:
        """Report a console command done outside the machine (a calibration) as an event."""
        self._emit_console(command, text, source, **data)
        self._flush_events()

    def _emit_console(self, command: str, text: str, source: str, **details: Detail) -> None:
        self._post(
            CommandHandled(
                at=self.clock.monotonic(),
                command=command,
                source=source,
                text=f"{text} by {source}",
                details=details,
            )
        )
