"""What each shipped recipe's batch is run with: the faults of the matrix, each at the minute it
meets the phase it matters in, and the runs other tests judge."""

from __future__ import annotations

from functools import cache

import pytest

from tests.scenarios.harness import BatchTrace, run_batch_and_faults

RECIPES = ("smoke", "leach", "purify", "coprecipitation")

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
        "heater_open": 5,  # after the element has warmed the fill: the agitator alone gains 2 °C
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

# Faulted batches a test of its own judges.
ALSO: dict[str, tuple[str, ...]] = {"leach": ("estop@90",)}


def fault_text(fault: str, minute: float) -> str:
    """The fault as `sim --fault` takes it: NAME@MINUTES."""
    return f"{fault}@{minute:g}"


@cache
def _batches(recipe: str) -> tuple[BatchTrace, dict[str, BatchTrace]]:
    faults = [fault_text(f, m) for f, m in WHEN.get(recipe, {}).items()]
    return run_batch_and_faults(recipe, [*faults, *ALSO.get(recipe, ())], seed=1)


def completed(recipe: str) -> BatchTrace:
    """The fault-free batch of `recipe` (seed 1), shared by the tests that judge it."""
    return _batches(recipe)[0]


def faulted(recipe: str, fault: str) -> BatchTrace:
    """The batch of `recipe` (seed 1) with `fault` (NAME@MINUTES, as scheduled here)."""
    return _batches(recipe)[1][fault]


def on_recipes_worker(recipe: str) -> pytest.MarkDecorator:
    """Every test that judges a batch of `recipe` on one xdist worker: they share its runs, which
    on two workers would run twice."""
    return pytest.mark.xdist_group(f"batch-{recipe}")
