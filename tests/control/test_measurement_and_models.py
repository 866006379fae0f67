"""The pieces the pH loop decides with: the filtered reading and the reagent in flight."""

from __future__ import annotations

import random

import pytest

from unit_controller.control.dose_response import DoseResponse
from unit_controller.control.ph_filter import PhFilter


def test_filter_takes_each_sample_once() -> None:
    f = PhFilter(filter_s=10.0, spike_limit=0.08)
    f.update(11.0, at=0.0)
    f.update(12.0, at=0.0)  # the same sample again, read by another scan
    assert f.value == 11.0
    assert f.samples == 1


def test_filter_replaces_a_spike_with_its_neighbours_median() -> None:
    f = PhFilter(filter_s=5.0, spike_limit=0.08)
    for k in range(20):
        f.update(11.0, at=float(k))
    f.update(11.5, at=20.0)
    assert f.value == pytest.approx(11.0, abs=1e-9)
    assert f.rejected == 1


def test_filter_follows_a_real_step_once_it_holds() -> None:
    f = PhFilter(filter_s=2.0, spike_limit=0.08)
    for k in range(20):
        f.update(10.0, at=float(k))
    for k in range(20, 60):
        f.update(10.5, at=float(k))
    assert f.value == pytest.approx(10.5, abs=0.01)


def test_filter_estimates_the_noise() -> None:
    rng = random.Random(3)
    f = PhFilter(filter_s=10.0, spike_limit=0.2)
    for k in range(3000):
        f.update(11.0 + rng.gauss(0.0, 0.02), at=float(k))
    assert f.sigma == pytest.approx(0.02, rel=0.35)
    assert f.value == pytest.approx(11.0, abs=0.015)


def test_filter_ignores_bad_numbers() -> None:
    f = PhFilter(filter_s=10.0, spike_limit=0.08)
    f.update(11.0, at=0.0)
    f.update(float("nan"), at=1.0)
    assert f.value == 11.0


def test_dose_in_flight_arrives_after_its_dead_time_and_lag() -> None:
    model = DoseResponse(delay_s=10.0, tau_s=20.0)
    model.update(now=0.0, dosed_ml=0.0)
    model.update(now=1.0, dosed_ml=5.0)
    for k in range(2, 11):
        model.update(now=float(k), dosed_ml=0.0)
    assert model.pending_ml == pytest.approx(5.0, abs=0.01)  # still in the line
    for k in range(11, 31):
        model.update(now=float(k), dosed_ml=0.0)
    assert model.seen_ml == pytest.approx(5.0 * (1 - 2.718**-1), rel=0.1)
    for k in range(31, 200):
        model.update(now=float(k), dosed_ml=0.0)
    assert model.pending_ml == pytest.approx(0.0, abs=0.01)


def test_a_correction_below_the_load_is_a_negative_volume_in_flight() -> None:
    model = DoseResponse(delay_s=5.0, tau_s=5.0)
    model.update(now=0.0, dosed_ml=-2.0)
    assert model.pending_ml == pytest.approx(-2.0)
