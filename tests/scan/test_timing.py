"""Scan timing statistics: bounded history, percentiles over a recent window, maxima since start."""

from __future__ import annotations

import tracemalloc

from unit_controller.scan.timing import ScanTimes


def test_percentiles_cover_the_window_asked_for_and_maxima_everything_since_start() -> None:
    times = ScanTimes(period_s=0.1, window_s=10.0)
    times.record(late_s=0.050, took_s=0.001)  # one bad scan early on
    for _ in range(200):
        times.record(late_s=0.001, took_s=0.0005)
    # Ten seconds of history is 100 scans: the bad one has left the window but not the maxima.
    summary = times.summary()
    assert summary["window_scans"] == 100
    assert summary["lateness_ms"] == {"p50": 1.0, "p99": 1.0, "max": 1.0}
    assert summary["scans"] == 201
    assert summary["max_lateness_ms_since_start"] == 50.0
    assert summary["max_scan_ms_since_start"] == 1.0


def test_a_shorter_window_looks_at_the_newest_scans_only() -> None:
    times = ScanTimes(period_s=0.1, window_s=600.0)
    for late_ms in range(1, 101):  # 1 .. 100 ms, the newest last
        times.record(late_s=late_ms / 1000, took_s=0.0)
    recent = times.summary(window_s=1.0)  # the last 10 scans: 91 .. 100 ms
    assert recent["window_scans"] == 10
    assert recent["lateness_ms"]["p50"] == 95.0
    assert recent["lateness_ms"]["max"] == 100.0
    assert times.summary()["lateness_ms"]["p99"] == 99.0


def test_memory_stays_bounded_however_long_it_runs() -> None:
    times = ScanTimes(period_s=0.1)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(20_000):  # more than the ten minutes kept
            times.record(late_s=0.001, took_s=0.0005)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 1024  # nothing kept per scan beyond the fixed arrays
    assert times.summary()["window_scans"] == 6000


def test_no_scans_yet_gives_no_percentiles() -> None:
    summary = ScanTimes(period_s=0.1).summary()
    assert summary["scans"] == 0
    assert summary["lateness_ms"] == {"p50": None, "p99": None, "max": None}
