"""The command model: PackML commands (with their guards), starts with their recipe, and
confirmations of what a phase waits for."""

from __future__ import annotations

import asyncio

from hal.log import get_logger
from hal.wiring import LevelPoint
from unit_controller.alarms import BATCH_INTERRUPTED
from unit_controller.batch.phase_runner import PhaseRunner
from unit_controller.controller.core import ControllerCore
from unit_controller.controller.snapshot import ABORT_ONLY, HOLD_OR_ABORT, PROCESS_STATES
from unit_controller.errors import CommandRefused, RecipeError
from unit_controller.events import Detail
from unit_controller.machine import Command, Guard, State
from unit_controller.permissives import blocking_trips, start_blockers
from unit_controller.recipes.loader import load_recipe
from unit_controller.recipes.model import StartsWith

log = get_logger(__name__)


# A prompt of a batch that ended in one of these is not waiting any more.
_BATCH_ENDED = frozenset({State.STOPPED, State.IDLE, State.COMPLETE, State.ABORTED})


class CommandModel(ControllerCore):
    """PackML commands and confirmations, checked against the table's guards and the mode."""

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
        async with self._turn():
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
                self._manual.told_stopped(f"{'; '.join(stopped)} stopped by {command}")
                log.info("manual.stopped", command=str(command), source=source, stopped=stopped)
                if not self.machine.allowed(command):
                    self._emit_console(str(command), f"{command}", source, stopped=tuple(stopped))
                    self._flush_events()
                    return self.machine.state
        else:
            self._modes.check(command, self.machine)
        if command not in (Command.STOP, Command.ABORT) and self._busy is not None:
            raise CommandRefused(f"cannot {command}: {self._busy} is in progress")
        if command is Command.START and self._probe_out is not None:
            raise CommandRefused(
                f"cannot start: the pH probe {self.board.ph.tag} is out in a buffer for a guided "
                f"calibration ({self._probe_out}); finish it (done) or stop it (Ctrl-C) first"
            )
        if command is Command.START:
            await self._prepare_start(recipe, names_only=not recipe_paths)
        elif (
            command is Command.HOLD
            and self.machine.state is State.STARTING
            and self.machine.allowed(command)
        ):
            # Before the scan that would have begun it: begun now, or it would run on from
            # Held in Execute with no phase (and could be completed with none).
            self.get_under_way(self.clock.monotonic())
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
        for check in self._start_checks:
            reason = check()
            if reason is not None:
                raise CommandRefused(f"cannot start: {reason}")
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
        self._charge.batch_starts()
        if loaded.recipe.starts_with not in (StartsWith.EMPTY, StartsWith.WATER):
            # What an earlier step left in there may make gas after an abort: blanket it.
            self._charge.holds_liquor()
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
        if guard in (Guard.INTERRUPTION_SEEN, Guard.INTERRUPTION_RESET):
            return self._interruption_blocks(guard)
        if guard is Guard.PHASE_CAPS_LEFT:
            return self._caps_spent()
        if guard is Guard.NO_HOLD_OR_ABORT_TRIP:
            trips, actions = self.alarms.in_effect(), HOLD_OR_ABORT
        else:  # NO_ABORT_CAUSE: a cause present now (the E-stop still pressed), latched or not
            trips, actions = self._trips, ABORT_ONLY
        blocking = blocking_trips(trips, actions=actions)
        if not blocking:
            return None
        return (
            f"interlocks still in effect: {', '.join(blocking)}; "
            "clear the cause, acknowledge and reset the alarms first"
        )

    def _caps_spent(self) -> str | None:
        """Why the phase cannot go on: a reagent has dosed its whole cap (None: none has)."""
        if self.runner is None:
            return None
        caps = self.runner.targets(holding=False).caps_ml
        spent = [
            f"{tag} has dosed {self._dosed_phase.get(tag, 0.0):.1f} mL, its cap of {cap:g} mL"
            for tag, cap in sorted(caps.items())
            if self._dosed_phase.get(tag, 0.0) >= cap
        ]
        if not spent:
            return None
        return (
            f"this phase has used up its reagent: {'; '.join(spent)}. Going on would hold again "
            "at once: find why it took so much, then stop or abort the batch, or complete it"
        )

    def _interruption_blocks(self, guard: Guard) -> str | None:
        interrupted = [a for a in self.alarms.active() if a.alarm_id == BATCH_INTERRUPTED]
        if guard is Guard.INTERRUPTION_SEEN:
            if any(a.acked_at is None for a in interrupted):
                return (
                    "a batch was interrupted (batch_interrupted): check the reactor and "
                    "acknowledge the alarm (ack) first"
                )
            return None
        if interrupted:
            return (
                "a batch was interrupted (batch_interrupted is latched): acknowledge and reset "
                "the alarm (ack, reset_alarms) first"
            )
        return None

    async def confirm(self, *, source: str, answers: str | None = None) -> str:
        """Give the operator confirmation the running phase waits for; returns its prompt.
        `answers`: the prompt the operator was shown, when known: another is refused."""
        async with self._turn():
            return self._confirm(source=source, answers=answers)

    def _confirm(self, *, source: str, answers: str | None = None) -> str:
        prompt = self.awaiting_confirmation
        if prompt is not None and answers is not None and answers != prompt:
            # A second confirm typed after the first, reaching a prompt not yet shown.
            raise CommandRefused(
                f"the prompt waiting now is '{prompt}', not '{answers}': confirm again once "
                "it is done"
            )
        if prompt is None or self.runner is None:
            later = self.runner.awaiting_confirmation if self.runner is not None else None
            if later is not None and self.machine.state not in _BATCH_ENDED:
                # The phase still waits for it (status says so), but only a running batch
                # takes it: a charge tipped into a held reactor would go unwatched.
                raise CommandRefused(
                    f"the unit is {self.machine.state}: '{later}' is taken once the batch runs "
                    "(EXECUTE) again"
                )
            raise CommandRefused("nothing is waiting for a confirmation")
        phase = self.runner.phase
        self.runner.confirm()
        charge = phase.charge if phase is not None else None
        details: dict[str, Detail] = {"prompt": prompt}
        if phase is not None:
            # The phase it ends: a record read by time puts it at the next phase's start.
            details["phase"] = phase.name
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
