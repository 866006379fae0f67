"""Remote (MQTT) commands, the doing: carry out on the controller what commands.py passed.

Answers every message with exactly one CommandResult: never raises to the MQTT loop (a bug
becomes ok=False), and never acts on a message the gate refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from hal.log import get_logger
from unit_controller.authority import refuse_remote
from unit_controller.controller import UnitController
from unit_controller.errors import CommandRefused
from unit_controller.events import REMOTE_COMMAND_ID
from unit_controller.machine import UnitMode
from unit_controller.mqtt.commands import (
    PACKML_COMMANDS,
    AlarmArgs,
    CommandGate,
    CommandResult,
    RemoteCommand,
    StartArgs,
    UnitModeArgs,
    now_ms,
    shown_name,
)

log = get_logger(__name__)


class CommandDispatcher:
    """Carries out validated remote commands on the controller; never raises."""

    def __init__(
        self,
        *,
        controller: UnitController,
        on_rebirth: Callable[[], None],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._controller = controller
        self._on_rebirth = on_rebirth
        self._wall = wall
        # Why every command is refused now (the unit is stopping: no scan will carry one out).
        self.refusing: str | None = None

    @property
    def state(self) -> str:
        """The unit's PackML state name now."""
        return str(self._controller.machine.state)

    def failed(self, *, name: str, command_id: str | None, error: str) -> CommandResult:
        """A refusal stamped with this dispatcher's clock and the unit's state."""
        return CommandResult(
            id=command_id,
            ok=False,
            error=error,
            ts=now_ms(self._wall),
            command=shown_name(name),
            state=self.state,
        )

    def _failed(self, command: RemoteCommand, error: str) -> CommandResult:
        refused = self.failed(name=command.name, command_id=command.id, error=error)
        return replace(refused, by=command.by, args=command.args.model_dump())

    async def execute(self, command: RemoteCommand) -> CommandResult:
        """Carry out `command`; a refusal or failure becomes ok=False with the reason."""
        if self.refusing is not None:
            log.warning("command.refused", name=command.name, id=command.id, error=self.refusing)
            return self._failed(command, self.refusing)
        token = REMOTE_COMMAND_ID.set(command.id)
        try:
            detail = await self._run(command)
        except CommandRefused as exc:
            log.warning("command.refused", name=command.name, id=command.id, error=str(exc))
            return self._failed(command, str(exc))
        except Exception as exc:
            log.exception("command.failed", name=command.name, id=command.id)
            return self._failed(command, f"internal error: {exc!r}")
        finally:
            REMOTE_COMMAND_ID.reset(token)
        state = self.state
        log.info(
            "command.done", name=command.name, id=command.id, by=command.by, state=state, **detail
        )
        count, held = detail.get("count"), detail.get("held")
        return CommandResult(
            id=command.id,
            ok=True,
            error=None,
            ts=now_ms(self._wall),
            command=command.name,
            state=state,
            count=count if isinstance(count, int) else None,
            held=tuple(str(h) for h in held) if isinstance(held, list) else (),
            by=command.by,
            args=command.args.model_dump(),
        )

    async def _run(self, command: RemoteCommand) -> dict[str, object]:
        """Carry out `command`; returns details for the log."""
        controller = self._controller
        source = f"mqtt:{command.by}"
        name, args = command.name, command.args
        if name != "rebirth":  # asks for the unit's description: no operating command
            refuse_remote(controller.authority)
        if name in PACKML_COMMANDS:
            recipe = args.recipe if isinstance(args, StartArgs) else None
            await controller.command(name, source=source, recipe=recipe)
            return {"recipe": recipe} if recipe is not None else {}
        if name == "rebirth":
            self._on_rebirth()
            return {}
        if isinstance(args, UnitModeArgs):
            # Manual is someone at the unit with the console: remote may neither enter nor end it.
            if args.mode == UnitMode.MANUAL.value:
                raise CommandRefused("manual mode needs someone at the unit: set it at the console")
            if controller.unit_mode is UnitMode.MANUAL:
                raise CommandRefused(
                    "the unit is in manual mode at the console: only the console can leave it"
                )
            mode = await controller.set_unit_mode(args.mode, source=source)
            return {"unit_mode": mode.value}
        assert isinstance(args, AlarmArgs)
        if name == "ack":
            return {"count": await controller.acknowledge(args.alarm_id, source=source)}
        if name == "reset_alarms":
            count = await controller.reset_alarms(args.alarm_id, source=source)
            return {"count": count, "held": controller.held_latched(args.alarm_id)}
        raise AssertionError(f"no dispatch for remote command {name!r}")


async def handle_command(
    *,
    gate: CommandGate,
    dispatcher: CommandDispatcher,
    name: str,
    payload: bytes,
    retained: bool,
) -> CommandResult:
    """Check then execute one command message; never raises (a bug becomes ok=False)."""
    try:
        checked = await gate.check(name, payload, retained=retained)
        if isinstance(checked, RemoteCommand):
            return await dispatcher.execute(checked)
        return replace(checked, state=dispatcher.state)
    except Exception as exc:
        log.exception("command.failed", name=shown_name(name))
        error = f"internal error: {exc!r}"
    try:
        return dispatcher.failed(name=name, command_id=None, error=error)
    except Exception:
        # Even the unit's state could not be read: still answer, with what is known.
        log.exception("command.failed", name=shown_name(name))
        return CommandResult(
            id=None, ok=False, error=error, ts=int(time.time() * 1000), command=shown_name(name)
        )
