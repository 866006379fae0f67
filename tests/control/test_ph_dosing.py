"""pH dosing (PI + feed-forward, dose per interval) on a caustic buffer model at pH 11, 60 °C."""

from __future__ import annotations

import pytest

from tests.control.models import CausticBuffer
from unit_controller.config import PhTuning
from unit_controller.control import PhDosingController, neutralising_rate_ml_min

NAOH_MOL_L = 4.0  # P-203
FEED_MOL_L = 2.0  # P-205, metal sulfate
SETPOINT = 11.0


def _naoh(tuning: PhTuning | None = None) -> PhDosingController:
    return PhDosingController(tuning=tuning or PhTuning(), raises_ph=True, reagent_mol_l=NAOH_MOL_L)


def _coprecipitate(
    controller: PhDosingController,
    *,
    hours: float = 2.0,
    step_at_s: float | None = None,
    seed: int = 1,
    dt: float = 0.5,
) -> list[tuple[float, float]]:
    """Run the feed (10 mL/min, 15 after `step_at_s`) under control; (time, true pH) per step."""
    plant = CausticBuffer(start_ph=SETPOINT, seed=seed)
    trace = []
    for k in range(round(hours * 3600 / dt)):
        now = k * dt
        feed = 15.0 if step_at_s is not None and now >= step_at_s else 10.0
        ff = neutralising_rate_ml_min(
            feed_ml_min=feed, feed_mol_l=FEED_MOL_L, equivalents=2.0, reagent_mol_l=NAOH_MOL_L
        )
        rate = controller.update(
            setpoint=SETPOINT, measured_ph=plant.measured(), now=now, feed_forward_ml_min=ff
        )
        plant.step(naoh_ml_min=rate, feed_ml_min=feed, dt=dt)
        trace.append((now + dt, plant.true_ph))
    return trace


def _share_within(trace: list[tuple[float, float]], *, band: float, after_s: float) -> float:
    window = [ph for t, ph in trace if t >= after_s]
    return sum(abs(ph - SETPOINT) <= band for ph in window) / len(window)


def test_neutralising_rate_is_two_hydroxide_per_metal() -> None:
    rate = neutralising_rate_ml_min(
        feed_ml_min=10.0, feed_mol_l=2.0, equivalents=2.0, reagent_mol_l=4.0
    )
    assert rate == pytest.approx(10.0)


@pytest.mark.parametrize("seed", [1, 2])
def test_holds_ph_11_within_0_05_for_95_percent_of_two_hours(seed: int) -> None:
    trace = _coprecipitate(_naoh(), seed=seed)
    assert _share_within(trace, band=0.05, after_s=600) >= 0.95


def test_recovers_from_feed_step_when_feed_forward_follows_it() -> None:
    trace = _coprecipitate(_naoh(), step_at_s=3600)
    assert _share_within(trace, band=0.05, after_s=600) >= 0.95
    assert _share_within(trace, band=0.05, after_s=3600 + 600) >= 0.99


def test_without_feed_forward_stays_within_0_15() -> None:
    trace = _coprecipitate(_naoh(PhTuning(feed_forward=False)), step_at_s=3600)
    assert max(abs(ph - SETPOINT) for _, ph in trace) <= 0.15
    assert _share_within(trace, band=0.05, after_s=600) >= 0.95


def test_base_never_doses_when_ph_is_above_setpoint_past_the_stop_band() -> None:
    tuning = PhTuning(stop_band=0.02)
    controller = _naoh(tuning)
    for k in range(200):
        # Feed-forward asks for 10 mL/min, but the pH is already too high: nothing goes in.
        rate = controller.update(
            setpoint=11.0, measured_ph=11.03, now=k * 1.0, feed_forward_ml_min=10.0
        )
        assert rate == 0.0
    assert controller.dosed_ml == 0.0


def test_fresh_base_controller_without_feed_forward_never_doses_above_setpoint() -> None:
    controller = _naoh(PhTuning(feed_forward=False, stop_band=0.5))
    for k in range(200):
        assert controller.update(setpoint=11.0, measured_ph=11.001 + 0.001 * k, now=k * 1.0) == 0.0


def test_output_zero_when_ph_wildly_above_setpoint() -> None:
    controller = _naoh(PhTuning(stop_band=2.0))  # even with the guard opened wide
    assert (
        controller.update(setpoint=11.0, measured_ph=13.5, now=0.0, feed_forward_ml_min=30.0) == 0.0
    )


def test_integral_does_not_wind_while_ph_is_on_the_wrong_side() -> None:
    controller = _naoh()
    controller.reset(integral_ml=2.0)
    for k in range(360):  # two hours far above setpoint
        controller.update(setpoint=11.0, measured_ph=12.0, now=k * 20.0)
    assert controller.integral_ml == pytest.approx(2.0)
    # Back just below setpoint: it doses at once, not after unwinding hours of error.
    assert controller.update(setpoint=11.0, measured_ph=10.99, now=360 * 20.0) > 0.0


def test_integral_does_not_wind_up_while_dose_is_at_its_cap() -> None:
    tuning = PhTuning(max_dose_ml=5.0)
    controller = _naoh(tuning)
    for k in range(100):
        controller.update(setpoint=11.0, measured_ph=9.0, now=k * 20.0)
    assert controller.integral_ml <= tuning.max_dose_ml


def test_dose_per_interval_never_exceeds_max_dose() -> None:
    tuning = PhTuning(max_dose_ml=4.0, interval_s=20.0)
    controller = _naoh(tuning)
    per_interval: dict[int, float] = {}
    dt = 0.1
    for k in range(round(600 / dt)):
        now = k * dt
        rate = controller.update(setpoint=11.0, measured_ph=9.0, now=now, feed_forward_ml_min=50.0)
        assert 0.0 <= rate <= 105.0
        per_interval[int(now // 20.0)] = per_interval.get(int(now // 20.0), 0.0) + rate * dt / 60
    assert max(per_interval.values()) <= tuning.max_dose_ml + 1e-9
    # dosed_ml counts each rate up to the next update, so the last one is not in it yet.
    assert controller.dosed_ml == pytest.approx(sum(per_interval.values()) - rate * dt / 60)


def test_rate_never_exceeds_the_pump_limit() -> None:
    controller = _naoh(PhTuning(max_dose_ml=500.0, delivery_fraction=0.2))
    for k in range(100):
        assert (
            controller.update(setpoint=11.0, measured_ph=8.0, now=k * 0.5, max_ml_min=60.0) <= 60.0
        )


def test_first_update_decides_a_dose_at_once() -> None:
    controller = _naoh(PhTuning(delivery_fraction=1.0, interval_s=20.0))
    rate = controller.update(setpoint=11.0, measured_ph=11.0, now=0.0, feed_forward_ml_min=10.0)
    # On setpoint: the dose is the feed-forward alone, spread over the interval.
    assert rate == pytest.approx(10.0)
    assert controller.plan is not None
    assert controller.plan.volume_ml == pytest.approx(10.0 * 20.0 / 60.0)


def test_dose_delivered_in_first_part_of_interval_leaves_time_to_mix() -> None:
    controller = _naoh(PhTuning(delivery_fraction=0.5, interval_s=20.0))
    rates = [
        controller.update(setpoint=11.0, measured_ph=11.0, now=k * 1.0, feed_forward_ml_min=10.0)
        for k in range(20)
    ]
    assert rates[:10] == pytest.approx([20.0] * 10)
    assert rates[10:] == [0.0] * 10


def test_dose_below_minimum_is_carried_to_a_later_interval() -> None:
    tuning = PhTuning(kp_ml=1.0, ki_ml=0.0, min_dose_ml=0.1, feed_forward=False)
    controller = _naoh(tuning)
    dt = 1.0
    rates = [controller.update(setpoint=11.0, measured_ph=10.96, now=k * dt) for k in range(80)]
    # 0.04 mL per interval is below the minimum dose: owed, then given as one 0.12 mL dose.
    assert rates[:40] == [0.0] * 40
    assert max(rates[40:60]) > 0.0
    assert controller.dosed_ml == pytest.approx(0.12, abs=1e-9)


def test_acid_doses_only_when_ph_is_above_setpoint() -> None:
    acid = PhDosingController(
        tuning=PhTuning(feed_forward=False), raises_ph=False, reagent_mol_l=18.0
    )
    assert acid.update(setpoint=4.0, measured_ph=3.5, now=0.0) == 0.0
    acid.reset()
    assert acid.update(setpoint=4.0, measured_ph=4.5, now=0.0) > 0.0


def test_reset_with_learned_demand_resumes_without_a_bump() -> None:
    controller = _naoh(PhTuning(feed_forward=False))
    _coprecipitate(controller, hours=0.5)
    learned = controller.integral_ml
    assert learned == pytest.approx(10.0 * 20.0 / 60.0, rel=0.2)  # the feed's NaOH demand
    controller.reset(integral_ml=learned)
    assert controller.dosed_ml == 0.0
    rate = controller.update(setpoint=11.0, measured_ph=11.0, now=0.0)
    assert rate == pytest.approx(learned * 60.0 / 20.0)


def test_bad_measurement_never_doses() -> None:
    controller = _naoh()
    assert (
        controller.update(
            setpoint=11.0, measured_ph=float("nan"), now=0.0, feed_forward_ml_min=10.0
        )
        == 0.0
    )


def test_pause_stops_counting_and_keeps_the_learned_demand() -> None:
    controller = _naoh()
    controller.reset(integral_ml=3.0)
    controller.update(setpoint=11.0, measured_ph=11.0, now=0.0)
    controller.update(setpoint=11.0, measured_ph=11.0, now=10.0)
    dosed = controller.dosed_ml
    controller.pause()  # e.g. the pH reading went bad for ten minutes
    assert controller.update(setpoint=11.0, measured_ph=11.0, now=610.0) > 0.0
    assert controller.dosed_ml == pytest.approx(dosed)
    assert controller.integral_ml == pytest.approx(3.0)
