"""Every fault the simulator knows, injected into every shipped recipe where it applies.

Each must end with the right alarm, with outputs forced off in the very scan the trip appears
(checked on every scan by the harness), and with no heater running dry and no overflow.
"""

from __future__ import annotations

import pytest

from tests.scenarios.harness import run_batch

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

# Simulated minute at which each fault meets the phase it matters in. Left out where a fault
# cannot apply: no pH loop in leach (stall, drift: its pH < 1 reads out of range instead), and
# smoke's pH step is too short for a drift to show.
WHEN: dict[str, dict[str, float]] = {
    # fill 0–3, heat 3–15, ph 15–25, drain
    "smoke": {
        "ph_probe_dead": 16,
        "ph_probe_stuck": 16,
        "rtd_dead": 8,
        "rtd_stuck": 8,
        "ssr_welded": 13,
        "heater_open": 4,
        "level_low_low_stuck": 8,
        "level_high_high": 8,
        "dosing_pump_stall": 16,
        "pump_motor_unpowered": 16,
        "estop": 8,
        "device_silent": 16,
        "relay_refused": 8,
    },
    # fill 0–3, acid_heat 3–34, charge, peroxide 35–95, hold 95–155, drain
    "leach": {
        "ph_probe_dead": 10,
        "ph_probe_stuck": 10,
        "rtd_dead": 10,
        "rtd_stuck": 10,
        "ssr_welded": 100,
        "heater_open": 5,
        "level_low_low_stuck": 10,
        "level_high_high": 10,
        "estop": 10,
    },
    # heat (cool) 0–16, raise_ph 16–85, hold 85–165, drain
    "purify": {
        "ph_probe_dead": 30,
        "ph_probe_stuck": 30,
        "ph_probe_drift": 100,
        "rtd_dead": 10,
        "rtd_stuck": 10,
        "ssr_welded": 100,
        "heater_open": 2,
        "level_low_low_stuck": 10,
        "level_high_high": 10,
        "dosing_pump_stall": 30,
        "estop": 10,
        "cooling_valve_stuck": 1,
    },
    # fill 0–3, heat 3–33, ph_adjust 33–44, co_precipitate 44–164, drain
    "coprecipitation": {
        "ph_probe_dead": 38,
        "ph_probe_stuck": 38,
        "ph_probe_drift": 80,
        "rtd_dead": 20,
        "rtd_stuck": 20,
        "ssr_welded": 75,
        "heater_open": 10,
        "level_low_low_stuck": 20,
        "level_high_high": 20,
        "dosing_pump_stall": 72,
        "pump_motor_unpowered": 72,
        "estop": 20,
    },
}

CASES = [
    (recipe, fault, minute) for recipe, faults in WHEN.items() for fault, minute in faults.items()
]


@pytest.mark.parametrize(
    ("recipe", "fault", "minute"), CASES, ids=[f"{r}-{f}" for r, f, _ in CASES]
)
def test_fault_ends_with_its_alarm_and_safe_outputs(recipe: str, fault: str, minute: float) -> None:
    alarm, final_state = EXPECTED[fault]
    trace = run_batch(recipe, faults=(f"{fault}@{minute}",))
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


def test_an_estop_during_leach_keeps_the_n2_blanket_and_every_other_output_safe() -> None:
    trace = run_batch("leach", faults=("estop@90",))
    summary = trace.result.summary
    assert summary["final_state"] == "ABORTED"
    assert trace.violations == []
    # What the mock devices hold, not what the controller commanded.
    held = summary["outputs"]
    assert held["purge"] is True, held
    assert held["heater"] == 0.0
    assert not any(held[name] for name in ("contactor", "agitator", "fill", "drain")), held
    assert set(held["pumps"].values()) == {0.0}, held
