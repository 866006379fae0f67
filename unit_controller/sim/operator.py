"""The simulated operator: answers prompts, resumes a batch once a lost device is back or a
phase timed out, and waits for a person's own hold. Acts only through the controller's requests.
"""

from __future__ import annotations

from hal.clock import Clock
from unit_controller.controller import UnitController
from unit_controller.errors import CommandRefused
from unit_controller.events import CommandHandled, PromptRaised, StateChanged, UnitEvent
from unit_controller.interlocks import TripAction
from unit_controller.machine import Command, State
from unit_controller.sim.progress import ProgressPrinter

# An operator in the simulator answers a prompt after this long (simulated seconds).
AUTO_CONFIRM_AFTER_S = 30.0
# After a device comes back, the simulated operator tries to resume this often, this long.
RESUME_EVERY_S = 10.0
RESUME_FOR_S = 180.0
_HOLD_STATES = frozenset({State.HOLDING, State.HELD, State.UNHOLDING})


class SimulatedOperator:
    """What a person at the unit would do during a simulated batch."""

    def __init__(
        self,
        *,
        controller: UnitController,
        clock: Clock,
        progress: ProgressPrinter,
        resume_timeouts: int,
    ) -> None:
        self.controller = controller
        self._clock = clock
        self._progress = progress
        self._confirm_at: float | None = None
        self.device_back_at: float | None = None
        self._resume_at = 0.0  # the next try at resuming
        self._person_hold = False
        self._timeouts_left = resume_timeouts

    def on_event(self, event: UnitEvent) -> None:
        """Note a person's hold and a prompt to answer."""
        if isinstance(event, CommandHandled) and event.command == Command.HOLD:
            # A person held the batch (over MQTT): the run waits for their unhold.
            self._person_hold = event.source != "sim"
        elif isinstance(event, StateChanged) and event.new not in _HOLD_STATES:
            self._person_hold = False
        if isinstance(event, PromptRaised):
            self._confirm_at = event.at + AUTO_CONFIRM_AFTER_S

    def waits(self, state: State) -> bool | None:
        """Whether a HELD batch is waiting for someone (True), over (False), or None when the
        operator has no say in it."""
        if state is not State.HELD:
            return None
        if self._person_hold:
            return True
        if self._timeouts_left > 0 and self._held_by_timeout():
            return True
        if self.device_back_at is not None:
            # A device is away for a while: wait for it, then resume.
            return self._clock.monotonic() <= self.device_back_at + RESUME_FOR_S
        return None

    async def act(self, now: float) -> None:
        """Before a scan: answer a due prompt, resume what may be resumed."""
        controller = self.controller
        if self._confirm_at is not None and now >= self._confirm_at:
            self._confirm_at = None
            if controller.awaiting_confirmation:
                prompt = await controller.confirm(source="sim")
                self._progress.note(now, f"auto-confirmed by the simulator: {prompt}")
        await self._resume_if_device_back(now)
        await self._resume_after_timeout(now)

    async def _resume_if_device_back(self, now: float) -> None:
        back = self.device_back_at
        controller = self.controller
        if (
            back is None
            or now < max(back, self._resume_at)
            or controller.machine.state is not State.HELD
        ):
            return
        self._resume_at = now + RESUME_EVERY_S
        await controller.acknowledge(None, source="sim")
        try:
            # Refused while a latch's own input cannot be read: the operator waits for it.
            await controller.reset_alarms(None, source="sim")
            await controller.command("unhold", source="sim")
        except CommandRefused as exc:
            self._progress.note(now, f"operator waits: {exc}")
            return
        self._progress.note(
            now, "the device is back: the simulated operator acknowledged, reset and unheld"
        )
        self.device_back_at = None

    def _held_by_timeout(self) -> bool:
        """Held with a phase timeout the only cause (any interlock ends the run as before)."""
        causes = {a.alarm_id for a in self.controller.alarms.active()}
        holding = [
            t
            for t in self.controller.alarms.in_effect()
            if t.action in (TripAction.HOLD, TripAction.ABORT)
        ]
        return "phase_timeout" in causes and not holding

    async def _resume_after_timeout(self, now: float) -> None:
        """A phase that timed out gets another timeout after a look."""
        controller = self.controller
        if (
            self._timeouts_left <= 0
            or now < self._resume_at
            or controller.machine.state is not State.HELD
            or not self._held_by_timeout()
        ):
            return
        self._resume_at = now + RESUME_EVERY_S
        await controller.acknowledge(None, source="sim")
        try:
            await controller.command("unhold", source="sim")
        except CommandRefused as exc:
            self._progress.note(now, f"operator waits: {exc}")
            return
        self._timeouts_left -= 1
        self._progress.note(now, "the phase timed out: the simulated operator unheld it once more")
