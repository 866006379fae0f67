"""What a force does: the outputs each `Force` drives and the state it drives them to.

The one meaning of a force, read by the safety filter (which applies it), manual mode (which
refuses what a force would stop) and the tests (which check the devices hold it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType

from hal.outputs import Outputs
from unit_controller.interlocks.trip import Force, Trip


class Output(StrEnum):
    """An output of the unit, by function."""

    HEATER = "heater"  # E-101 through its SSR
    CONTACTOR = "contactor"  # K-101, in series with the SSR
    AGITATOR = "agitator"  # M-101
    FILL_PUMP = "fill_pump"  # P-101
    DOSING_PUMPS = "pumps"  # P-201…P-205
    DRAIN = "drain"  # XV-101
    PURGE = "purge"  # XV-102
    COOLING = "cooling"  # XV-103, where fitted


# Each output's safe state, for people (DESIGN §5: safe is per output, not "everything off").
SAFE_STATE: Mapping[Output, str] = MappingProxyType(
    {
        Output.HEATER: "off",
        Output.CONTACTOR: "open",
        Output.AGITATOR: "off",
        Output.FILL_PUMP: "off",
        Output.DOSING_PUMPS: "stopped",
        Output.DRAIN: "closed",
        Output.PURGE: "open while the reactor may hold acid or reactive liquor ([safe_state] "
        "purge), else closed",
        Output.COOLING: "open on temperature high-high, else closed",
    }
)

# The outputs each force drives to their safe state. A heater that may not run gets its
# contactor opened too: a welded SSR is stopped only by K-101.
FORCED: Mapping[Force, frozenset[Output]] = MappingProxyType(
    {
        Force.HEATER: frozenset({Output.HEATER, Output.CONTACTOR}),
        Force.CONTACTOR: frozenset({Output.HEATER, Output.CONTACTOR}),
        Force.AGITATOR: frozenset({Output.AGITATOR}),
        Force.INFLOWS: frozenset({Output.FILL_PUMP, Output.DOSING_PUMPS}),
        Force.DOSING: frozenset({Output.DOSING_PUMPS}),
        Force.ALL: frozenset(Output),
        Force.COOL: frozenset({Output.COOLING}),
    }
)


def forced_outputs(forces: Iterable[Force]) -> frozenset[Output]:
    """Every output the given forces drive to its safe state."""
    outputs: set[Output] = set()
    for force in forces:
        outputs |= FORCED[force]
    return frozenset(outputs)


def describe(forces: Iterable[Force]) -> str:
    """The outputs forced and to what, for people ("heater off, contactor open")."""
    forces = frozenset(forces)
    if not forces:
        return "none"
    if Force.ALL in forces:
        return "every output to its safe state" + ("; cooling open" if Force.COOL in forces else "")
    forced = forced_outputs(forces)
    return ", ".join(f"{output} {_to(output, forces)}" for output in Output if output in forced)


def forcing(trips: Iterable[Trip], output: Output) -> list[str]:
    """The trips (as 'alarm_id (tag)') that force `output` to its safe state, sorted, once each."""
    return sorted({f"{t.alarm_id} ({t.tag})" for t in trips if output in forced_outputs(t.forces)})


def violations(outputs: Outputs, forces: Iterable[Force], *, purge_open: bool) -> list[str]:
    """Each output in `outputs` that is not where `forces` drive it (`purge_open`: the purge's
    safe state is open now)."""
    forces = frozenset(forces)
    forced = forced_outputs(forces)
    held = {
        Output.HEATER: outputs.heater_on_s == 0.0,
        Output.CONTACTOR: not outputs.contactor,
        Output.AGITATOR: not outputs.agitator,
        Output.FILL_PUMP: not outputs.fill_pump,
        Output.DOSING_PUMPS: all(rate <= 0.0 for rate in outputs.pumps.values()),
        Output.DRAIN: not outputs.drain_valve,
        Output.PURGE: outputs.purge_valve == purge_open,
        Output.COOLING: outputs.cooling_valve == (Force.COOL in forces),
    }
    return [
        f"{output} not {_to(output, forces)}"
        for output in Output
        if output in forced and not held[output]
    ]


def _to(output: Output, forces: frozenset[Force]) -> str:
    if output is Output.PURGE:
        return "at its safe state"
    if output is Output.COOLING:
        return "open" if Force.COOL in forces else "closed"
    return SAFE_STATE[output]
