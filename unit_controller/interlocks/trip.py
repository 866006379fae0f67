"""What an interlock reports: a trip (which outputs to force, PackML action, alarm priority).

Plain immutable data shared by the interlocks, the alarm manager and the safety filter; no logic
that reads devices or writes outputs lives here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Priority(StrEnum):
    """ISA-18.2 alarm priority."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for the most urgent; for sorting."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class TripAction(StrEnum):
    """What the PackML machine must do about a trip."""

    NONE = "none"
    HOLD = "hold"
    ABORT = "abort"


class Force(StrEnum):
    """An output group a trip forces to its safe state (off, but for COOL)."""

    HEATER = "heater"  # heater_on_s → 0 (and the contactor open: it may not run)
    CONTACTOR = "contactor"  # contactor open (and the heater off)
    AGITATOR = "agitator"
    INFLOWS = "inflows"  # fill pump and every dosing/feed pump
    DOSING = "dosing"  # every dosing/feed pump
    ALL = "all"  # every output off
    COOL = "cool"  # the jacket cooling valve open, where fitted: its safe state when too hot


@dataclass(frozen=True, slots=True)
class Trip:
    """An interlock whose condition holds now.

    `alarm` False means the trip only forces outputs (e.g. LSLL dry while nothing needs the
    level): it raises no alarm and asks no PackML action, but the safety filter still applies it.
    """

    alarm_id: str
    tag: str
    priority: Priority
    action: TripAction
    forces: frozenset[Force]
    latch: bool
    message: str
    alarm: bool = True
    cause: str = ""  # the row of the cause-and-effect table (interlocks/table.py)
    # The devices whose readings its cause is judged on, where not only its own tag: a weld
    # (on E-101) is judged on TT-101. () for a cause judged on no reading (a dosed volume).
    inputs: tuple[str, ...] | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The alarm this trip drives: (alarm_id, tag)."""
        return (self.alarm_id, self.tag)

    @property
    def judged_on(self) -> tuple[str, ...]:
        """The tags whose bad or lost reading leaves this cause unknown: gone or not."""
        return (self.tag,) if self.inputs is None else self.inputs


def _no_ml() -> Mapping[str, float]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class InterlockContext:
    """What the recipe and controllers want this scan; built by the scan loop for `evaluate`."""

    executing: bool = False
    temperature_setpoint_c: float | None = None
    heat_wanted: bool = False
    agitator_wanted: bool = False
    ph_setpoint: float | None = None
    ph_pump: str | None = None
    ph_raises: bool = True
    dosed_this_phase_ml: Mapping[str, float] = field(default_factory=_no_ml)
    cap_ml: Mapping[str, float] = field(default_factory=_no_ml)
    dosing: bool = False
    # a phase may widen the "pH not responding" volume (e.g. neutralising 2 M acid); None = limit
    ph_not_responding_ml: float | None = None
    ph_tolerance: float = 0.05
    # a counter-reagent brings an overshoot back; without one, it is an alarm
    ph_counter: bool = False
    # what the recipe does about an overshoot it cannot undo: hold the batch, or go on
    ph_overshoot_holds: bool = True
    # the recipe wants reagent into the reactor (its permissive then alarms)
    reactor_dose_wanted: bool = False
    # manual mode has jogs running: it applies the dosing permissive per jog itself
    manual_jogs: bool = False
    # the running phase's temperature band (°C) while it holds a setpoint, else None
    temperature_tolerance_c: float | None = None
    # the running phase: each judges its own overshoot afresh
    phase: str | None = None


def strongest_action(trips: Iterable[Trip]) -> TripAction:
    """Abort beats Hold beats None, over the trips that alarm."""
    actions = {t.action for t in trips if t.alarm}
    if TripAction.ABORT in actions:
        return TripAction.ABORT
    if TripAction.HOLD in actions:
        return TripAction.HOLD
    return TripAction.NONE
