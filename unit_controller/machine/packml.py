"""The unit's PackML state machine (ISA-TR88.00.02): states, commands and the one transition table.

It only changes state and reports the change; it must never do slow work, touch an output or block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from transitions import MachineError
from transitions.extensions.asyncio import AsyncMachine

from hal.log import get_logger
from unit_controller.errors import CommandRefused

_log = get_logger(__name__)


class State(StrEnum):
    """The 17 PackML states; the value is the upper-case name."""

    STOPPED = "STOPPED"
    RESETTING = "RESETTING"
    IDLE = "IDLE"
    STARTING = "STARTING"
    EXECUTE = "EXECUTE"
    COMPLETING = "COMPLETING"
    COMPLETE = "COMPLETE"
    HOLDING = "HOLDING"
    HELD = "HELD"
    UNHOLDING = "UNHOLDING"
    SUSPENDING = "SUSPENDING"
    SUSPENDED = "SUSPENDED"
    UNSUSPENDING = "UNSUSPENDING"
    STOPPING = "STOPPING"
    ABORTING = "ABORTING"
    ABORTED = "ABORTED"
    CLEARING = "CLEARING"


class Command(StrEnum):
    """The ten PackML commands a person or an interlock may give; values are lower-case.

    `complete` is TR88.00.02-2022's: the batch is declared done before its recipe ends.
    """

    RESET = "reset"
    START = "start"
    STOP = "stop"
    HOLD = "hold"
    UNHOLD = "unhold"
    SUSPEND = "suspend"
    UNSUSPEND = "unsuspend"
    ABORT = "abort"
    CLEAR = "clear"
    COMPLETE = "complete"

    @property
    def code(self) -> int:
        """The PackTags command number (CntrlCmd: Reset 1 … Clear 9, Complete 10)."""
        return _COMMAND_CODE[self]


_COMMAND_CODE: Final[Mapping[Command, int]] = MappingProxyType(
    {
        Command.RESET: 1,
        Command.START: 2,
        Command.STOP: 3,
        Command.HOLD: 4,
        Command.UNHOLD: 5,
        Command.SUSPEND: 6,
        Command.UNSUSPEND: 7,
        Command.ABORT: 8,
        Command.CLEAR: 9,
        Command.COMPLETE: 10,
    }
)

# Internal triggers: not commands, fired by the scan loop when work is done.
SC: Final = "state_complete"  # an acting ("-ing") state's work is done
FINISH: Final = "finish"  # the recipe's last phase is done


def _all_but(*excluded: State) -> list[State]:
    return [s for s in State if s not in excluded]


class Guard(StrEnum):
    """A condition a command needs besides the state; the controller judges it each time."""

    NO_HOLD_OR_ABORT_TRIP = "no interlock in effect asks for a hold or an abort"
    NO_ABORT_CAUSE = "no abort cause is present now"
    INPUTS_READABLE = "every input is readable and the E-stop released"
    # A batch cut short by a crash or power loss (the `batch_interrupted` alarm): someone checks
    # the reactor and acknowledges before the abort is cleared, and resets the alarm before a
    # new batch may be got ready.
    INTERRUPTION_SEEN = "no interrupted batch's alarm is unacknowledged"
    INTERRUPTION_RESET = "no interrupted batch's alarm is still latched"
    # Resuming a phase that has dosed a reagent's whole cap would only trip reagent_cap again.
    PHASE_CAPS_LEFT = "the phase has reagent left under each of its caps"


S, G = State, Guard
_RESUME_GUARDS: Final = (G.NO_HOLD_OR_ABORT_TRIP, G.PHASE_CAPS_LEFT)
# fmt: off
# [trigger, source(s), dest, guards] -- the whole PackML model; nothing else changes state.
# Stop and abort have no guard: they are never refused where the state allows them.
TRANSITIONS: Final[Sequence[tuple[str, State | list[State], State, tuple[Guard, ...]]]] = (
    # Resetting with an abort cause present (the E-stop pressed) would ready a unit that must
    # not run: it would sit in Idle with the cause still there.
    (Command.RESET,     [S.STOPPED, S.COMPLETE],  S.RESETTING,
                                                  (G.NO_ABORT_CAUSE, G.INTERRUPTION_RESET)),
    (SC,                S.RESETTING,              S.IDLE, ()),
    (Command.START,     S.IDLE,                   S.STARTING,
                                                  (G.NO_HOLD_OR_ABORT_TRIP, G.INPUTS_READABLE)),
    (SC,                S.STARTING,               S.EXECUTE, ()),
    (FINISH,            S.EXECUTE,                S.COMPLETING, ()),
    # TR88.00.02-2022: a person may declare the batch done from Execute, Suspended or Held.
    (Command.COMPLETE,  [S.EXECUTE, S.SUSPENDED, S.HELD], S.COMPLETING, ()),
    (SC,                S.COMPLETING,             S.COMPLETE, ()),
    # Hold (internal cause) from Starting and Unholding too, as the OPC 30050 model allows, and
    # from the suspend family as PackML v3 does: a trip while getting under way, or while
    # waiting on an external cause, must still reach the safe Held state.
    (Command.HOLD,      [S.STARTING, S.EXECUTE, S.UNHOLDING, S.SUSPENDING, S.SUSPENDED,
                         S.UNSUSPENDING],         S.HOLDING, ()),
    (SC,                S.HOLDING,                S.HELD, ()),
    (Command.UNHOLD,    S.HELD,                   S.UNHOLDING, _RESUME_GUARDS),
    (SC,                S.UNHOLDING,              S.EXECUTE, ()),
    (Command.SUSPEND,   S.EXECUTE,                S.SUSPENDING, ()),
    (SC,                S.SUSPENDING,             S.SUSPENDED, ()),
    (Command.UNSUSPEND, S.SUSPENDED,              S.UNSUSPENDING, _RESUME_GUARDS),
    (SC,                S.UNSUSPENDING,           S.EXECUTE, ()),
    (Command.STOP,      _all_but(S.STOPPED, S.STOPPING, S.CLEARING, S.ABORTING, S.ABORTED),
                                                  S.STOPPING, ()),
    (SC,                S.STOPPING,               S.STOPPED, ()),
    (Command.ABORT,     _all_but(S.ABORTING, S.ABORTED), S.ABORTING, ()),
    (SC,                S.ABORTING,               S.ABORTED, ()),
    # Clearing an abort whose cause is still there (E-stop pressed) would only re-abort.
    (Command.CLEAR,     S.ABORTED,                S.CLEARING,
                                                  (G.NO_ABORT_CAUSE, G.INTERRUPTION_SEEN)),
    (SC,                S.CLEARING,               S.STOPPED, ()),
)
# fmt: on
del S, G


class UnitMode(StrEnum):
    """PackML unit modes (TR88.00.02): Production runs batches; Maintenance keeps the unit out
    of production for calibration and repair; Manual is the console's jogs and heater runs."""

    PRODUCTION = "production"
    MAINTENANCE = "maintenance"
    MANUAL = "manual"

    @property
    def number(self) -> int:
        """The PackTags UnitModeCurrent number (TR88.00.02: 1, 2, 3)."""
        return _MODE_NUMBER[self]


_MODE_NUMBER: Final[Mapping[UnitMode, int]] = MappingProxyType(
    {UnitMode.PRODUCTION: 1, UnitMode.MAINTENANCE: 2, UnitMode.MANUAL: 3}
)


# The states each unit mode allows. Out of production the machine only rests or goes to rest:
# no batch starts, and a mode change away from production waits until the unit is at rest.
_AT_REST: Final = frozenset(
    {
        State.STOPPED,
        State.RESETTING,
        State.IDLE,
        State.COMPLETE,
        State.STOPPING,
        State.ABORTING,
        State.ABORTED,
        State.CLEARING,
    }
)
MODE_STATES: Final[Mapping[UnitMode, frozenset[State]]] = MappingProxyType(
    {
        UnitMode.PRODUCTION: frozenset(State),
        UnitMode.MAINTENANCE: _AT_REST,
        UnitMode.MANUAL: _AT_REST,
    }
)


# PackTags StateCurrent numbers, so fleet tools that speak PackML understand the state.
STATE_NUMBER: Final[Mapping[State, int]] = MappingProxyType(
    {
        State.CLEARING: 1,
        State.STOPPED: 2,
        State.STARTING: 3,
        State.IDLE: 4,
        State.SUSPENDED: 5,
        State.EXECUTE: 6,
        State.STOPPING: 7,
        State.ABORTING: 8,
        State.ABORTED: 9,
        State.HOLDING: 10,
        State.HELD: 11,
        State.UNHOLDING: 12,
        State.SUSPENDING: 13,
        State.UNSUSPENDING: 14,
        State.RESETTING: 15,
        State.COMPLETING: 16,
        State.COMPLETE: 17,
    }
)


def _sources(source: State | list[State]) -> list[State]:
    return [source] if isinstance(source, State) else list(source)


def _routes() -> Mapping[str, Mapping[State, State]]:
    routes: dict[str, dict[State, State]] = {}
    for trigger, source, dest, _ in TRANSITIONS:
        for src in _sources(source):
            routes.setdefault(str(trigger), {})[src] = dest
    return MappingProxyType({t: MappingProxyType(r) for t, r in routes.items()})


def _guards() -> Mapping[str, tuple[Guard, ...]]:
    guards: dict[str, tuple[Guard, ...]] = {}
    for trigger, _, _, needs in TRANSITIONS:
        guards[str(trigger)] = guards.get(str(trigger), ()) + needs
    return MappingProxyType(guards)


# trigger -> {source: dest}, derived once from TRANSITIONS so that `allowed` is a pure lookup.
_ROUTES: Final = _routes()
_GUARDS: Final = _guards()

# Judges one guard now: None when it holds, else what stands in the way (for the refusal).
GuardCheck = Callable[[Guard], str | None]

ACTING_STATES: Final[frozenset[State]] = frozenset(_ROUTES[SC])
"""The "-ing" states, each ended by State Complete."""

OnChange = Callable[[State, State, str], None]


class _Model:
    """Carrier for the attributes `transitions` adds (state, trigger, is_*), kept off the API."""

    state: Any
    trigger: Any


class PackMLMachine:
    """The unit's PackML state machine; commands are checked against TRANSITIONS before firing."""

    def __init__(
        self, *, initial: State = State.STOPPED, on_change: OnChange | None = None
    ) -> None:
        """Start in `initial`; `on_change(old, new, cause)` is called after every change."""
        self._on_change = on_change
        self._model = _Model()
        # Only one trigger at a time: a check-then-fire from another task must not interleave
        # with a transition in flight (transitions' queue would otherwise defer it silently).
        self._lock = asyncio.Lock()
        # No transitions callbacks on purpose: with none, a trigger never yields to the loop,
        # so it cannot be cancelled half-way; reporting is done here after the trigger returns.
        self._machine = AsyncMachine(
            model=self._model,
            states=list(State),
            transitions=[[str(t), _sources(src), dest] for t, src, dest, _ in TRANSITIONS],
            initial=initial,
            auto_transitions=False,
            queued=True,
            ignore_invalid_triggers=False,
        )
        # The state as the enum, kept beside the model's: every scan asks several times, and
        # only `_fire` changes it.
        self._state = State(self._model.state)

    @property
    def state(self) -> State:
        """The current PackML state."""
        return self._state

    @property
    def number(self) -> int:
        """The current state's PackTags number (Stopped=2, Execute=6, ...)."""
        return STATE_NUMBER[self._state]

    @property
    def is_acting(self) -> bool:
        """True in an acting ("-ing") state, which ends by State Complete."""
        return self._state in ACTING_STATES

    def allowed(self, command: Command) -> bool:
        """Whether `command` is accepted in the current state (pure lookup, no side effects)."""
        return self.state in _ROUTES[command]

    def allowed_in(self, mode: UnitMode, command: Command) -> bool:
        """Whether `command` is accepted now and leads to a state `mode` allows."""
        dest = _ROUTES[command].get(self.state)
        return dest is not None and dest in MODE_STATES[mode]

    def allowed_commands(self) -> list[Command]:
        """The commands accepted in the current state, in Command order."""
        return [c for c in Command if self.allowed(c)]

    def guards(self, command: Command) -> tuple[Guard, ...]:
        """The guards TRANSITIONS gives `command`."""
        return _GUARDS.get(str(command), ())

    def refusal(self, command: Command, check: GuardCheck | None) -> str | None:
        """Why `command` would be refused now (its state, then its guards), or None."""
        state = self.state
        if state not in _ROUTES[command]:
            allowed_from = ", ".join(s for s in State if s in _ROUTES[command])
            return f"cannot {command} in {state}: {command} is allowed from {allowed_from}"
        if check is None:
            return None
        for guard in self.guards(command):
            problem = check(guard)
            if problem is not None:
                return f"cannot {command}: {problem}"
        return None

    async def command(
        self, command: Command | str, *, reason: str = "", check: GuardCheck | None = None
    ) -> State:
        """Fire `command` and return the new state; raise CommandRefused if its state or one of
        its guards (judged by `check`) does not allow it now."""
        cmd = _parse(command)
        async with self._lock:
            old = self.state
            refused = self.refusal(cmd, check)
            if refused is not None:
                raise CommandRefused(refused)
            return await self._fire(cmd, old=old, reason=reason)

    async def state_complete(self, *, reason: str = "") -> State:
        """End the acting state (SC); outside an acting state do nothing. Never raises."""
        async with self._lock:
            old = self.state
            if old not in ACTING_STATES:
                return old
            return await self._fire(SC, old=old, reason=reason)

    async def finish(self, *, reason: str = "") -> State:
        """The last phase is done: Execute -> Completing; elsewhere do nothing."""
        async with self._lock:
            old = self.state
            if old not in _ROUTES[FINISH]:
                return old
            return await self._fire(FINISH, old=old, reason=reason)

    async def _fire(self, trigger: str, *, old: State, reason: str) -> State:
        try:
            await self._model.trigger(trigger)
        except MachineError as exc:  # only if _ROUTES and the machine disagree: a bug here
            raise CommandRefused(f"cannot {trigger} in {old}: {exc.value}") from exc
        new = self._state = State(self._model.state)
        if new != old:
            self._report(old, new, f"{trigger}: {reason}" if reason else trigger)
        return new

    def _report(self, old: State, new: State, cause: str) -> None:
        _log.info("machine.state_changed", old=str(old), new=str(new), cause=cause)
        if self._on_change is None:
            return
        try:
            self._on_change(old, new, cause)
        except Exception:
            # The change has happened; a failing observer must not make it look refused.
            _log.exception("machine.on_change_failed", old=str(old), new=str(new), cause=cause)


def _parse(command: Command | str) -> Command:
    if isinstance(command, Command):
        return command
    try:
        return Command(command.strip().lower())
    except ValueError:
        valid = ", ".join(Command)
        raise CommandRefused(f"unknown command {command!r}: valid commands are {valid}") from None
