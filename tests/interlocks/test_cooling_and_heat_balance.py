"""Jacket cooling that does not cool, and heat taken out that nothing put in (a hidden weld).

Both monitors are driven scan by scan with explicit times; nothing sleeps.
"""

from __future__ import annotations

import pytest

from unit_controller.interlocks.cooling_verifier import HARD_SHARE, CoolingVerifier
from unit_controller.interlocks.heat_balance import SAMPLES_PER_WINDOW, HeatBalanceMonitor

# --- the cooling verifier -------------------------------------------------------------------

WINDOW_S = 600.0  # the config's cooling_check_s default
DROP_C = 1.0  # cooling_drop_c
ABOVE_C = 2.0  # cooling_above_c
SETPOINT_C = 58.0
HOT_C = SETPOINT_C + ABOVE_C + 2.0  # 62 °C: "still hot"


def _verifier() -> CoolingVerifier:
    return CoolingVerifier(window_s=WINDOW_S, drop_c=DROP_C, above_c=ABOVE_C)


def _run_cooling(
    verifier: CoolingVerifier,
    *,
    start: int,
    stop: int,
    temperature: float | None,
    cooling: bool = True,
    setpoint: float | None = SETPOINT_C,
    fall_c_per_s: float = 0.0,
    step: int = 2,
) -> list[tuple[int, str]]:
    """Scans every `step` s in [start, stop); the faults reported, with their times."""
    faults = []
    for second in range(start, stop, step):
        t = None if temperature is None else temperature - fall_c_per_s * (second - start)
        fault = verifier.update(
            now=float(second), temperature_c=t, setpoint_c=setpoint, cooling=cooling
        )
        if fault is not None:
            faults.append((second, fault))
    return faults


def test_cooling_trips_when_held_open_a_whole_window_and_the_batch_stays_hot() -> None:
    verifier = _verifier()
    faults = _run_cooling(verifier, start=0, stop=700, temperature=HOT_C)
    assert faults, "no fault with the valve open 700 s and the batch flat at 62 °C"
    assert faults[0][0] == WINDOW_S
    assert "no cooling water?" in faults[0][1]
    assert "fell only 0.0 °C (from 62.0)" in faults[0][1]
    # A setpoint below the water's reads the same: the message names that cause too.
    assert "or water no colder than the setpoint" in faults[0][1]
    # it holds every scan while nothing changes
    assert [second for second, _ in faults] == list(range(600, 700, 2))


def test_cooling_trips_when_the_batch_keeps_warming_with_the_valve_open() -> None:
    verifier = _verifier()
    faults = _run_cooling(verifier, start=0, stop=700, temperature=HOT_C, fall_c_per_s=-0.002)
    assert faults
    assert faults[0][0] == WINDOW_S


def test_cooling_trips_when_the_fall_is_short_of_drop_c() -> None:
    verifier = _verifier()
    # 0.8 °C in 600 s: something cools, but not a jacket with water in it
    faults = _run_cooling(
        verifier, start=0, stop=602, temperature=HOT_C, fall_c_per_s=0.8 / WINDOW_S
    )
    assert [second for second, _ in faults] == [600]
    assert "fell only 0.8 °C" in faults[0][1]


def test_no_cooling_fault_while_the_temperature_drops() -> None:
    verifier = _verifier()
    # 1.5 °C per window from 70 °C: the jacket works; stays above setpoint + above_c throughout
    faults = _run_cooling(
        verifier, start=0, stop=3000, temperature=70.0, fall_c_per_s=1.5 / WINDOW_S
    )
    assert faults == []


def test_no_cooling_fault_below_setpoint_plus_above_c() -> None:
    verifier = _verifier()
    faults = _run_cooling(verifier, start=0, stop=4 * 3600, temperature=SETPOINT_C + ABOVE_C - 0.1)
    assert faults == []


def test_no_cooling_fault_without_a_setpoint() -> None:
    verifier = _verifier()
    assert _run_cooling(verifier, start=0, stop=3600, temperature=HOT_C, setpoint=None) == []


def test_no_cooling_fault_when_the_valve_was_closed() -> None:
    verifier = _verifier()
    assert _run_cooling(verifier, start=0, stop=3600, temperature=HOT_C, cooling=False) == []


@pytest.mark.parametrize(("open_of_ten", "trips"), [(5, False), (7, False), (9, True), (10, True)])
def test_cooling_fault_needs_the_valve_open_most_of_the_window(
    open_of_ten: int, trips: bool
) -> None:
    verifier = _verifier()
    faults = []
    for second in range(700):
        # the valve pulses: open `open_of_ten` seconds of every ten
        cooling = second % 10 < open_of_ten
        fault = verifier.update(
            now=float(second), temperature_c=HOT_C, setpoint_c=SETPOINT_C, cooling=cooling
        )
        if fault is not None:
            faults.append(second)
    assert bool(faults) is trips
    assert (open_of_ten / 10 >= HARD_SHARE) is trips


def test_cooling_fault_clears_once_the_jacket_cools_again() -> None:
    verifier = _verifier()
    assert _run_cooling(verifier, start=0, stop=700, temperature=HOT_C)
    # the water comes back: the batch falls 0.01 °C/s from 62 °C; the fault drops within a
    # scan of the temperature falling drop_c below the window's highest (100 s)
    recovery = _run_cooling(verifier, start=700, stop=1100, temperature=HOT_C, fall_c_per_s=0.01)
    assert recovery
    assert recovery[-1][0] < 700 + 100
    # and it stays clear while a hot batch keeps cooling at 1.2 °C per window
    later = _run_cooling(verifier, start=1100, stop=3000, temperature=66.0, fall_c_per_s=0.002)
    assert later == []


def test_cooling_fault_clears_when_the_batch_is_back_near_its_setpoint() -> None:
    verifier = _verifier()
    assert _run_cooling(verifier, start=0, stop=700, temperature=HOT_C)
    assert _run_cooling(verifier, start=700, stop=1400, temperature=SETPOINT_C + 1.0) == []


def test_cooling_watch_window_starts_afresh_each_time_the_batch_gets_hot() -> None:
    verifier = _verifier()
    # 500 s hot, a dip below the threshold, then hot again: 600 s counted from the return
    assert _run_cooling(verifier, start=0, stop=500, temperature=HOT_C) == []
    assert _run_cooling(verifier, start=500, stop=510, temperature=SETPOINT_C) == []
    faults = _run_cooling(verifier, start=510, stop=1200, temperature=HOT_C)
    assert faults[0][0] == 510 + WINDOW_S


# --- the heat balance monitor ---------------------------------------------------------------

BALANCE_WINDOW_S = 600.0  # heater_off_window_s
HEATER_W = 6000.0
MARGIN_J = 120.0 * HEATER_W  # two minutes of full heater power, as the interlocks use
# 110 L of liquor at 4180 J/L·K plus the vessel at its most (60 kJ/K)
CAPACITY_J_K = 110.0 * 4180.0 + 60_000.0
AGITATOR_W = 500.0


def _monitor() -> HeatBalanceMonitor:
    return HeatBalanceMonitor(window_s=BALANCE_WINDOW_S, margin_j=MARGIN_J)


def _run_balance(
    monitor: HeatBalanceMonitor,
    *,
    start: int,
    stop: int,
    removed_w: float,
    supplied_w: float = AGITATOR_W,
    temperature: float = 60.0,
    rise_c_per_s: float = 0.0,
    step: int = 2,
) -> list[tuple[int, str]]:
    faults = []
    for second in range(start, stop, step):
        fault = monitor.update(
            now=float(second),
            temperature_c=temperature + rise_c_per_s * (second - start),
            removed_w=removed_w,
            supplied_w=supplied_w,
            capacity_j_k=CAPACITY_J_K,
        )
        if fault is not None:
            faults.append((second, fault))
    return faults


def test_balance_trips_when_the_jacket_removes_more_than_anything_supplies() -> None:
    monitor = _monitor()
    # 3 kW out, 0.5 kW in, temperature flat: 1.5 MJ unaccounted for over 600 s (a hidden weld)
    faults = _run_balance(monitor, start=0, stop=700, removed_w=3000.0)
    assert faults
    assert faults[0][0] == BALANCE_WINDOW_S
    # Said as judged: heat unaccounted for, and its limit (not a rate that is only the
    # margin's at the moment it is crossed).
    assert "fell by 1500 kJ less than it should have over 600 s (limit" in faults[0][1]
    assert "commanded open" in faults[0][1]


def test_balance_does_not_trip_before_a_whole_window() -> None:
    monitor = _monitor()
    assert _run_balance(monitor, start=0, stop=600, removed_w=20_000.0) == []


@pytest.mark.parametrize(
    ("excess_w", "trips"),
    [(1100.0, False), (1300.0, True)],  # × 600 s: 660 kJ and 780 kJ against the 720 kJ margin
)
def test_balance_trips_only_past_the_margin(excess_w: float, trips: bool) -> None:
    monitor = _monitor()
    faults = _run_balance(monitor, start=0, stop=1800, removed_w=AGITATOR_W + excess_w)
    assert bool(faults) is trips


def test_balance_trips_when_the_batch_warms_while_the_jacket_removes_heat() -> None:
    # a rise releases no stored heat: it cannot explain the removal
    monitor = _monitor()
    faults = _run_balance(monitor, start=0, stop=700, removed_w=3000.0, rise_c_per_s=0.001)
    assert faults
    assert faults[0][0] == BALANCE_WINDOW_S


def test_balance_does_not_trip_while_a_hot_batch_cools_down_to_its_setpoint() -> None:
    monitor = _monitor()
    removed_w = 8000.0
    # the batch gives up its stored heat: it falls by what the jacket takes beyond the sources
    fall_c_per_s = (removed_w - AGITATOR_W) / CAPACITY_J_K
    faults = _run_balance(
        monitor,
        start=0,
        stop=1800,
        removed_w=removed_w,
        temperature=80.0,
        rise_c_per_s=-fall_c_per_s,
    )
    assert faults == []


def test_balance_trips_when_the_fall_is_too_small_for_the_heat_removed() -> None:
    monitor = _monitor()
    removed_w = 8000.0
    # falling at a third of what the removal needs: something else is heating (a weld)
    fall_c_per_s = (removed_w - AGITATOR_W) / CAPACITY_J_K / 3.0
    faults = _run_balance(
        monitor,
        start=0,
        stop=700,
        removed_w=removed_w,
        temperature=80.0,
        rise_c_per_s=-fall_c_per_s,
    )
    assert faults
    assert faults[0][0] == BALANCE_WINDOW_S


def test_balance_stored_heat_counts_at_the_larger_capacity_of_the_window() -> None:
    # the bound on the batch's capacity halves 300 s in (a level switch went dry); the heat a
    # window's fall released is counted at the larger one, so a cooling batch is no weld
    monitor = _monitor()
    removed_w = 8000.0
    fall_c_per_s = (removed_w - AGITATOR_W) / CAPACITY_J_K
    for second in range(0, 900, 2):
        fault = monitor.update(
            now=float(second),
            temperature_c=80.0 - fall_c_per_s * second,
            removed_w=removed_w,
            supplied_w=AGITATOR_W,
            capacity_j_k=CAPACITY_J_K if second < 300 else CAPACITY_J_K / 2,
        )
        assert fault is None, f"tripped at {second} s"


def test_balance_clears_once_the_imbalance_leaves_the_window() -> None:
    monitor = _monitor()
    assert _run_balance(monitor, start=0, stop=700, removed_w=3000.0)
    # the jacket's removal now matches the sources: clear within a window
    later = _run_balance(monitor, start=700, stop=2000, removed_w=AGITATOR_W)
    assert later
    assert later[-1][0] < 700 + BALANCE_WINDOW_S
    assert _run_balance(monitor, start=2000, stop=3000, removed_w=AGITATOR_W) == []


def test_balance_reset_forgets_the_window() -> None:
    monitor = _monitor()
    assert _run_balance(monitor, start=0, stop=590, removed_w=3000.0) == []
    monitor.reset()  # the contactor opened
    # counted afresh: a whole window after the reset before it can trip
    faults = _run_balance(monitor, start=590, stop=1300, removed_w=3000.0)
    assert faults[0][0] == 590 + BALANCE_WINDOW_S


def test_balance_never_trips_while_reset_every_scan() -> None:
    monitor = _monitor()
    for second in range(0, 3600, 2):
        monitor.reset()  # contactor open: no SSR can heat
        fault = monitor.update(
            now=float(second),
            temperature_c=60.0,
            removed_w=20_000.0,
            supplied_w=0.0,
            capacity_j_k=CAPACITY_J_K,
        )
        assert fault is None


def test_balance_a_scan_without_a_temperature_reports_nothing() -> None:
    monitor = _monitor()
    assert _run_balance(monitor, start=0, stop=700, removed_w=3000.0)
    fault = monitor.update(
        now=700.0,
        temperature_c=None,
        removed_w=3000.0,
        supplied_w=AGITATOR_W,
        capacity_j_k=CAPACITY_J_K,
    )
    assert fault is None


def test_balance_never_trips_on_temperatures_it_never_had() -> None:
    monitor = _monitor()
    for second in range(0, 3600, 2):
        fault = monitor.update(
            now=float(second),
            temperature_c=None,
            removed_w=20_000.0,
            supplied_w=0.0,
            capacity_j_k=CAPACITY_J_K,
        )
        assert fault is None


def test_balance_missing_temperatures_do_not_change_when_it_trips() -> None:
    def first_fault(*, gaps: bool) -> int | None:
        monitor = _monitor()
        for second in range(0, 900, 2):
            temperature = None if gaps and second % 6 == 2 else 60.0
            fault = monitor.update(
                now=float(second),
                temperature_c=temperature,
                removed_w=3000.0,
                supplied_w=AGITATOR_W,
                capacity_j_k=CAPACITY_J_K,
            )
            if fault is not None:
                return second
        return None

    assert first_fault(gaps=False) == BALANCE_WINDOW_S
    assert first_fault(gaps=True) == BALANCE_WINDOW_S


def test_balance_negative_powers_count_as_none() -> None:
    monitor = _monitor()
    # a negative "supplied" must not make removal look larger than the sources allow
    assert _run_balance(monitor, start=0, stop=1800, removed_w=AGITATOR_W, supplied_w=-5000.0) == []


def test_balance_keeps_a_bounded_window_at_scan_rate_and_trips_as_soon() -> None:
    monitor = _monitor()
    tripped_at = None
    # 10 Hz for 700 s: 7,000 updates, one window's worth of samples kept at most
    for tick in range(7000):
        now = tick / 10
        fault = monitor.update(
            now=now,
            temperature_c=60.0,
            removed_w=3000.0,
            supplied_w=AGITATOR_W,
            capacity_j_k=CAPACITY_J_K,
        )
        if fault is not None and tripped_at is None:
            tripped_at = now
    assert tripped_at == BALANCE_WINDOW_S
    assert len(monitor._samples) <= SAMPLES_PER_WINDOW + 2
