"""Faults scheduled on a simulated run already made (the fault tests fork runs and add one)."""

from __future__ import annotations

import asyncio
import io

import pytest

from hal.clock import VirtualClock
from hal.mock.unit import UnknownFault
from hal.sim.faults import parse_fault
from unit_controller.config import load_config
from unit_controller.sim.runner import SimOptions, SimulationRun


def _run() -> SimulationRun:
    return SimulationRun(
        config=load_config(), options=SimOptions(recipe="smoke", seed=1), out=io.StringIO()
    )


def test_a_scheduled_fault_is_injected_and_summarised_as_one_given_at_the_start() -> None:
    run = _run()
    run.schedule(parse_fault("estop@1"))
    result = asyncio.run(run.run())
    assert result.summary["final_state"] == "ABORTED"
    assert result.summary["faults"] == ["estop@1"]
    assert "estop" in {a["id"] for a in result.summary["alarms"]}


@pytest.mark.parametrize(
    ("fault", "error", "says"),
    [
        ("no_such_fault@1", UnknownFault, "unknown fault 'no_such_fault'"),
        ("dosing_pump_stall:P-999@1", UnknownFault, "no pump 'P-999'"),
    ],
)
def test_a_fault_the_unit_cannot_take_is_refused_and_nothing_is_scheduled(
    fault: str, error: type[Exception], says: str
) -> None:
    run = _run()
    with pytest.raises(error, match=says):
        run.schedule(parse_fault(fault))
    assert run.options.faults == ()


def test_a_fault_due_before_the_run_has_got_to_is_refused() -> None:
    run = _run()
    assert isinstance(run.clock, VirtualClock)
    run.clock.advance(120.0)  # as if two minutes had run
    with pytest.raises(ValueError, match="due at 60 s: the run is at 120 s"):
        run.schedule(parse_fault("estop@1"))
    assert run.options.faults == ()
