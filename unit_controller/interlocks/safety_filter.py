"""The safety filter: the one place where desired outputs are forced safe (DESIGN §2, step 5).

Pure: takes the desired outputs and the trips in effect, returns new outputs; it only ever turns
things off, with two exceptions whose safe state is on: the jacket cooling valve when too hot,
and the N2 purge while the reactor may hold acid or reactive liquor (DESIGN §5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from hal.outputs import Outputs
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
        if not allow_process_outputs or Force.ALL in forces:
            return replace(Outputs.safe(), cooling_valve=cool, purge_valve=purge_open)
        out = replace(desired, cooling_valve=True) if cool else desired
        if forces & {Force.HEATER, Force.CONTACTOR}:
            # a welded SSR is only stopped by the contactor; a heater that may not run gets both
            out = replace(out, heater_on_s=0.0, contactor=False)
        if Force.AGITATOR in forces:
            out = replace(out, agitator=False)
        if Force.INFLOWS in forces:
            out = replace(out, fill_pump=False)
        if forces & {Force.INFLOWS, Force.DOSING}:
            # keep each commanded tag with rate 0 so the HAL explicitly stops it
            out = out.with_pumps(dict.fromkeys(out.pumps, 0.0))
        return out
