"""Runs whole batches on the simulator and checks, every scan, that trips hold their outputs off."""

from __future__ import annotations

import asyncio
import io
import os
import pickle
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from hal.outputs import Outputs
from hal.sim.faults import FaultSpec, parse_fault
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
    trace = _traced(run)
    trace.result = asyncio.run(run.run())
    trace.output = out.getvalue()
    return trace


def _traced(run: SimulationRun) -> BatchTrace:
    """A trace of `run` that checks, every scan, that what the trips force is what is held."""
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
    return trace


# A faulted run forks from the fault-free one this long (simulated) before its fault is due.
FORK_LEAD_S = 5.0


def run_batch_and_faults(
    recipe: str, faults: Sequence[str], *, seed: int = 1
) -> tuple[BatchTrace, dict[str, BatchTrace]]:
    """The fault-free batch of `recipe`, and the same batch with each of `faults` (NAME[:TAG]@MIN)
    on its own, as `run_batch` would run them.

    The simulation is deterministic for a seed, so up to a fault's time a faulted batch is the
    fault-free one: a child process forked from the fault-free run just before the fault is due
    schedules it and runs on to the end, and sends its trace back. Each faulted batch costs only
    what follows its fault (test_fork_runs_the_batch_a_direct_run_does checks the two agree).
    """
    due = sorted(((parse_fault(text), text) for text in faults), key=lambda pair: pair[0].at_s)
    out = io.StringIO()
    run = SimulationRun(config=load_config(), options=SimOptions(recipe=recipe, seed=seed), out=out)
    trace = _traced(run)
    faulted: dict[str, BatchTrace] = {}
    child: list[int] = []  # in a forked child: the pipe its trace goes back on

    def fork_when_due(snapshot: Snapshot) -> None:
        while not child and due and snapshot.at + FORK_LEAD_S >= due[0][0].at_s:
            fault, text = due.pop(0)
            if fault.at_s <= snapshot.at:
                # Already due at the first scan: no fault-free prefix to share.
                faulted[text] = run_batch(recipe, seed=seed, faults=(text,))
                continue
            faulted[text] = _fork(run, fault, child)

    run.watch(fork_when_due)

    async def to_the_end() -> SimResult:
        try:
            result = await run.run()
        except BaseException:
            if child:
                _reply(child[0], traceback.format_exc())
            raise
        if child:
            trace.result = result
            trace.output = out.getvalue()
            trace.last = None  # a snapshot is not sent back: the faulted tests do not read it
            _reply(child[0], trace)
        return result

    trace.result = asyncio.run(to_the_end())
    trace.output = out.getvalue()
    for _, text in due:
        # Due after the fault-free batch ended: run as it is, never injected.
        faulted[text] = run_batch(recipe, seed=seed, faults=(text,))
    return trace, faulted


def _fork(run: SimulationRun, fault: FaultSpec, child: list[int]) -> BatchTrace:
    """In the parent: the trace the forked child sends back. In the child: schedules `fault`,
    notes its pipe in `child` and returns (a placeholder) to go on with the run."""
    loop = asyncio.get_running_loop()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns of fork in a process with threads (pytest-xdist's): the child
        # only computes and writes to its pipe, then leaves by os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        # asyncio keys the running loop to the process id: the child goes on in the same loop.
        asyncio.events._set_running_loop(loop)
        os.close(read_end)
        child.append(write_end)
        try:
            run.schedule(fault)
        except BaseException:
            _reply(write_end, traceback.format_exc())
        return BatchTrace(result=SimResult(final_state=run.controller.machine.state))
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        sent = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not sent:
        raise AssertionError(f"the run forked for {fault} ended with no trace (status {status})")
    reply = pickle.loads(sent)
    if isinstance(reply, str):
        raise AssertionError(f"the run forked for {fault} failed:\n{reply}")
    assert isinstance(reply, BatchTrace)
    return reply


def _reply(write_end: int, what: BatchTrace | str) -> None:
    """In a forked child: send `what` to the parent and leave at once (nothing of the parent's
    test session may run twice: no atexit, no loop shutdown on the shared epoll)."""
    data = pickle.dumps(what)
    with os.fdopen(write_end, "wb") as pipe:
        pipe.write(data)
    os._exit(0)
