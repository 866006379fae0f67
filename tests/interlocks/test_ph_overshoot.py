"""pH overshoot: an alarm when the pH stays past its setpoint the way the only reagent pushes.

Scans are one second apart unless a test says otherwise; time starts at 0.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from hal.outputs import Outputs
from tests.rig import Rig
from unit_controller.interlocks import (
    Force,
    InterlockContext,
    Interlocks,
    Priority,
    SafetyFilter,
    Trip,
    TripAction,
)
from unit_controller.interlocks.ph_overshoot import (
    MIN_EXCESS,
    PERSIST_S,
    TOLERANCES,
    PhOvershootMonitor,
)

from . import default_limits, make_image, sim_wiring

SETPOINT = 11.0
TOLERANCE = 0.05
# max(2 × 0.05, 0.08): past the setpoint by more than this counts
THRESHOLD = max(TOLERANCES * TOLERANCE, MIN_EXCESS)


def _update(
    monitor: PhOvershootMonitor,
    now: float,
    ph: float | None,
    *,
    setpoint: float | None = SETPOINT,
    raises: bool = True,
    tolerance: float = TOLERANCE,
    counter: bool = False,
) -> str | None:
    return monitor.update(
        now=now, ph=ph, setpoint=setpoint, raises=raises, tolerance=tolerance, counter=counter
    )


def _first_alarm(
    monitor: PhOvershootMonitor,
    ph: float,
    *,
    start: int = 0,
    until: int = 600,
    raises: bool = True,
    tolerance: float = TOLERANCE,
    setpoint: float = SETPOINT,
) -> int | None:
    """The first second in [start, until) at which a steady `ph` alarms, or None."""
    for second in range(start, until):
        message = _update(
            monitor, float(second), ph, raises=raises, tolerance=tolerance, setpoint=setpoint
        )
        if message is not None:
            return second
    return None


# --- the band, and short excursions ---------------------------------------------------------


@pytest.mark.parametrize("raises", [True, False])
def test_no_alarm_for_hours_inside_the_band(raises: bool) -> None:
    monitor = PhOvershootMonitor()
    for second in range(0, 4 * 3600, 5):
        ph = SETPOINT + 0.09 * math.sin(second / 90.0)  # ±0.09, inside the 0.1 band
        assert _update(monitor, float(second), ph, raises=raises) is None


def test_no_alarm_just_inside_the_threshold_held_indefinitely() -> None:
    monitor = PhOvershootMonitor()
    assert _first_alarm(monitor, SETPOINT + THRESHOLD - 0.005, until=3600) is None


@pytest.mark.parametrize("raises", [True, False])
def test_no_alarm_the_other_way_however_far_and_long(raises: bool) -> None:
    # a base-dosing phase far below its setpoint is simply not there yet
    monitor = PhOvershootMonitor()
    ph = SETPOINT - 2.0 if raises else SETPOINT + 2.0
    assert _first_alarm(monitor, ph, raises=raises, until=3600) is None


def test_no_alarm_for_an_excursion_shorter_than_persist_s() -> None:
    monitor = PhOvershootMonitor()
    for second in range(300):
        assert _update(monitor, float(second), SETPOINT) is None
    # 45 s well past the setpoint, then back: the smoothed pH is past for less than PERSIST_S
    for second in range(300, 345):
        assert _update(monitor, float(second), SETPOINT + 0.3) is None
    for second in range(345, 900):
        assert _update(monitor, float(second), SETPOINT) is None


def test_short_excursions_do_not_add_up() -> None:
    monitor = PhOvershootMonitor()
    second = 0
    for _ in range(10):
        # 30 s past, then 5 min back at the setpoint: each one resets the persistence
        for _ in range(30):
            assert _update(monitor, float(second), SETPOINT + 0.3) is None
            second += 1
        for _ in range(300):
            assert _update(monitor, float(second), SETPOINT) is None
            second += 1


# --- a sustained excursion ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raises", "ph"), [(True, SETPOINT + 0.3), (False, SETPOINT - 0.3)], ids=["base", "acid"]
)
def test_alarm_exactly_persist_s_after_a_sustained_excursion_the_reagents_way(
    raises: bool, ph: float
) -> None:
    monitor = PhOvershootMonitor()
    # the first reading is taken as is (nothing to smooth against): past from second 0
    assert _first_alarm(monitor, ph, raises=raises) == int(PERSIST_S)


@pytest.mark.parametrize(
    ("raises", "ph", "way"),
    [(True, SETPOINT + 0.3, "above"), (False, SETPOINT - 0.3, "below")],
    ids=["base", "acid"],
)
def test_alarm_message_says_which_way_and_that_nothing_brings_it_back(
    raises: bool, ph: float, way: str
) -> None:
    monitor = PhOvershootMonitor()
    message = None
    for second in range(int(PERSIST_S) + 1):
        message = _update(monitor, float(second), ph, raises=raises)
    assert message is not None
    assert f"pH {ph:.2f} is {way} the setpoint 11" in message
    assert "no reagent to bring it back" in message


def test_alarm_holds_while_the_excursion_lasts_and_clears_when_the_ph_comes_back() -> None:
    monitor = PhOvershootMonitor()
    assert _first_alarm(monitor, SETPOINT + 0.3) == int(PERSIST_S)
    for second in range(int(PERSIST_S) + 1, 1000):
        assert _update(monitor, float(second), SETPOINT + 0.3) is not None
    # back at the setpoint: the smoothed pH (τ 30 s) falls inside the band within two minutes
    cleared = next(
        second for second in range(1000, 2000) if _update(monitor, float(second), SETPOINT) is None
    )
    assert cleared < 1000 + 120


def test_step_from_the_setpoint_alarms_persist_s_after_the_smoothed_ph_crosses() -> None:
    monitor = PhOvershootMonitor()
    for second in range(300):
        assert _update(monitor, float(second), SETPOINT) is None
    # a step of 0.3: the 30 s smoothing crosses 0.1 after 30·ln(0.3/0.2) ≈ 12 s
    alarm = _first_alarm(monitor, SETPOINT + 0.3, start=300)
    assert alarm is not None
    assert 300 + PERSIST_S + 10 <= alarm <= 300 + PERSIST_S + 14


@pytest.mark.parametrize(
    ("tolerance", "inside", "outside"),
    [
        (0.02, 0.07, 0.09),  # 2 × 0.02 = 0.04 < MIN_EXCESS: the floor of 0.08 rules
        (0.10, 0.19, 0.21),  # 2 × 0.10 = 0.20
    ],
    ids=["min_excess", "two_tolerances"],
)
@pytest.mark.parametrize("raises", [True, False])
def test_threshold_is_the_larger_of_two_tolerances_and_min_excess(
    tolerance: float, inside: float, outside: float, raises: bool
) -> None:
    sign = 1.0 if raises else -1.0
    quiet = PhOvershootMonitor()
    assert (
        _first_alarm(
            quiet, SETPOINT + sign * inside, raises=raises, tolerance=tolerance, until=1200
        )
        is None
    )
    loud = PhOvershootMonitor()
    assert (
        _first_alarm(loud, SETPOINT + sign * outside, raises=raises, tolerance=tolerance)
        == PERSIST_S
    )


# --- a counter-reagent, no setpoint ---------------------------------------------------------


def test_no_alarm_when_a_counter_reagent_can_bring_it_back() -> None:
    monitor = PhOvershootMonitor()
    for second in range(3600):
        assert _update(monitor, float(second), SETPOINT + 1.0, counter=True) is None


def test_no_alarm_without_a_setpoint() -> None:
    monitor = PhOvershootMonitor()
    for second in range(3600):
        assert _update(monitor, float(second), 13.5, setpoint=None) is None


def test_a_scan_with_a_counter_reagent_restarts_the_persistence() -> None:
    monitor = PhOvershootMonitor()
    for second in range(100):
        assert _update(monitor, float(second), SETPOINT + 0.3) is None
    assert _update(monitor, 100.0, SETPOINT + 0.3, counter=True) is None
    # counted afresh from 101 s, not from 0 s
    assert _first_alarm(monitor, SETPOINT + 0.3, start=101) == 101 + PERSIST_S


# --- noise ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("raises", [True, False])
def test_noise_around_the_setpoint_never_alarms(seed: int, raises: bool) -> None:
    rng = random.Random(seed)
    monitor = PhOvershootMonitor()
    for scan in range(3 * 3600 // 2):
        # σ 0.05 (a whole tolerance) every 2 s, with a 0.4 spike one scan in a hundred
        ph = SETPOINT + rng.gauss(0.0, 0.05)
        if rng.random() < 0.01:
            ph += rng.choice((-0.4, 0.4))
        assert _update(monitor, 2.0 * scan, ph, raises=raises) is None


# --- the setpoint changes -------------------------------------------------------------------


def test_a_new_setpoint_restarts_the_persistence() -> None:
    monitor = PhOvershootMonitor()
    for second in range(100):
        assert _update(monitor, float(second), 11.5) is None
    # still past the new setpoint (by 0.2), but counted from the change at 100 s
    assert _first_alarm(monitor, 11.5, start=100, setpoint=11.3) == 100 + PERSIST_S


def test_a_new_setpoint_that_takes_the_ph_in_clears_the_alarm_at_once() -> None:
    monitor = PhOvershootMonitor()
    assert _first_alarm(monitor, 11.5) == PERSIST_S
    # the smoothing starts afresh from the reading: no lagging value keeps the alarm up
    assert _update(monitor, PERSIST_S + 1, 11.5, setpoint=11.5) is None
    assert _first_alarm(monitor, 11.5, start=int(PERSIST_S) + 2, setpoint=11.5) is None


def test_a_reversed_reagent_restarts_the_judgement() -> None:
    monitor = PhOvershootMonitor()
    assert _first_alarm(monitor, 11.5) == PERSIST_S
    # the same setpoint, now with acid: 11.5 is where an acid dose starts from, not overshoot
    assert _first_alarm(monitor, 11.5, start=int(PERSIST_S) + 1, raises=False) is None


# --- bad readings ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, math.nan, math.inf], ids=["none", "nan", "inf"])
def test_bad_readings_neither_alarm_nor_restart_the_persistence(bad: float | None) -> None:
    monitor = PhOvershootMonitor()
    for second in range(100):
        assert _update(monitor, float(second), 11.5) is None
    for second in range(100, 130):
        assert _update(monitor, float(second), bad) is None
    # the excursion still counts from 0 s: the first good reading past 120 s alarms
    assert _update(monitor, 130.0, 11.5) is not None


@pytest.mark.parametrize("bad", [None, math.nan], ids=["none", "nan"])
def test_an_alarm_comes_straight_back_after_a_bad_reading(bad: float | None) -> None:
    monitor = PhOvershootMonitor()
    assert _first_alarm(monitor, 11.5) == PERSIST_S
    assert _update(monitor, PERSIST_S + 1, bad) is None
    assert _update(monitor, PERSIST_S + 2, 11.5) is not None


def test_a_bad_reading_does_not_poison_the_smoothing() -> None:
    monitor = PhOvershootMonitor()
    for second in range(300):
        _update(monitor, float(second), SETPOINT)
    _update(monitor, 300.0, math.nan)
    # a NaN in the smoothed value would make every later comparison False: never alarm
    assert _first_alarm(monitor, 11.5, start=301) is not None


# --- through the interlocks -----------------------------------------------------------------


def _overshoot_trips(*, holds: bool) -> list[tuple[float, Trip]]:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    ctx = InterlockContext(
        executing=True,
        ph_setpoint=SETPOINT,
        ph_raises=True,
        ph_tolerance=TOLERANCE,
        ph_counter=False,
        ph_overshoot_holds=holds,
    )
    found: list[tuple[float, Trip]] = []
    for second in range(0, 200, 2):
        now = float(second)
        trips = interlocks.evaluate(make_image(now, ph=11.5), ctx)
        assert {t.alarm_id for t in trips} <= {"ph_overshoot"}
        found += [(now, t) for t in trips]
    return found


@pytest.mark.parametrize(
    ("holds", "action"), [(True, TripAction.HOLD), (False, TripAction.NONE)], ids=["hold", "go_on"]
)
def test_interlock_ph_overshoot_holds_or_only_alarms_as_the_recipe_says(
    holds: bool, action: TripAction
) -> None:
    found = _overshoot_trips(holds=holds)
    assert found, "no ph_overshoot trip in 200 s of pH 0.5 above the setpoint"
    assert found[0][0] == PERSIST_S
    for _, trip in found:
        assert trip.alarm_id == "ph_overshoot"
        assert trip.tag == sim_wiring().ph_tag
        assert trip.alarm is True
        assert trip.action is action
        assert trip.priority is Priority.MEDIUM
        assert trip.latch is False
        assert trip.forces == frozenset()
    message = found[0][1].message
    assert "no reagent to bring it back" in message
    assert message.endswith("the batch goes on and it comes back") is (not holds)


@pytest.mark.parametrize("holds", [True, False], ids=["hold", "go_on"])
def test_interlock_ph_overshoot_forces_no_output(holds: bool) -> None:
    trips = [trip for _, trip in _overshoot_trips(holds=holds)]
    desired = Outputs(
        heater_on_s=2.0,
        contactor=True,
        agitator=True,
        purge_valve=True,
        cooling_valve=True,
    ).with_pumps({"P-203": 10.0, "P-205": 10.0})
    applied = SafetyFilter().apply(desired, trips=trips, allow_process_outputs=True)
    assert applied == desired
    assert not any(Force.DOSING in t.forces for t in trips)


def test_a_new_phase_judges_its_overshoot_afresh() -> None:
    # A phase that gave up on an overshoot (on_overshoot = "next_phase") hands the same pH and
    # setpoint to the next phase: that one gives up only once it has lasted PERSIST_S there.
    monitor = PhOvershootMonitor()

    def gives_up(phase: str, seconds: range) -> int | None:
        for second in seconds:
            message = monitor.update(
                now=float(second),
                phase=phase,
                ph=SETPOINT + 0.5,
                setpoint=SETPOINT,
                raises=True,
                tolerance=TOLERANCE,
                counter=False,
            )
            if message is not None:
                return second
        return None

    first = gives_up("a", range(600))
    assert first is not None
    later = gives_up("b", range(first + 1, first + 600))
    assert later is not None
    assert later - (first + 1) >= PERSIST_S


_GIVES_UP_TWICE = """
name = "gives_up"
starts_with = "empty"

[[phases]]
name = "fill"
timeout_min = 15.0
fill = true
until = { level = "high" }

[[phases]]
name = "ph_a"
timeout_min = 30.0
temperature_c = 25.0
agitator = true
ph = { setpoint = 8.0, pump = "P-203", on_overshoot = "next_phase", kp_ml = 200.0, \
max_dose_ml = 50.0 }
until = { at_setpoint_min = 20.0 }

[[phases]]
name = "ph_b"
timeout_min = 30.0
temperature_c = 25.0
agitator = true
ph = { setpoint = 8.0, pump = "P-203", on_overshoot = "next_phase" }
feeds = [{ pump = "P-205", ml_min = 10.0 }]
until = { duration_min = 10.0 }

[[phases]]
name = "ph_c"
timeout_min = 30.0
temperature_c = 25.0
agitator = true
ph = { setpoint = 8.0, pump = "P-203", on_overshoot = "wait" }
feeds = [{ pump = "P-205", ml_min = 10.0 }]
until = { duration_min = 1.0 }
"""


async def test_a_phase_after_one_that_gave_up_is_not_skipped(tmp_path: Path) -> None:
    # Found by running it: ph_a overshot and gave up; ph_b (same setpoint) ended in the same
    # scan it began, its 10 min of metal feed never run, and the batch said COMPLETE.
    recipe = tmp_path / "gives_up.toml"
    recipe.write_text(_GIVES_UP_TWICE, encoding="utf-8")
    rig = Rig()
    await rig.start(str(recipe))
    snap = await rig.run_until(lambda s: s.phase == "ph_b", limit_s=1800)
    began = snap.at
    snap = await rig.run_until(lambda s: s.phase != "ph_b", limit_s=1800)
    assert snap.at - began >= PERSIST_S
