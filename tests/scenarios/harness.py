"""Runs whole batches on the simulator and checks, every scan, that trips hold their outputs off."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field

from hal.outputs import Outputs
from hal.sim.faults import parse_fault
from unit_controller.config import UnitConfig, load_config
from unit_controller.controller import Snapshot, UnitController
from unit_controller.interlocks import Force, Trip
from unit_controller.interlocks.effects import violations
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
    """Each way `outputs` break what the trips in effect force (effects.py says what a force
    means; the purge's safe state may be open, a charged reactor: tests check it on their own)."""
    forces: set[Force] = set()
    for trip in trips:
        forces |= trip.forces
    names = ", ".join(sorted({f"{t.alarm_id}({t.tag})" for t in trips if t.forces}))
    return [
        f"{names}: {problem}"
        for problem in violations(outputs, forces, purge_open=outputs.purge_valve)
    ]


def held_as_outputs(held: dict[str, object]) -> Outputs:
    """What the mock devices hold (`SimulatedUnit.held_outputs`) as Outputs: the heater counts
    as on when its element has power (SSR conducting, welded or not, and K-101 closed)."""
    pumps = held["pumps"]
    assert isinstance(pumps, dict)
    return Outputs(
        heater_on_s=1.0 if held["heater"] and held.get("contactor") else 0.0,
        contactor=bool(held.get("contactor")),
        agitator=bool(held.get("agitator")),
        fill_pump=bool(held.get("fill")),
        drain_valve=bool(held.get("drain")),
        purge_valve=bool(held.get("purge")),
        cooling_valve=bool(held.get("cooling")),
    ).with_pumps({tag: float(rate) for tag, rate in pumps.items()})


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
        if not in_effect:
            return  # nothing forced: no output can be where it must not be
        for trip in in_effect:
            trace.first_raised_scan.setdefault(trip.alarm_id, snapshot.at)
        for problem in forced_violations(snapshot.outputs, in_effect):
            trace.violations.append(f"t={snapshot.at:.1f} {snapshot.state}: {problem}")
        # and what the devices hold, in the same scan
        held = held_as_outputs(run.unit.held_outputs())
        for problem in forced_violations(held, in_effect):
            trace.violations.append(f"t={snapshot.at:.1f} {snapshot.state} devices: {problem}")

    run.watch(check)
    trace.result = asyncio.run(run.run())
    trace.output = out.getvalue()
    return trace
