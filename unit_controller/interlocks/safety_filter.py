"""The safety filter: the one place where desired outputs are forced safe (DESIGN §2, step 5).

Pure: takes the desired outputs and the trips in effect, returns new outputs; it only ever turns
things off, with two exceptions whose safe state is on: the jacket cooling valve when too hot,
and the N2 purge while the reactor may hold acid or reactive liquor (DESIGN §5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from hal.outputs import Outputs
from unit_controller.interlocks.effects import Output, forced_outputs
from unit_controller.interlocks.trip import Force, Trip


class SafetyFilter:
    """Forces outputs off according to trips and the machine state."""

    def apply(
        self,
        desired: Outputs,
        *,
        trips: Iterable[Trip],
        allow_process_outputs: bool,
        purge_open: bool = False,
    ) -> Outputs:
        """`desired` with every forced output at its safe state; all of them when process
        outputs are not allowed.

        Pass the alarm manager's `in_effect()` (current trips plus latched ones not yet reset).
        The contactor stays closed only while the heater may run. `purge_open`: the purge's safe
        state is open now (see `ReactiveCharge`).
        """
        forces: set[Force] = set()
        for trip in trips:
            forces |= trip.forces
        cool = Force.COOL in forces
        forced = forced_outputs(forces)
        if not allow_process_outputs or forced == frozenset(Output):
            return replace(Outputs.safe(), cooling_valve=cool, purge_valve=purge_open)
        out = desired
        # each output at the state effects.py gives it; the contactor stays closed only while
        # the heater may run (a welded SSR is stopped only by K-101)
        if Output.HEATER in forced:
            out = replace(out, heater_on_s=0.0)
        if Output.CONTACTOR in forced:
            out = replace(out, contactor=False)
        if Output.AGITATOR in forced:
            out = replace(out, agitator=False)
        if Output.FILL_PUMP in forced:
            out = replace(out, fill_pump=False)
        if Output.DOSING_PUMPS in forced:
            # keep each commanded tag with rate 0 so the HAL explicitly stops it
            out = out.with_pumps(dict.fromkeys(out.pumps, 0.0))
        if Output.DRAIN in forced:
            out = replace(out, drain_valve=False)
        if Output.PURGE in forced:
            out = replace(out, purge_valve=purge_open)
        if Output.COOLING in forced:
            out = replace(out, cooling_valve=cool)
        return out
