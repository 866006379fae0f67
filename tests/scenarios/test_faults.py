"""Every fault the simulator knows, injected into every shipped recipe where it applies.

Each must end with the right alarm, with outputs forced off in the very scan the trip appears
(checked on every scan by the harness), and with no heater running dry and no overflow.
"""

from __future__ import annotations

import pytest

from tests.scenarios.schedule import WHEN, fault_text, faulted, on_recipes_worker

# fault -> (alarm it must raise, how the batch must end)
EXPECTED = {
    "ph_probe_dead": ("reading_bad", "HELD"),
    "ph_probe_stuck": ("reading_bad", "HELD"),
    "ph_probe_drift": ("ph_not_responding", "HELD"),
    "rtd_dead": ("reading_bad", "HELD"),
    "rtd_stuck": ("reading_bad", "HELD"),
    "ssr_welded": ("heater_stuck_on", "ABORTED"),
    "heater_open": ("heater_not_heating", "ABORTED"),
    "level_low_low_stuck": ("level_low_low", "HELD"),
    "level_high_high": ("level_high_high", "HELD"),
    "dosing_pump_stall": ("ph_not_responding", "HELD"),
    "pump_motor_unpowered": ("pump_fault", "HELD"),
    "estop": ("estop", "ABORTED"),
    # away for DEVICE_AWAY_S, then back: the simulated operator resumes and the batch completes
    "device_silent": ("device_lost", "COMPLETE"),
    # The heat balance cannot tell heat the jacket failed to take out from heat a welded SSR
    # put in: both open K-101 and abort (the message names both causes).
    "cooling_valve_stuck": ("heater_stuck_on", "ABORTED"),
    "relay_refused": ("output_fault", "HELD"),
}

CASES = [
    pytest.param(recipe, fault, minute, id=f"{recipe}-{fault}", marks=on_recipes_worker(recipe))
    for recipe, faults in WHEN.items()
    for fault, minute in faults.items()
]


@pytest.mark.parametrize(("recipe", "fault", "minute"), CASES)
def test_fault_ends_with_its_alarm_and_safe_outputs(recipe: str, fault: str, minute: float) -> None:
    alarm, final_state = EXPECTED[fault]
    trace = faulted(recipe, fault_text(fault, minute))
    summary = trace.result.summary
    assert alarm in trace.alarm_ids, trace.output[-3000:]
    assert summary["final_state"] == final_state
    assert trace.result.exit_code == (0 if final_state == "COMPLETE" else 3)
    assert trace.violations == []
    assert summary["hazards"]["heater_on_dry_s"] == 0
    assert summary["hazards"]["overflow_l"] == 0
    raised = {a["id"]: a["raised_s"] for a in summary["alarms"]}
    # raised_s counts from the batch start, a scan or two after the simulation starts
    assert raised[alarm] >= minute * 60 - 1


def test_every_fault_the_simulator_knows_is_covered() -> None:
    from hal.mock.unit import SimulatedUnit

    assert set(SimulatedUnit.FAULTS) == set(EXPECTED)
    assert {fault for faults in WHEN.values() for fault in faults} == set(EXPECTED)


@on_recipes_worker("leach")
def test_an_estop_during_leach_keeps_the_n2_blanket_and_every_other_output_safe() -> None:
    trace = faulted("leach", "estop@90")
    summary = trace.result.summary
    assert summary["final_state"] == "ABORTED"
    assert trace.violations == []
    # What the mock devices hold, not what the controller commanded.
    held = summary["outputs"]
    assert held["purge"] is True, held
    assert held["heater"] == 0.0
    assert not any(held[name] for name in ("contactor", "agitator", "fill", "drain")), held
    assert set(held["pumps"].values()) == {0.0}, held
