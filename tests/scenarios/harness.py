"""Runs whole batches on the simulator and checks, every scan, that trips hold their outputs off."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field, replace

from hal.outputs import Outputs
from hal.sim.faults import parse_fault
from unit_controller.config import UnitConfig, load_config
from unit_controller.controller import Snapshot, UnitController
from unit_controller.interlocks import Force, Trip
from unit_controller.sim.runner import SimOptions, SimResult, SimulationRun


@dataclass
class BatchTrace:
    """What a simulated batch did, scan by scan where it matters."""

    result: SimResult
    scans: int = 0
    violations: list[str] = field(default_factory=list)
    first_raised_scan: dict[str, float] = field(default_factory=dict)
    last: Snapshot | None = None
    output: str = ""

    @property
    def alarm_ids(self) -> set[str]:
        """Every alarm id raised during the batch."""
        return {a["id"] for a in self.result.summary["alarms"]}


def forced_violations(outputs: Outputs, trips: list[Trip]) -> list[str]:
    """Each way `outputs` break what the trips in effect force off."""
    problems = []
    for trip in trips:
        forces = trip.forces
        name = f"{trip.alarm_id}({trip.tag})"
        if (Force.HEATER in forces or Force.ALL in forces) and outputs.heater_on_s > 0:
            problems.append(f"{name}: heater on")
        if (Force.CONTACTOR in forces or Force.ALL in forces) and outputs.contactor:
            problems.append(f"{name}: contactor closed")
        if (Force.AGITATOR in forces or Force.ALL in forces) and outputs.agitator:
            problems.append(f"{name}: agitator on")
        if forces & {Force.INFLOWS, Force.ALL} and outputs.fill_pump:
            problems.append(f"{name}: fill pump on")
        if forces & {Force.INFLOWS, Force.DOSING, Force.ALL} and any(
            rate > 0 for rate in outputs.pumps.values()
        ):
            problems.append(f"{name}: a pump runs")
        # The purge's safe state may be open (a charged reactor): tests check it on its own.
        if Force.ALL in forces and replace(
            outputs, cooling_valve=False, purge_valve=False
        ) != Outputs.safe().with_pumps(outputs.pumps):
            problems.append(f"{name}: an output is on")
        if Force.COOL in forces and not outputs.cooling_valve:
            problems.append(f"{name}: the jacket is not cooling")
    return problems


def run_batch(
    recipe: str, *, seed: int = 1, faults: tuple[str, ...] = (), config: UnitConfig | None = None
) -> BatchTrace:
    """Run `recipe` with `faults` (NAME[:TAG]@MIN) to its end, checking outputs every scan."""
    out = io.StringIO()
    options = SimOptions(recipe=recipe, seed=seed, faults=tuple(parse_fault(f) for f in faults))
    run = SimulationRun(config=config or load_config(), options=options, out=out)
    controller: UnitController = run.controller
    trace = BatchTrace(result=SimResult(final_state=controller.machine.state))

    def check(snapshot: Snapshot) -> None:
        trace.scans += 1
        trace.last = snapshot
        in_effect = controller.alarms.in_effect()
        for trip in in_effect:
            trace.first_raised_scan.setdefault(trip.alarm_id, snapshot.at)
        for problem in forced_violations(snapshot.outputs, in_effect):
            trace.violations.append(f"t={snapshot.at:.1f} {snapshot.state}: {problem}")

    run.watch(check)
    trace.result = asyncio.run(run.run())
    trace.output = out.getvalue()
    return trace
