"""Events the controller reports: state and phase changes, alarms, prompts and commands.

Plain data handed to listeners (progress printer, journal, MQTT); listeners must not block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class EventKind(StrEnum):
    """What happened."""

    STATE = "state"
    PHASE = "phase"
    ALARM = "alarm"
    PROMPT = "prompt"
    COMMAND = "command"


@dataclass(frozen=True, slots=True)
class UnitEvent:
    """One event: its kind, when (clock seconds), a line for people, and the facts as data."""

    kind: EventKind
    at: float
    text: str
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


EventListener = Callable[[UnitEvent], None]
