"""Calibration records and verdicts shared by every pH probe and dosing pump backend.

Plain data and pure judgement (DESIGN §4): never speaks to a device and never imports a backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from hal.log import get_logger

log = get_logger(__name__)

CalPoint = Literal["mid", "low", "high"]
CAL_POINTS: tuple[CalPoint, ...] = ("mid", "low", "high")
SLOPE_OK_PCT = (95.0, 105.0)
SLOPE_WARN_LOW_PCT = 85.0  # 85–95 % warns; below refuses
SLOPE_WARN_HIGH_PCT = 115.0  # 105–115 % warns; above is no glass electrode we know: refuse
OFFSET_LIMIT_MV = 30.0
# A pump's measured volume this far off the run it measures is a misread, not a calibration.
PUMP_CAL_RATIO = (0.5, 2.0)
# RT·ln10/F: the ideal glass electrode's slope per kelvin (59.16 mV/pH at 25 °C).
NERNST_MV_PER_PH_PER_K = 0.198416


def nernst_mv_per_ph(temperature_c: float) -> float:
    """The ideal electrode slope in mV per pH at `temperature_c`."""
    return NERNST_MV_PER_PH_PER_K * (temperature_c + 273.15)


class Verdict(StrEnum):
    """What a calibration is fit for."""

    OK = "ok"
    WARN = "warn"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class CalibrationStatus:
    """The circuit's calibration: points (`Cal,?`), slopes and offset (`Slope,?`), verdict."""

    points: int
    acid_slope_pct: float
    base_slope_pct: float
    offset_mv: float
    verdict: Verdict
    problems: tuple[str, ...] = ()

    def describe(self) -> str:
        """The figures in one line, for the operator."""
        # A slope is measured by its point (the EZO takes mid, then low, then high): before
        # it the circuit reports its default 100 %, which measures nothing.
        acid = f"acid slope {self.acid_slope_pct:.1f} %"
        if self.points <= 1:
            slopes = "slopes not measured (mid point only)"
        elif self.points == 2:
            slopes = f"{acid}, base slope not measured"
        else:
            slopes = f"{acid}, base slope {self.base_slope_pct:.1f} %"
        return (
            f"{self.points} point(s), {slopes}, offset {self.offset_mv:+.1f} mV: {self.verdict}"
            + (f" ({'; '.join(self.problems)})" if self.problems else "")
        )


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    """One buffer the probe was calibrated in, with the temperature it was at."""

    point: CalPoint
    value: float
    temperature_c: float
    at: float


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """The record of one calibration step: the point, every point since the last mid, status."""

    point: CalibrationPoint
    points: tuple[CalibrationPoint, ...]
    status: CalibrationStatus


class CalibrationOrderError(ValueError):
    """A low or high point without a mid point first (the EZO needs mid first)."""


def calibration_done(
    result: CalibrationResult, *, tag: str, point: str, value: float, temperature_c: float
) -> CalibrationResult:
    """Log a pH calibration point taken; raise CalibrationRefused when the verdict is refuse
    (the point is in the circuit either way: the caller must not accept it)."""
    log.info(
        "ph.calibrated",
        tag=tag,
        point=point,
        value=value,
        temperature_c=temperature_c,
        status=result.status.describe(),
    )
    if result.status.verdict is Verdict.REFUSE:
        raise CalibrationRefused(result)
    return result


class CalibrationRefused(Exception):
    """The probe's slope or offset is out of bounds; `result` carries the figures."""

    def __init__(self, result: CalibrationResult) -> None:
        super().__init__(f"pH calibration refused: {result.status.describe()}")
        self.result = result


class CalibrationFailed(Exception):
    """The device could not take the calibration at all (no reading, no answer)."""


def judge(*, acid_pct: float, base_pct: float, offset_mv: float) -> tuple[Verdict, tuple[str, ...]]:
    """Verdict on slopes (ok 95–105 %, warn 85–95 or 105–115 %) and offset (within ±30 mV)."""
    refuse: list[str] = []
    warn: list[str] = []
    for name, pct in (("acid", acid_pct), ("base", base_pct)):
        if not SLOPE_WARN_LOW_PCT <= pct <= SLOPE_WARN_HIGH_PCT:
            refuse.append(f"{name} slope {pct:.1f} % outside {SLOPE_WARN_LOW_PCT:g}–115 %")
        elif not SLOPE_OK_PCT[0] <= pct <= SLOPE_OK_PCT[1]:
            warn.append(f"{name} slope {pct:.1f} % outside 95–105 %")
    if abs(offset_mv) > OFFSET_LIMIT_MV:
        refuse.append(f"offset {offset_mv:+.1f} mV beyond ±{OFFSET_LIMIT_MV:g} mV")
    if refuse:
        return Verdict.REFUSE, tuple(refuse + warn)
    return (Verdict.WARN, tuple(warn)) if warn else (Verdict.OK, ())
