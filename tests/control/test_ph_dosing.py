"""pH dosing on a caustic buffer at pH 11, 60 °C: filtered decisions, gain- and dead-time-aware
approach, feed-forward regulation, a counter-reagent, judged on the buffer's true pH."""

from __future__ import annotations

import math
from typing import TypedDict

import pytest

from tests.control.models import CausticBuffer
from unit_controller.config import PhTuning
from unit_controller.control import PhDose, PhDosingController, neutralising_rate_ml_min
from unit_controller.control.ph_dosing import Learned, Mode

NAOH_MOL_L = 4.0  # P-203
ACID_MOL_L = 18.0  # P-201, H2SO4
FEED_MOL_L = 2.0  # P-205, metal sulfate
SETPOINT = 11.0
TOLERANCE = 0.05
SAMPLE_S = 1.0  # an EZO reading a second
DT = 0.5


class Corner(TypedDict):
    """The probe and the mixing of one corner of the envelope."""

    probe_tau_s: float
    dead_time_s: float
    noise: float


# The envelope's corners that matter to the loop: the probe slow or quick, long or short dead
# time, noisy or quiet, and the feed's demand off either way.
CORNERS = [
    pytest.param(Corner(probe_tau_s=30.0, dead_time_s=20.0, noise=0.03), id="slow-noisy"),
    pytest.param(Corner(probe_tau_s=5.0, dead_time_s=5.0, noise=0.01), id="quick-quiet"),
    pytest.param(Corner(probe_tau_s=30.0, dead_time_s=20.0, noise=0.01), id="slow-quiet"),
    pytest.param(Corner(probe_tau_s=5.0, dead_time_s=20.0, noise=0.03), id="quick-long-noisy"),
]


def _naoh(
    tuning: PhTuning | None = None,
    *,
    counter_ratio: float | None = None,
    learned: Learned | None = None,
) -> PhDosingController:
    return PhDosingController(
        tuning=tuning or PhTuning(),
        raises_ph=True,
        reagent_mol_l=NAOH_MOL_L,
        counter_ratio=counter_ratio,
        learned=learned,
    )


def _run(
    controller: PhDosingController,
    plant: CausticBuffer,
    *,
    seconds: float,
    feed_ml_min: float = 0.0,
    setpoint: float = SETPOINT,
    with_counter: bool = False,
) -> list[tuple[float, float]]:
    """Scan the loop every DT on `plant`; (time, true pH) per step."""
    trace = []
    reading = plant.measured()
    reading_at = plant.time_s
    dose = PhDose()
    end = plant.time_s + seconds
    while plant.time_s < end:
        now = plant.time_s
        if now - reading_at >= SAMPLE_S - 1e-9:
            reading, reading_at = plant.measured(), now
        ff = neutralising_rate_ml_min(
            feed_ml_min=feed_ml_min, feed_mol_l=FEED_MOL_L, equivalents=2.0, reagent_mol_l=4.0
        )
        dose = controller.update(
            setpoint=setpoint,
            tolerance=TOLERANCE,
            measured_ph=reading,
            measured_at=reading_at,
            now=now,
            feed_forward_ml_min=ff,
            counter_max_ml_min=105.0 if with_counter else 0.0,
        )
        plant.step(
            naoh_ml_min=dose.ml_min,
            feed_ml_min=feed_ml_min,
            acid_ml_min=dose.counter_ml_min,
            dt=DT,
        )
        trace.append((plant.time_s, plant.true_ph))
    return trace


def _share_within(trace: list[tuple[float, float]], *, band: float, after_s: float = 0.0) -> float:
    window = [ph for t, ph in trace if t >= after_s]
    return sum(abs(ph - SETPOINT) <= band for ph in window) / len(window)


def test_neutralising_rate_is_two_hydroxide_per_metal() -> None:
    rate = neutralising_rate_ml_min(
        feed_ml_min=10.0, feed_mol_l=2.0, equivalents=2.0, reagent_mol_l=4.0
    )
    assert rate == pytest.approx(10.0)


@pytest.mark.parametrize("corner", CORNERS)
@pytest.mark.parametrize("equivalents", [1.9, 2.05])
def test_holds_true_ph_within_0_05_through_a_fast_feed_at_the_envelope_corners(
    corner: Corner, equivalents: float
) -> None:
    # Five times the recipe's feed into 40 L, the feed's real demand 5 % off what the
    # feed-forward assumes, metal taking its hydroxide over 30 s as it precipitates.
    plant = CausticBuffer(
        volume_l=40.0, equivalents=equivalents, precipitation_tau_s=30.0, spikes_per_h=6, **corner
    )
    controller = _naoh()
    _run(controller, plant, seconds=600)  # settle at the setpoint first, no feed
    trace = _run(controller, plant, seconds=1800, feed_ml_min=50.0)
    assert _share_within(trace, band=TOLERANCE) >= 0.9
    assert controller.plan is not None
    assert controller.plan.mode is Mode.REGULATE


def test_one_noisy_reading_or_a_spike_never_decides_a_dose() -> None:
    quiet, spiked = _naoh(), _naoh()
    for controller, spike in ((quiet, 0.0), (spiked, 0.4)):
        for k in range(60):
            value = SETPOINT + (spike if k == 59 else 0.0)
            controller.update(
                setpoint=SETPOINT,
                tolerance=TOLERANCE,
                measured_ph=value,
                measured_at=float(k),
                now=float(k),
                feed_forward_ml_min=10.0,
            )
    assert quiet.plan is not None
    assert spiked.plan is not None
    assert spiked.filtered_ph == pytest.approx(quiet.filtered_ph, abs=0.01)
    assert spiked.filter.rejected >= 1


def test_feed_forward_stays_while_the_reading_sits_inside_the_band() -> None:
    controller = _naoh()
    for k in range(120):
        dose = controller.update(
            setpoint=SETPOINT,
            tolerance=TOLERANCE,
            measured_ph=SETPOINT + 0.03,  # high, but inside the band
            measured_at=float(k),
            now=float(k),
            feed_forward_ml_min=10.0,
        )
    assert dose.ml_min == pytest.approx(10.0, rel=0.35)


def test_feed_forward_stops_only_well_past_the_setpoint() -> None:
    controller = _naoh()
    for k in range(120):
        dose = controller.update(
            setpoint=SETPOINT,
            tolerance=TOLERANCE,
            measured_ph=SETPOINT + 0.2,
            measured_at=float(k),
            now=float(k),
            feed_forward_ml_min=10.0,
        )
    assert dose.ml_min == 0.0


@pytest.mark.parametrize("corner", CORNERS)
def test_approach_lands_from_below_without_crossing_by_the_tolerance(
    corner: Corner,
) -> None:
    # From pH 9.5, where the titration is steep, with a first guess of the gain ten times off.
    plant = CausticBuffer(start_ph=9.5, volume_l=40.0, **corner)
    controller = _naoh(PhTuning(kp_ml=20.0))
    trace = _run(controller, plant, seconds=1800)
    assert plant.max_true_ph <= SETPOINT + TOLERANCE
    assert _share_within(trace, band=TOLERANCE, after_s=1200) == 1.0
    learned = controller.learned
    assert learned is not None
    # β = 2.303·n(OH⁻) at pH 11 in 40 L: ≈ 220 mL of 4 M per pH unit
    true_gain = math.log(10) * 10 ** (SETPOINT - CausticBuffer.PKW_60C) * 40.0 / NAOH_MOL_L * 1000
    assert true_gain / 2 <= learned.gain_ml <= true_gain * 2
    # dead time plus probe lag (plus the filter) is what it waits for
    delay = corner["dead_time_s"] + corner["probe_tau_s"]
    assert delay / 2 <= learned.response_s <= delay * 2 + 30


def test_counter_reagent_brings_an_overshoot_back() -> None:
    plant = CausticBuffer(start_ph=11.4, volume_l=40.0, noise=0.01)
    controller = _naoh(counter_ratio=NAOH_MOL_L / (2 * ACID_MOL_L))
    trace = _run(controller, plant, seconds=1800, with_counter=True)
    assert plant.acid_ml > 0.0
    assert plant.naoh_ml < plant.acid_ml * 9 + 5  # not a tug of war
    assert _share_within(trace, band=TOLERANCE, after_s=1200) == 1.0


def test_without_a_counter_reagent_an_overshoot_doses_nothing() -> None:
    plant = CausticBuffer(start_ph=11.4, volume_l=40.0, noise=0.01)
    controller = _naoh()
    _run(controller, plant, seconds=600)
    assert plant.naoh_ml == 0.0
    assert controller.plan is not None
    assert controller.plan.mode is Mode.PAST


def test_the_feed_brings_an_overshoot_back_when_there_is_no_counter_reagent() -> None:
    plant = CausticBuffer(start_ph=11.2, volume_l=40.0, noise=0.01, precipitation_tau_s=30.0)
    controller = _naoh(learned=Learned(gain_ml=220.0, response_s=30.0))
    trace = _run(controller, plant, seconds=2400, feed_ml_min=10.0)
    assert _share_within(trace, band=TOLERANCE, after_s=1800) == 1.0


def test_acid_doses_only_when_ph_is_above_setpoint() -> None:
    acid = PhDosingController(tuning=PhTuning(), raises_ph=False, reagent_mol_l=18.0)
    for k in range(30):
        dose = acid.update(
            setpoint=4.0, tolerance=0.1, measured_ph=3.5, measured_at=float(k), now=float(k)
        )
        assert dose.ml_min == 0.0
    acid.pause()
    for k in range(30, 60):
        dose = acid.update(
            setpoint=4.0, tolerance=0.1, measured_ph=4.5, measured_at=float(k), now=float(k)
        )
    assert acid.dosed_ml > 0.0


def test_dose_per_interval_never_exceeds_max_dose_nor_the_pump() -> None:
    tuning = PhTuning(max_dose_ml=4.0, interval_s=20.0)
    controller = _naoh(tuning)
    for k in range(600):
        dose = controller.update(
            setpoint=SETPOINT,
            tolerance=TOLERANCE,
            measured_ph=9.0,
            measured_at=float(k),
            now=float(k),
            max_ml_min=60.0,
        )
        assert 0.0 <= dose.ml_min <= 60.0
    # far below the setpoint: continuous dosing at the largest dose an interval
    assert controller.dosed_ml <= 4.0 * 600 / 20 + 1e-6


def test_bad_numbers_never_dose() -> None:
    controller = _naoh()
    dose = controller.update(
        setpoint=SETPOINT,
        tolerance=TOLERANCE,
        measured_ph=float("nan"),
        measured_at=0.0,
        now=0.0,
        feed_forward_ml_min=10.0,
    )
    assert dose == PhDose()


def test_pause_keeps_what_was_learned() -> None:
    plant = CausticBuffer(start_ph=10.0, volume_l=40.0, noise=0.01)
    controller = _naoh(PhTuning(kp_ml=20.0))
    _run(controller, plant, seconds=900)
    learned = controller.learned
    assert learned is not None
    dosed = controller.dosed_ml
    controller.pause()  # e.g. the pH reading went bad, or the batch held
    assert controller.learned == learned
    assert controller.dosed_ml == pytest.approx(dosed)
