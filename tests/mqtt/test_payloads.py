"""Time stamps of payloads: epoch ms from the controller's clock."""

from __future__ import annotations

from hal.clock import ScaledClock, VirtualClock
from unit_controller.mqtt.payloads import EpochClock

WALL_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_simulated_time_is_anchored_once_and_never_before_what_was_journaled() -> None:
    clock = VirtualClock()
    epoch = EpochClock(clock=clock, wall=lambda: WALL_S)
    clock.advance(3600.0)
    assert epoch.ms(clock.monotonic()) == int((WALL_S + 3600.0) * 1000)
    # A sped-up run ran ahead of the wall clock: the next run starts after it.
    later = EpochClock(
        clock=VirtualClock(), wall=lambda: WALL_S, not_before_ms=int(WALL_S * 1000) + 7_200_000
    )
    assert later.ms(0.0) > int(WALL_S * 1000) + 7_200_000


def test_real_time_follows_the_wall_clock_when_it_steps() -> None:
    wall = [WALL_S]
    clock = ScaledClock(speed=1.0)
    epoch = EpochClock(clock=clock, wall=lambda: wall[0])
    now = clock.monotonic()
    before = epoch.ms(now)
    wall[0] += 3600.0  # NTP sets the clock an hour forward
    assert epoch.ms(clock.monotonic()) - before >= 3_600_000


def test_a_moment_named_again_and_again_keeps_its_first_stamp_as_the_wall_clock_drifts() -> None:
    # An alarm's raised_ts goes out in every retained alarm list: a dashboard keys on it.
    wall = [WALL_S]
    clock = ScaledClock(speed=1.0)
    epoch = EpochClock(clock=clock, wall=lambda: wall[0])
    raised = clock.monotonic()
    first = epoch.kept_ms(raised)
    wall[0] += 0.5  # NTP slews the wall clock ahead of the monotonic one
    assert epoch.kept_ms(raised) == first
    assert epoch.ms(raised) != first  # a fresh reading still follows the wall clock


def test_real_time_stamps_never_go_back_when_the_wall_clock_steps_back() -> None:
    wall = [WALL_S]
    clock = VirtualClock()
    # Live, as at speed 1: the wall clock is read at every stamp.
    epoch = EpochClock(clock=clock, wall=lambda: wall[0] + clock.monotonic(), live=True)
    started = epoch.ms(clock.monotonic())
    clock.advance(10.0)
    wall[0] -= 7200.0  # someone sets the clock two hours back
    held = epoch.ms(clock.monotonic())
    assert held == started + 10_000  # the monotonic clock's pace, from where the stamps were
    earlier = epoch.ms(clock.monotonic() - 4.0)
    assert earlier == held - 4_000  # an earlier moment is still earlier by as much
    clock.advance(5.0)
    wall[0] += 7200.0 + 60.0  # then a minute ahead of where the stamps were: followed
    assert epoch.ms(clock.monotonic()) == started + 15_000 + 60_000


def test_each_step_back_of_the_wall_clock_is_logged_once() -> None:
    from structlog.testing import capture_logs

    wall = [WALL_S]
    clock = VirtualClock()
    epoch = EpochClock(clock=clock, wall=lambda: wall[0] + clock.monotonic(), live=True)
    with capture_logs() as logs:
        for step in (-7200.0, 0.0, 3600.0, -1800.0, 0.0):
            wall[0] += step
            clock.advance(1.0)
            epoch.ms(clock.monotonic())
    said = [e["by_s"] for e in logs if e["event"] == "clock.stepped_back"]
    assert said == [7200.0, 1800.0]
