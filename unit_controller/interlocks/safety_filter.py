"""The safety filter: the one place where desired outputs are forced safe (DESIGN §2, step 5).

Pure: takes the desired outputs and the trips in effect, returns new outputs; it only ever turns
things off, with two exceptions whose safe state is on: the jacket cooling valve when too hot,
and the N2 purge while the reactor may hold acid or reactive liquor (DESIGN §5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from hal.outputs import Outputs
from unit_controller.interlocks.effects import Output, forced_outputs
from unit_controller.interlocks.table import CYLINDER_EXEMPT
from unit_controller.interlocks.trip import Force, Trip

_EVERY_OUTPUT = frozenset(Output)


class SafetyFilter:
    """Forces outputs off according to trips and the machine state."""

    def apply(
        self,
        desired: Outputs,
        *,
        trips: Iterable[Trip],
        allow_process_outputs: bool,
        purge_open: bool = False,
        cylinder_pumps: frozenset[str] = frozenset(),
    ) -> Outputs:
        """`desired` with every forced output at its safe state; all of them when process
        outputs are not allowed.

        Pass the alarm manager's `in_effect()` (current trips plus latched ones not yet reset).
        The contactor stays closed only while the heater may run. `purge_open`: the purge's safe
        state is open now (see `ReactiveCharge`). `cylinder_pumps`: manual jogs into a measuring
        cylinder, which the rows marked `cylinder_exempt` (the pH's) do not stop.
        """
        forces: set[Force] = set()
        strict: set[Force] = set()  # forced by the rows a cylinder jog is not exempt from
        for trip in trips:
            forces |= trip.forces
            if trip.cause not in CYLINDER_EXEMPT:
                strict |= trip.forces
        if not forces and allow_process_outputs:
            return desired  # nothing forced: the usual scan of a batch
        cool = Force.COOL in forces
        forced = forced_outputs(forces)
        if not allow_process_outputs or forced == _EVERY_OUTPUT:
            return Outputs(cooling_valve=cool, purge_valve=purge_open)
        # each output at the state effects.py gives it; the contactor stays closed only while
        # the heater may run (a welded SSR is stopped only by K-101)
        out = desired
        return Outputs(
            heater_on_s=0.0 if Output.HEATER in forced else out.heater_on_s,
            contactor=False if Output.CONTACTOR in forced else out.contactor,
            agitator=False if Output.AGITATOR in forced else out.agitator,
            fill_pump=False if Output.FILL_PUMP in forced else out.fill_pump,
            drain_valve=False if Output.DRAIN in forced else out.drain_valve,
            purge_valve=purge_open if Output.PURGE in forced else out.purge_valve,
            cooling_valve=cool if Output.COOLING in forced else out.cooling_valve,
            # keep each commanded tag with rate 0 so the HAL explicitly stops it
            pumps=_pumps(out.pumps, cylinder_pumps, strict)
            if Output.DOSING_PUMPS in forced
            else out.pumps,
        )


def _pumps(
    pumps: Mapping[str, float], cylinder_pumps: frozenset[str], strict: set[Force]
) -> Mapping[str, float]:
    if not cylinder_pumps or Output.DOSING_PUMPS in forced_outputs(strict):
        return MappingProxyType(dict.fromkeys(pumps, 0.0))
    # Only pH rows force the pumps: a jog into a cylinder doses on, the rest stop.
    return MappingProxyType(
        {tag: rate if tag in cylinder_pumps else 0.0 for tag, rate in pumps.items()}
    )
