"""The unit mode (PackML: Production, Maintenance, Manual) and what each mode lets happen.

Manual is the console's manual work (`ManualMode`); Maintenance keeps the unit out of
production while a tech calibrates or repairs it. Decides and refuses; changes no output.
"""

from __future__ import annotations

from unit_controller.errors import CommandRefused
from unit_controller.machine import MODE_STATES, Command, PackMLMachine, State, UnitMode
from unit_controller.manual import MANUAL_IS_ON, ManualMode, refuse_during_batch


class UnitModes:
    """Which mode the unit is in; the machine's commands are checked against it."""

    def __init__(self, manual: ManualMode) -> None:
        self._manual = manual
        self._maintenance = False

    @property
    def mode(self) -> UnitMode:
        """The mode now."""
        if self._manual.on:
            return UnitMode.MANUAL
        return UnitMode.MAINTENANCE if self._maintenance else UnitMode.PRODUCTION

    def change(self, mode: UnitMode, *, state: State) -> list[str]:
        """Go to `mode` (leaving production only at rest); returns the manual actions stopped."""
        if mode is self.mode:
            return []
        if state not in MODE_STATES[mode]:
            refuse_during_batch(state, what=f"go to {mode} mode")
        stopped = self._manual.turn_off() if self._manual.on else []
        if mode is UnitMode.MANUAL:
            self._manual.on = True
            self._manual.last_stop = None
        self._maintenance = mode is UnitMode.MAINTENANCE
        return stopped

    def check(self, command: Command, machine: PackMLMachine) -> None:
        """Raise CommandRefused when the mode forbids `command` (stop and abort never are)."""
        mode = self.mode
        if command in (Command.STOP, Command.ABORT):
            return
        if mode is UnitMode.MANUAL:
            raise CommandRefused(MANUAL_IS_ON)
        if machine.allowed(command) and not machine.allowed_in(mode, command):
            raise CommandRefused(
                f"cannot {command} in {mode} mode: the unit is out of production "
                "(unitmode production first)"
            )
