"""Instrument models: lag, dead time, faults, drift, slope loss and seeded noise."""

from __future__ import annotations

import random

import pytest

from hal.sim.sensors import SensorModel

DT = 0.1


def model(**kw: float) -> SensorModel:
    """A noiseless model starting at 0 unless told otherwise."""
    args: dict[str, float] = {"tau_s": 0.0, "dead_time_s": 0.0, "noise": 0.0, "initial": 0.0}
    args.update(kw)
    return SensorModel(rng=random.Random(0), **args)


def time_to_reach(sensor: SensorModel, target: float, *, true_value: float = 1.0) -> float:
    """Simulated seconds until the reading first reaches `target` under a step to `true_value`."""
    t = 0.0
    while (sensor.value or 0.0) < target:
        sensor.update(true_value, DT)
        t += DT
        assert t < 1000.0
    return t


def test_first_order_step_reaches_63_percent_at_tau_plus_dead_time() -> None:
    sensor = model(tau_s=10.0, dead_time_s=5.0)
    assert time_to_reach(sensor, 0.632) == pytest.approx(15.0, rel=0.05)


def test_dead_time_delays_the_step() -> None:
    sensor = model(dead_time_s=5.0)
    # The first sample after the step is taken at 0.1 s, so it shows at 5.1 s.
    for _ in range(50):
        sensor.update(1.0, DT)
        assert sensor.value == 0.0
    sensor.update(1.0, DT)
    assert sensor.value == 1.0


def test_lengthened_dead_time_holds_the_reading_until_the_new_delay_has_passed() -> None:
    sensor = model(dead_time_s=5.0)
    for i in range(100):
        sensor.update(float(i), DT)  # a ramp: the reading shows the value 5 s back
    held = sensor.value
    sensor.dead_time_s = 20.0
    for i in range(100, 200):
        sensor.update(float(i), DT)
        assert sensor.value == held
    for i in range(200, 400):
        sensor.update(float(i), DT)
    assert sensor.value == pytest.approx(399 - 200, abs=1.0)


def test_stuck_holds_the_last_reading() -> None:
    sensor = model(tau_s=5.0, initial=7.0)
    sensor.update(4.0, DT)
    sensor.stuck = True
    held = sensor.value
    for _ in range(600):
        sensor.update(4.0, DT)
    assert sensor.value == held
    sensor.stuck = False
    sensor.update(4.0, DT)
    assert sensor.value == pytest.approx(4.0, abs=1e-3)


def test_dead_sensor_gives_no_reading() -> None:
    sensor = model(initial=25.0)
    sensor.dead = True
    sensor.update(30.0, DT)
    assert sensor.value is None
    sensor.dead = False
    assert sensor.value == 30.0


def test_drift_accumulates() -> None:
    sensor = model(initial=7.0)
    sensor.drift_per_s = -0.05 / 60.0
    for _ in range(6000):  # 10 min
        sensor.update(7.0, DT)
    assert sensor.value == pytest.approx(6.5, abs=1e-6)
    assert sensor.offset == pytest.approx(-0.5, abs=1e-6)


def test_slope_loss_pivots_about_the_reference() -> None:
    sensor = model(initial=7.0)
    sensor.slope = 0.9
    sensor.update(4.0, DT)
    assert sensor.value == pytest.approx(4.3)
    sensor.update(7.0, DT)
    assert sensor.value == pytest.approx(7.0)
    sensor.slope_ref = 0.0
    sensor.update(50.0, DT)
    assert sensor.value == pytest.approx(45.0)


def test_reset_settles_at_the_new_value() -> None:
    sensor = model(tau_s=20.0, dead_time_s=8.0, initial=7.0)
    sensor.reset(1.0)
    sensor.update(1.0, DT)
    assert sensor.value == pytest.approx(1.0)


def series(seed: int) -> list[float | None]:
    """Sixty noisy readings of a ramp from a sensor seeded with `seed`."""
    sensor = SensorModel(
        tau_s=8.0, dead_time_s=8.0, noise=0.01, rng=random.Random(seed), initial=7.0
    )
    out: list[float | None] = []
    for i in range(600):
        sensor.update(7.0 + i * 0.001, DT)
        out.append(sensor.value)
    return out


def test_same_seed_gives_identical_series() -> None:
    assert series(42) == series(42)
    assert series(42) != series(43)


def test_noise_has_the_configured_spread() -> None:
    sensor = SensorModel(tau_s=0.0, dead_time_s=0.0, noise=0.1, rng=random.Random(3), initial=0)
    values = []
    for _ in range(4000):
        sensor.update(0.0, DT)
        values.append(sensor.value or 0.0)
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    assert abs(mean) < 0.01
    assert spread == pytest.approx(0.1, rel=0.05)


def test_spikes_of_no_size_are_no_spikes_not_a_crash() -> None:
    # ph_spike_size = 0 is a valid plant (a quiet circuit): it crashed sim and envelope.
    from hal.sim.sensors import PhElectrode

    electrode = PhElectrode(
        offset_ph=0.0, drift_ph_per_s=0.0, noise=0.0, spikes_per_s=1e3, spike_size=0.0,
        rng=random.Random(0),
    )  # fmt: skip
    readings = {
        round(electrode.read(7.0, process_c=25.0, compensation_c=25.0, sample_s=1.0), 9)
        for _ in range(100)
    }
    assert readings == {7.0}
