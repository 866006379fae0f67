"""The pH circuit's calibration in one line: a slope shows only once its point is taken."""

from __future__ import annotations

from hal.calibration import CalibrationStatus, Verdict


def _status(points: int) -> CalibrationStatus:
    # The circuit answers its default 100 % for a slope whose point it has not had.
    return CalibrationStatus(
        points=points, acid_slope_pct=97.8, base_slope_pct=100.0, offset_mv=0.6, verdict=Verdict.OK
    )


def test_a_slope_shows_only_once_its_point_is_taken() -> None:
    assert _status(1).describe() == (
        "1 point(s), slopes not measured (mid point only), offset +0.6 mV: ok"
    )
    assert _status(2).describe() == (
        "2 point(s), acid slope 97.8 %, base slope not measured, offset +0.6 mV: ok"
    )
    assert _status(3).describe() == (
        "3 point(s), acid slope 97.8 %, base slope 100.0 %, offset +0.6 mV: ok"
    )
