"""Events the controller reports: state and phase changes, alarm transitions, prompts, commands.

Typed, immutable data handed to listeners (progress printer, journal, MQTT, the daemon, the
simulated operator); logic reads the fields, and `data` is only for writing an event out
(journal rows, MQTT and socket payloads). Listeners must not block.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar

from unit_controller.machine import State

JsonScalar = str | int | float | bool | None
# A command's details: numbers, names, and the lines of what it stopped.
Detail = JsonScalar | tuple[str, ...]

# The id of the remote command being carried out in this task: the events it causes carry it,
# so a fleet can match them to the command's cmd_result.
REMOTE_COMMAND_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "remote_command_id", default=None
)


class EventKind(StrEnum):
    """What happened."""

    STATE = "state"
    PHASE = "phase"
    ALARM = "alarm"
    PROMPT = "prompt"
    COMMAND = "command"


def _no_details() -> Mapping[str, Detail]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged:
    """The PackML machine moved from `old` to `new` because of `cause`."""

    kind: ClassVar[EventKind] = EventKind.STATE
    at: float
    old: State
    new: State
    cause: str

    @property
    def text(self) -> str:
        """A line for people."""
        return f"{self.old} -> {self.new} ({self.cause})"

    @property
    def data(self) -> dict[str, JsonScalar]:
        """The facts, for writing out."""
        return {"old": self.old.value, "new": self.new.value, "cause": self.cause}


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseStarted:
    """The recipe entered phase `phase` (its `index` in the recipe)."""

    kind: ClassVar[EventKind] = EventKind.PHASE
    at: float
    phase: str
    index: int

    @property
    def text(self) -> str:
        """A line for people."""
        return f"phase {self.phase}"

    @property
    def data(self) -> dict[str, JsonScalar]:
        """The facts, for writing out."""
        # `index` counts from 0 (as the journal has always kept it); `phase_no` from 1, as
        # telemetry's and the console's do.
        return {"phase": self.phase, "index": self.index, "phase_no": self.index + 1}


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmTransition:
    """An alarm was raised, returned, acknowledged or reset (ISA-18.2)."""

    kind: ClassVar[EventKind] = EventKind.ALARM
    at: float
    alarm_id: str
    tag: str
    transition: str  # raised, returned, acknowledged, reset
    priority: str
    state: str  # the alarm's state after the transition
    first_out: bool
    message: str

    @property
    def text(self) -> str:
        """A line for people."""
        return f"{self.alarm_id} ({self.tag}) {self.transition}: {self.message}"

    @property
    def data(self) -> dict[str, JsonScalar]:
        """The facts, for writing out."""
        return {
            "alarm_id": self.alarm_id,
            "tag": self.tag,
            "transition": self.transition,
            "priority": self.priority,
            "state": self.state,
            "first_out": self.first_out,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptRaised:
    """The batch waits for a person to confirm `prompt` (e.g. "Black mass charged")."""

    kind: ClassVar[EventKind] = EventKind.PROMPT
    at: float
    prompt: str

    @property
    def text(self) -> str:
        """A line for people."""
        return f"waiting for confirmation: {self.prompt}"

    @property
    def data(self) -> dict[str, JsonScalar]:
        """The facts, for writing out."""
        return {"prompt": self.prompt}


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandHandled:
    """A command from `source` was carried out (`text` says what, `details` the figures)."""

    kind: ClassVar[EventKind] = EventKind.COMMAND
    at: float
    command: str
    source: str
    text: str
    ok: bool = True
    details: Mapping[str, Detail] = field(default_factory=_no_details)

    @property
    def data(self) -> dict[str, Detail]:
        """The facts, for writing out (the details never overwrite who and what)."""
        head: dict[str, Detail] = {"command": self.command, "source": self.source, "ok": self.ok}
        return {**self.details, **head}


UnitEvent = StateChanged | PhaseStarted | AlarmTransition | PromptRaised | CommandHandled
EventListener = Callable[[UnitEvent], None]
