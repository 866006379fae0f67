"""The temperature loop's parts: PID into the jacket, the heat doses release, how fast exothermic
doses may go, and the on/off baseline."""

from __future__ import annotations

import math

import pytest

from hal.wiring import DosingPumpWiring, Reagent
from unit_controller.config import HeaterTuning
from unit_controller.control import HeaterPid, OnOff
from unit_controller.control.exotherm_limit import ExothermicDoseLimit
from unit_controller.control.reaction_heat import ReactionHeat

PUMPS = {
    "P-201": DosingPumpWiring(kind="dosing_pump", reagent=Reagent.H2SO4, concentration_mol_l=18),
    "P-202": DosingPumpWiring(kind="dosing_pump", reagent=Reagent.H2O2, concentration_mol_l=9.8),
    "P-203": DosingPumpWiring(kind="dosing_pump", reagent=Reagent.NAOH, concentration_mol_l=4),
}


def test_pid_asks_the_jacket_for_cooling_when_it_may_cool() -> None:
    pid = HeaterPid(tuning=HeaterTuning())
    duty = 0.0
    for k in range(100):
        duty = pid.update(setpoint_c=60.0, measured_c=63.0, now=k * 0.1, min_duty=-2.0)
    assert duty < -1.0


def test_pid_never_goes_below_zero_without_a_jacket() -> None:
    pid = HeaterPid(tuning=HeaterTuning())
    for k in range(100):
        assert pid.update(setpoint_c=60.0, measured_c=63.0, now=k * 0.1) == 0.0


def test_too_hot_never_raises_the_heater_through_the_integral() -> None:
    pid = HeaterPid(tuning=HeaterTuning())
    for k in range(6000):  # ten minutes just below the setpoint: the integral holds the load
        pid.update(setpoint_c=58.0, measured_c=57.95, now=k * 0.1)
    held = pid.update(setpoint_c=58.0, measured_c=57.95, now=600.0)
    assert held > 0.0
    duties = [
        pid.update(setpoint_c=58.0, measured_c=58.6, now=600.1 + k * 0.1) for k in range(3000)
    ]
    # then five minutes 0.6 °C above it: P takes the heater off and the integral only unwinds
    assert max(duties) < held
    assert duties[-1] == 0.0


def test_pid_takes_the_reaction_heat_off_the_heater_at_once() -> None:
    with_ff, without = HeaterPid(tuning=HeaterTuning()), HeaterPid(tuning=HeaterTuning())
    for pid in (with_ff, without):
        pid.reset(duty=0.5)
    a = with_ff.update(setpoint_c=75.0, measured_c=75.0, now=0.0, feed_forward=-0.3)
    b = without.update(setpoint_c=75.0, measured_c=75.0, now=0.0)
    # bumpless: the preload is the duty; the feed-forward then lowers it as the heat rises
    a = with_ff.update(setpoint_c=75.0, measured_c=75.0, now=1.0, feed_forward=-0.4)
    b = without.update(setpoint_c=75.0, measured_c=75.0, now=1.0)
    assert a == pytest.approx(b - 0.1, abs=1e-6)


def test_peroxide_heat_releases_over_minutes_and_acid_heat_at_once() -> None:
    heat = ReactionHeat(pumps=PUMPS, release_s=600.0)
    heat.update(now=0.0, ml_min={}, ph=0.5)
    heat.update(now=60.0, ml_min={"P-202": 100.0}, ph=0.5)  # 100 mL of 30 % H2O2
    assert heat.pending_j == pytest.approx(100 * 9.8e-3 * 94_700 * math.exp(0), rel=0.11)
    released = heat.update(now=120.0, ml_min={}, ph=0.5)
    assert 0.0 < released < heat.pending_j / 60.0
    acid = ReactionHeat(pumps=PUMPS, release_s=600.0)
    acid.update(now=0.0, ml_min={}, ph=0.5)
    w = acid.update(now=60.0, ml_min={"P-201": 60.0}, ph=0.5)
    assert w == pytest.approx(60.0 * 18e-3 * 67_000 / 60.0, rel=1e-6)
    assert acid.pending_j == 0.0


def test_base_into_acid_is_hot_and_into_base_is_not() -> None:
    heat = ReactionHeat(pumps=PUMPS, release_s=600.0)
    assert heat.heat_per_ml("P-203", ph=2.0)[0] > 200.0
    assert heat.heat_per_ml("P-203", ph=11.0) == (0.0, 0.0)


def _limit(**kwargs: float) -> ExothermicDoseLimit:
    limit = ExothermicDoseLimit(heater_w=6000.0, share=0.8, release_s=600.0)
    figures = {
        "temperature_c": 75.0,
        "setpoint_c": 75.0,
        "heater_duty": 0.1,
        "cooling_w": 0.0,
        "cooling_spare_w": 0.0,
        "released_w": 0.0,
        "pending_j": 0.0,
    } | kwargs
    for k in range(10):
        limit.update(now=k * 1.0, **figures)
    return limit


def test_exothermic_doses_may_release_a_share_of_what_the_unit_loses() -> None:
    limit = _limit()  # the heater holds 75 °C at 600 W: that is what the unit loses
    assert limit.budget_w == pytest.approx(0.8 * 600.0)
    rate = limit.limit_ml_min(immediate_j_ml=0.0, delayed_j_ml=928.0)
    assert rate == pytest.approx(0.8 * 600 / 928 * 60, rel=1e-6)


def test_a_jacket_that_may_cool_lets_doses_go_much_faster() -> None:
    assert _limit(cooling_spare_w=12_000.0).budget_w > 20 * _limit().budget_w


def test_peroxide_waiting_to_decompose_stops_new_peroxide() -> None:
    limit = _limit(pending_j=600.0 * 2000.0)  # 2 kW waiting to come out
    assert limit.limit_ml_min(immediate_j_ml=0.0, delayed_j_ml=928.0) == 0.0
    # acid releases at once, so waiting peroxide does not hold it back
    assert limit.limit_ml_min(immediate_j_ml=1206.0, delayed_j_ml=0.0) > 0.0


def test_too_hot_with_the_heater_off_and_doses_heating_shrinks_the_allowance() -> None:
    limit = ExothermicDoseLimit(heater_w=6000.0, share=0.8, release_s=600.0)
    for k in range(600):
        limit.update(
            now=float(k),
            temperature_c=77.0,
            setpoint_c=75.0,
            heater_duty=0.0,
            cooling_w=0.0,
            cooling_spare_w=0.0,
            released_w=800.0,
            pending_j=0.0,
        )
    assert limit.allowance == 0.0
    assert limit.limit_ml_min(immediate_j_ml=0.0, delayed_j_ml=928.0) == 0.0


def test_a_small_exotherm_may_always_go_slowly() -> None:
    # a batch held below where its agitator keeps it: the heater idles, the load looks like 0
    limit = _limit(heater_duty=0.0, temperature_c=31.0, setpoint_c=30.0)
    assert limit.limit_ml_min(immediate_j_ml=3200.0, delayed_j_ml=0.0) > 2.0


def test_reagents_that_release_no_heat_are_not_limited() -> None:
    assert _limit().limit_ml_min(immediate_j_ml=0.0, delayed_j_ml=0.0) == math.inf


def test_on_off_switches_with_hysteresis_and_off_on_bad_numbers() -> None:
    heater = OnOff(band=0.5)
    assert heater.update(setpoint=60.0, measured=59.0) is True
    assert heater.update(setpoint=60.0, measured=60.3) is True  # inside the band: unchanged
    assert heater.update(setpoint=60.0, measured=60.6) is False
    assert heater.update(setpoint=60.0, measured=59.8) is False
    acid = OnOff(band=0.02, rising=False)
    assert acid.update(setpoint=9.5, measured=9.6) is True
    assert acid.update(setpoint=9.5, measured=float("nan")) is False
    with pytest.raises(ValueError, match="band"):
        OnOff(band=0.0)
