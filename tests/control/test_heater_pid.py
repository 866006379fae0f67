"""Heater PID and SSR time proportioning, on a 100 L first-order-plus-lag heating model."""

from __future__ import annotations

import math
import random

import pytest

from tests.control.models import HeatedReactor
from unit_controller.config import HeaterTuning
from unit_controller.control import HeaterPid, TimeProportioner


def _heat(
    pid: HeaterPid,
    reactor: HeatedReactor,
    *,
    setpoint_c: float,
    start: float,
    seconds: float,
    dt: float = 1.0,
    max_duty: float = 1.0,
) -> list[tuple[float, float, float]]:
    """Run the loop; returns (time, true °C, duty) per step."""
    trace = []
    steps = round(seconds / dt)
    for k in range(steps):
        now = start + k * dt
        duty = pid.update(
            setpoint_c=setpoint_c, measured_c=reactor.measured(), now=now, max_duty=max_duty
        )
        reactor.step(duty=duty, dt=dt)
        trace.append((now + dt, reactor.true_c, duty))
    return trace


def _last_time_outside(
    trace: list[tuple[float, float, float]], *, target: float, band: float
) -> float:
    return max((t for t, temp, _ in trace if abs(temp - target) > band), default=0.0)


@pytest.mark.parametrize("noise_c", [0.0, 0.02])
def test_heats_20_to_60c_with_overshoot_under_1c_and_settles_within_0_3c(noise_c: float) -> None:
    reactor = HeatedReactor(start_c=20.0, noise_c=noise_c, seed=7)
    pid = HeaterPid(tuning=HeaterTuning())
    trace = _heat(pid, reactor, setpoint_c=60.0, start=0.0, seconds=3 * 3600)

    overshoot = max(temp for _, temp, _ in trace) - 60.0
    assert overshoot < 1.0
    # Full power needs ~47 min for 40 K; allow the approach, then stay within ±0.3 °C.
    assert _last_time_outside(trace, target=60.0, band=0.3) < 80 * 60
    assert abs(trace[-1][1] - 60.0) < 0.1


def test_no_windup_after_an_hour_against_an_unreachable_setpoint() -> None:
    reactor = HeatedReactor(start_c=20.0)
    pid = HeaterPid(tuning=HeaterTuning())
    # An hour capped at 20 % duty chasing 95 °C: the output is saturated throughout.
    saturated = _heat(pid, reactor, setpoint_c=95.0, start=0.0, seconds=3600, max_duty=0.2)
    assert all(duty == pytest.approx(0.2) for _, _, duty in saturated[120:])
    lowered_to = reactor.true_c + 5.0
    trace = _heat(pid, reactor, setpoint_c=lowered_to, start=3600.0, seconds=2 * 3600)

    assert max(temp for _, temp, _ in trace) - lowered_to < 1.0
    assert abs(trace[-1][1] - lowered_to) < 0.3


def test_lowered_setpoint_after_saturation_cuts_the_heater_without_delay() -> None:
    reactor = HeatedReactor(start_c=20.0)
    pid = HeaterPid(tuning=HeaterTuning())
    _heat(pid, reactor, setpoint_c=200.0, start=0.0, seconds=3600)
    duty = pid.update(
        setpoint_c=reactor.measured() - 1.0, measured_c=reactor.measured(), now=3600.0
    )
    assert duty == 0.0


def test_setpoint_step_gives_no_derivative_kick() -> None:
    tuning = HeaterTuning(kp=1.0, ki=0.01, kd=500.0)
    steady, stepped = HeaterPid(tuning=tuning), HeaterPid(tuning=tuning)
    steady.reset(duty=0.4)
    stepped.reset(duty=0.4)
    for k in range(100):
        measured = 50.0 - 0.0002 * k  # slow cooling, so D is active but the output unsaturated
        a = steady.update(setpoint_c=50.0, measured_c=measured, now=float(k))
        b = stepped.update(setpoint_c=50.0, measured_c=measured, now=float(k))
    assert 0.0 < a == b < 1.0
    a = steady.update(setpoint_c=50.0, measured_c=49.98, now=100.0)
    b = stepped.update(setpoint_c=50.2, measured_c=49.98, now=100.0)
    # Only P and one step of I see the setpoint: Δu = kp·Δsp + ki·Δsp·dt, no kd·Δsp/dt spike.
    assert b - a == pytest.approx(1.0 * 0.2 + 0.01 * 0.2 * 1.0, abs=1e-9)


def test_first_update_after_reset_has_no_derivative() -> None:
    tuning = HeaterTuning(kp=0.1, ki=0.0, kd=1000.0)
    pid = HeaterPid(tuning=tuning)
    for k in range(50):
        pid.update(setpoint_c=60.0, measured_c=40.0 + 0.5 * k, now=float(k))
    pid.reset()
    # A jump in measurement across the reset must not look like a slope.
    assert pid.update(setpoint_c=60.0, measured_c=55.0, now=60.0) == pytest.approx(0.5)


def test_reset_with_duty_hands_over_without_a_bump() -> None:
    pid = HeaterPid(tuning=HeaterTuning())
    pid.reset(duty=0.3)
    first = pid.update(setpoint_c=60.0, measured_c=59.95, now=0.0)
    second = pid.update(setpoint_c=60.0, measured_c=59.95, now=1.0)
    assert first == pytest.approx(0.3)
    assert second == pytest.approx(0.3, abs=0.01)


def test_output_always_within_zero_and_max_duty() -> None:
    rng = random.Random(42)
    pid = HeaterPid(tuning=HeaterTuning(kp=5.0, ki=0.05, kd=500.0, d_filter_s=0.0))
    now = 0.0
    for _ in range(20_000):
        now += rng.choice([0.0, 0.05, 0.1, 1.0, 30.0])
        max_duty = rng.choice([1.0, 0.5, 0.05, rng.random()])
        duty = pid.update(
            setpoint_c=rng.uniform(0, 95),
            measured_c=rng.uniform(-5, 120),
            now=now,
            max_duty=max_duty,
        )
        assert 0.0 <= duty <= max_duty


def test_bad_measurement_never_heats() -> None:
    pid = HeaterPid(tuning=HeaterTuning())
    assert pid.update(setpoint_c=60.0, measured_c=20.0, now=0.0) > 0.0
    assert pid.update(setpoint_c=60.0, measured_c=math.nan, now=1.0) == 0.0


def test_pid_through_time_proportioner_holds_60c() -> None:
    tuning = HeaterTuning()
    pid = HeaterPid(tuning=tuning)
    ssr = TimeProportioner(cycle_s=tuning.cycle_s, min_pulse_s=tuning.min_pulse_s)
    reactor = HeatedReactor(start_c=20.0, noise_c=0.02, seed=3)
    dt = 0.25
    temps = []
    for k in range(round(3 * 3600 / dt)):
        now = k * dt
        duty = pid.update(setpoint_c=60.0, measured_c=reactor.measured(), now=now)
        on = 1.0 if ssr.on_time_remaining(duty=duty, now=now) > 0.0 else 0.0
        reactor.step(duty=on, dt=dt)
        temps.append((now, reactor.true_c))
    assert max(t for _, t in temps) < 61.0
    assert all(abs(t - 60.0) <= 0.3 for now, t in temps if now > 2 * 3600)


# --- time proportioning --------------------------------------------------------------------


def _on_fraction(ssr: TimeProportioner, *, duty: float, cycles: int, dt: float = 0.05) -> float:
    on = 0.0
    steps = round(cycles * ssr.cycle_s / dt)
    for k in range(steps):
        on += min(ssr.on_time_remaining(duty=duty, now=k * dt), dt)
    return on / (steps * dt)


@pytest.mark.parametrize("duty", [0.02, 0.08, 0.25, 0.5, 0.77, 0.97, 1.0])
def test_average_on_fraction_equals_duty_over_many_cycles(duty: float) -> None:
    ssr = TimeProportioner(cycle_s=4.0, min_pulse_s=0.2)
    assert _on_fraction(ssr, duty=duty, cycles=200) == pytest.approx(duty, abs=0.01)


def test_pulse_shorter_than_min_pulse_is_dropped() -> None:
    ssr = TimeProportioner(cycle_s=4.0, min_pulse_s=0.2)
    assert ssr.on_time_remaining(duty=0.03, now=0.0) == 0.0  # 0.12 s < 0.2 s


def test_off_gap_shorter_than_min_pulse_becomes_full_on() -> None:
    ssr = TimeProportioner(cycle_s=4.0, min_pulse_s=0.2)
    assert ssr.on_time_remaining(duty=0.97, now=0.0) == pytest.approx(4.0)


def test_on_time_latched_at_cycle_start_and_counts_down() -> None:
    ssr = TimeProportioner(cycle_s=4.0, min_pulse_s=0.2)
    assert ssr.on_time_remaining(duty=0.5, now=10.0) == pytest.approx(2.0)
    assert ssr.on_time_remaining(duty=0.9, now=11.0) == pytest.approx(1.0)  # not re-sampled
    assert ssr.on_time_remaining(duty=0.9, now=12.5) == 0.0
    assert ssr.on_time_remaining(duty=0.9, now=14.0) == pytest.approx(3.6)  # next cycle


def test_duty_zero_switches_off_at_once_and_stays_off_for_the_cycle() -> None:
    ssr = TimeProportioner(cycle_s=4.0, min_pulse_s=0.2)
    assert ssr.on_time_remaining(duty=0.8, now=0.0) > 0.0
    assert ssr.on_time_remaining(duty=0.0, now=0.5) == 0.0
    assert ssr.on_time_remaining(duty=0.8, now=1.0) == 0.0
    assert ssr.on_time_remaining(duty=0.8, now=4.0) == pytest.approx(3.2)


def test_reset_starts_a_fresh_cycle() -> None:
    ssr = TimeProportioner(cycle_s=4.0, min_pulse_s=0.2)
    ssr.on_time_remaining(duty=0.5, now=0.0)
    ssr.reset()
    assert ssr.on_time_remaining(duty=0.25, now=1.0) == pytest.approx(1.0)


def test_min_pulse_must_fit_the_cycle() -> None:
    with pytest.raises(ValueError, match="min_pulse_s"):
        TimeProportioner(cycle_s=1.0, min_pulse_s=0.6)
