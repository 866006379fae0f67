"""When the guided calibration calls a pH reading steady: readings over 10 s of the unit's clock,
at least 5 of them, all within ±0.02 pH; a bad reading starts it over.

Pure: readings fed by hand with their times; no daemon, no clock.
"""

from __future__ import annotations

import math

from unit_controller.console.calibrate import (
    STEADY_BAND_PH,
    STEADY_MIN_READINGS,
    STEADY_WINDOW_S,
    SteadyReading,
)


def _fed(readings: list[tuple[float, float | None]]) -> SteadyReading:
    judge = SteadyReading()
    for at_s, ph in readings:
        judge.add(at_s, ph)
    return judge


def test_a_reading_within_the_band_for_the_whole_window_is_steady() -> None:
    wobble = [0.01, -0.01, 0.015, -0.005, 0.0, 0.012, -0.019, 0.004, -0.002, 0.009, 0.0]
    judge = _fed([(float(t), 7.0 + dph) for t, dph in enumerate(wobble)])
    assert judge.watched_s == STEADY_WINDOW_S
    assert judge.steady
    assert judge.describe().startswith("steady (±0.017 over 10 s)")


def test_not_steady_before_the_window_is_watched_whole() -> None:
    judge = _fed([(float(t), 7.0) for t in range(10)])  # 0..9 s: 9 s watched
    assert not judge.steady
    assert judge.describe() == "settling (9 s of 10 s)"
    judge.add(10.0, 7.0)
    assert judge.steady


def test_too_few_readings_are_not_steady_however_still() -> None:
    slow = _fed([(t, 7.0) for t in (0.0, 4.0, 8.0, 12.0)])  # still for 12 s, 4 readings
    assert not slow.steady
    assert slow.describe() == "settling (4 of 5 readings in 10 s)"  # not "12 s of 10 s"
    slow.add(13.0, 7.0)
    assert STEADY_MIN_READINGS == 5
    assert slow.steady


def test_a_reading_that_moves_more_than_the_band_is_still_settling() -> None:
    judge = _fed([(float(t), 7.0 + (0.025 if t % 2 else -0.025)) for t in range(12)])
    assert judge.span > 2 * STEADY_BAND_PH
    assert not judge.steady
    assert judge.describe() == "settling (moves ±0.025 in 10 s, needs ±0.02)"


def test_an_electrode_settling_in_a_fresh_buffer_is_steady_only_once_it_stops_drifting() -> None:
    # From pH 7.40 towards 7.00 with τ 8 s: what it moves over the last 10 s,
    # 0.4·e^(-(t-10)/8)·(1 - e^(-10/8)), falls below 0.04 at t ≈ 25.7 s.
    judge = SteadyReading()
    steady_at = None
    for t in range(60):
        judge.add(float(t), 7.0 + 0.4 * math.exp(-t / 8.0))
        if judge.steady and steady_at is None:
            steady_at = t
    assert steady_at is not None
    assert steady_at == 26


def test_a_spike_keeps_it_settling_until_it_leaves_the_window() -> None:
    readings: list[tuple[float, float | None]] = [(float(t), 7.0) for t in range(15)]
    readings[12] = (12.0, 7.15)  # one spike
    judge = _fed(readings)
    assert not judge.steady
    for t in range(15, 23):
        judge.add(float(t), 7.0)
    assert not judge.steady  # 10 s old: still in the window
    judge.add(23.0, 7.0)
    assert judge.steady


def test_a_bad_reading_starts_the_window_over() -> None:
    judge = _fed([(float(t), 7.0) for t in range(20)])
    assert judge.steady
    judge.add(20.0, None)
    assert judge.ph is None
    assert not judge.steady
    for t in range(21, 31):
        judge.add(float(t), 7.0)
    assert not judge.steady  # 9 s since the bad reading
    judge.add(31.0, 7.0)
    assert judge.steady


def test_the_same_scan_read_twice_counts_once() -> None:
    judge = _fed([(0.0, 7.0), (0.0, 7.0), (0.0, 7.0), (0.0, 7.0), (0.0, 7.0)])
    assert judge.watched_s == 0.0
    assert not judge.steady


def test_a_reading_polled_seldom_on_a_fast_clock_can_still_be_steady() -> None:
    # At 30x real time a reading polled every 0.5 s real comes 15 s of the unit's clock apart.
    steady = SteadyReading()
    for i in range(6):
        steady.add(15.0 * i, 7.01 + (0.005 if i % 2 else 0.0))
    assert steady.steady
