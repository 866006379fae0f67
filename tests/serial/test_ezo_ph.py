"""EZO-pH driver against the emulator on a real pty: compensated reads and calibration.

Calibration follows the EZO's rule (mid first; mid clears the others), records the temperature of
each point, and judges slope and offset the way a technician would.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from hal.reading import BadReason
from hal.serial.ezo_ph import (
    CalibrationOrderError,
    CalibrationRefused,
    Verdict,
    judge,
)
from hal.sim.emulators.ezo import ProbeHealth
from tests.serial.conftest import PhRig


async def test_reads_with_the_compensation_temperature_and_match_the_probe(
    ph_rig: PhRig,
) -> None:
    ph_rig.unit.ph.model.stuck = True
    ph_rig.unit.ph.resample(ph_rig.unit.plant.ph)
    value = ph_rig.unit.ph.latest().value
    ph_rig.driver.compensate(62.5)
    await ph_rig.until(lambda: bool(ph_rig.sent("RT,62.5")), within_s=30.0, what="RT sent")
    since = ph_rig.clock.monotonic()
    await ph_rig.until(
        lambda: ph_rig.driver.latest().at > since, within_s=30.0, what="a compensated reading"
    )
    assert ph_rig.emulator.compensation_c == 62.5
    assert ph_rig.driver.latest().value == pytest.approx(value, abs=1e-9)


async def test_error_answers_make_the_reading_bad_naming_them_not_lost(ph_rig: PhRig) -> None:
    ph_rig.unit.ph.error = True  # the "ph_probe_dead" fault: every read answers *ER
    stale = 2 * ph_rig.driver.stale_s
    await ph_rig.until(
        lambda: ph_rig.driver.latest().age(ph_rig.clock.monotonic()) > stale,
        within_s=3 * stale,
        what="reading stale",
    )
    latest = ph_rig.driver.latest()
    assert latest.reason is BadReason.DEVICE_ERROR  # it answers: not lost
    assert "the circuit answered *ER to R" in (latest.why or "")


async def test_a_dead_probe_is_logged_once_though_each_read_carries_a_new_temperature(
    ph_rig: PhRig,
) -> None:
    # Each compensated read is RT,<temperature>: one complaint, not one per temperature.
    ph_rig.driver.compensate(55.0)
    await ph_rig.until(lambda: bool(ph_rig.sent("RT,55.0")), within_s=30.0, what="RT sent")
    ph_rig.unit.ph.error = True
    with capture_logs() as logs:
        for step in range(1, 12):
            ph_rig.driver.compensate(55.0 + step / 10)
            await ph_rig.clock.sleep(5.0)
    assert ph_rig.sent("RT,55.5")  # it kept asking, at changing temperatures
    errors = [e for e in logs if e["event"] == "ezo.error"]
    assert len(errors) == 1, errors


async def test_brownout_restores_compensation_and_continuous_mode_off(ph_rig: PhRig) -> None:
    ph_rig.driver.compensate(55.0)
    await ph_rig.until(lambda: bool(ph_rig.sent("RT,55.0")), within_s=30.0, what="RT sent")
    generation = ph_rig.driver.link.generation
    ph_rig.emulator.brownout()
    assert ph_rig.emulator.compensation_c == 25.0
    await ph_rig.until(
        lambda: ph_rig.driver.link.generation > generation, within_s=30.0, what="re-initialised"
    )
    await ph_rig.until(
        lambda: bool(ph_rig.sent("T,55.0")) and ph_rig.emulator.compensation_c == 55.0,
        within_s=30.0,
        what="T restored",
    )
    assert not ph_rig.emulator.continuous
    assert ph_rig.sent("C,0") == ["C,0", "C,0"]


async def test_three_point_calibration_records_each_temperature(ph_rig: PhRig) -> None:
    mid = await ph_rig.driver.calibrate("mid", 7.00, temperature_c=21.5)
    low = await ph_rig.driver.calibrate("low", 4.00, temperature_c=22.0)
    high = await ph_rig.driver.calibrate("high", 10.00, temperature_c=22.5)
    assert [r.status.points for r in (mid, low, high)] == [1, 2, 3]
    assert [p.temperature_c for p in high.points] == [21.5, 22.0, 22.5]
    assert [p.point for p in high.points] == ["mid", "low", "high"]
    assert high.status.verdict is Verdict.OK
    assert high.status.acid_slope_pct == pytest.approx(99.6)
    assert high.status.base_slope_pct == pytest.approx(100.4)
    # Each point is followed by Cal,? (with Slope,?); low and high first check that mid is in.
    assert ph_rig.sent("Cal,") == [
        "Cal,mid,7.00",
        "Cal,?",
        "Cal,?",
        "Cal,low,4.00",
        "Cal,?",
        "Cal,?",
        "Cal,high,10.00",
        "Cal,?",
    ]


async def test_low_before_mid_is_refused_and_nothing_is_calibrated(ph_rig: PhRig) -> None:
    with pytest.raises(CalibrationOrderError, match="mid first"):
        await ph_rig.driver.calibrate("low", 4.00, temperature_c=20.0)
    assert "Cal,low,4.00" not in ph_rig.emulator.commands


async def test_a_new_mid_point_clears_low_and_high(ph_rig: PhRig) -> None:
    await ph_rig.driver.calibrate("mid", 7.00, temperature_c=20.0)
    await ph_rig.driver.calibrate("low", 4.00, temperature_c=20.0)
    again = await ph_rig.driver.calibrate("mid", 7.00, temperature_c=24.0)
    assert again.status.points == 1
    assert [p.temperature_c for p in again.points] == [24.0]


async def test_a_tired_electrode_calibrates_with_a_warning(ph_rig: PhRig) -> None:
    ph_rig.emulator.probe = ProbeHealth(acid_pct=91.2, base_pct=99.0, offset_mv=4.0)
    await ph_rig.driver.calibrate("mid", 7.00, temperature_c=20.0)
    low = await ph_rig.driver.calibrate("low", 4.00, temperature_c=20.0)
    assert low.status.verdict is Verdict.WARN
    assert "acid slope 91.2 %" in "; ".join(low.status.problems)


async def test_a_dead_slope_is_refused_with_the_figures(ph_rig: PhRig) -> None:
    ph_rig.emulator.probe = ProbeHealth(acid_pct=80.5, base_pct=99.0, offset_mv=4.0)
    await ph_rig.driver.calibrate("mid", 7.00, temperature_c=20.0)
    with pytest.raises(CalibrationRefused) as refused:
        await ph_rig.driver.calibrate("low", 4.00, temperature_c=19.0)
    status = refused.value.result.status
    assert status.verdict is Verdict.REFUSE
    assert status.acid_slope_pct == pytest.approx(80.5)
    assert refused.value.result.point.temperature_c == 19.0
    assert "80.5 %" in str(refused.value)


async def test_an_offset_beyond_30_mv_is_refused(ph_rig: PhRig) -> None:
    ph_rig.emulator.probe = ProbeHealth(offset_mv=-42.0)
    with pytest.raises(CalibrationRefused, match=r"offset -42\.0 mV"):
        await ph_rig.driver.calibrate("mid", 7.00, temperature_c=20.0)


async def test_status_and_clear(ph_rig: PhRig) -> None:
    await ph_rig.driver.calibrate("mid", 7.00, temperature_c=20.0)
    assert (await ph_rig.driver.calibration_status()).points == 1
    await ph_rig.driver.clear_calibration()
    status = await ph_rig.driver.calibration_status()
    assert status.points == 0
    assert ph_rig.driver.calibration_points == ()


@pytest.mark.parametrize(
    ("acid", "base", "offset", "verdict"),
    [
        (95.0, 105.0, 30.0, Verdict.OK),
        (94.9, 100.0, 0.0, Verdict.WARN),
        (85.0, 100.0, 0.0, Verdict.WARN),
        (84.9, 100.0, 0.0, Verdict.REFUSE),
        (100.0, 100.0, 30.1, Verdict.REFUSE),
        (100.0, 100.0, -30.1, Verdict.REFUSE),
    ],
)
def test_slope_and_offset_bounds(acid: float, base: float, offset: float, verdict: Verdict) -> None:
    assert judge(acid_pct=acid, base_pct=base, offset_mv=offset)[0] is verdict
