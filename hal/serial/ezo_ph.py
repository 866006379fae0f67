"""EZO-pH driver: temperature-compensated reads and calibration as library calls for the console.

Calibration runs on the device task between polls (one command at a time on the wire). Never
accepts a calibration whose slope or offset is out of bounds; never blocks the event loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import structlog

from hal.serial.ezo_link import CAL_S, EzoGarbage
from hal.serial.ezo_rtd import EzoSensor

log = structlog.get_logger(__name__)

CalPoint = Literal["mid", "low", "high"]
SLOPE_OK_PCT = (95.0, 105.0)
SLOPE_WARN_LOW_PCT = 85.0  # 85–95 % warns; below refuses
SLOPE_WARN_HIGH_PCT = 115.0  # 105–115 % warns; above is no glass electrode we know: refuse
OFFSET_LIMIT_MV = 30.0
CALIBRATION_TIMEOUT_S = 30.0


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
        return (
            f"{self.points} point(s), acid slope {self.acid_slope_pct:.1f} %, base slope "
            f"{self.base_slope_pct:.1f} %, offset {self.offset_mv:+.1f} mV: {self.verdict}"
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


class CalibrationRefused(Exception):
    """The probe's slope or offset is out of bounds; `result` carries the figures."""

    def __init__(self, result: CalibrationResult) -> None:
        super().__init__(f"pH calibration refused: {result.status.describe()}")
        self.result = result


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


class EzoPhProbe(EzoSensor):
    """EZO-pH reactor pH, a `PhProbe`: polls `RT,<°C>` with the newest compensation temperature."""

    default_stale_s = 10.0
    _compensation_c: float | None = None
    # Replaced, never mutated in place: a class-level empty tuple is a safe start.
    _points: tuple[CalibrationPoint, ...] = ()

    def compensate(self, temperature_c: float) -> None:
        """Compensate the next readings for this process temperature (°C, from TT-101)."""
        if math.isfinite(temperature_c):
            self._compensation_c = temperature_c

    def _read_command(self) -> str:
        return "R" if self._compensation_c is None else f"RT,{self._compensation_c:.1f}"

    async def _on_initialised(self) -> None:
        # A rebooted circuit forgets T; RT restores it on every read, T covers a plain R.
        if self._compensation_c is not None:
            await self.ask(f"T,{self._compensation_c:.1f}")

    # --- calibration (console library calls) ------------------------------------------------

    async def calibrate(
        self, point: CalPoint, value: float, *, temperature_c: float
    ) -> CalibrationResult:
        """Calibrate one point in a buffer of pH `value` at `temperature_c`; mid first. Raises
        CalibrationOrderError, or CalibrationRefused when the result is out of bounds."""
        if point not in ("mid", "low", "high"):
            raise ValueError(f"calibration point must be mid, low or high, not {point!r}")
        if not (math.isfinite(value) and math.isfinite(temperature_c)):
            raise ValueError("buffer pH and temperature must be finite numbers")

        async def work() -> CalibrationResult:
            if point != "mid" and (await self._query_points()) == 0:
                raise CalibrationOrderError(
                    f"{self.tag}: calibrate mid first (Cal,? reports 0 points; "
                    f"Cal,mid clears low and high on the EZO)"
                )
            # The circuit compensates the buffer reading for the buffer's temperature.
            await self.ask(f"T,{temperature_c:.1f}")
            await self.ask(f"Cal,{point},{value:.2f}", wait_s=CAL_S)
            status = await self._status()
            record = CalibrationPoint(
                point=point, value=value, temperature_c=temperature_c, at=self.clock.monotonic()
            )
            if point == "mid":
                self._points = ()
            self._points = (*(p for p in self._points if p.point != point), record)
            return CalibrationResult(point=record, points=self._points, status=status)

        result = await self.call(work, timeout_s=CALIBRATION_TIMEOUT_S)
        log.info(
            "ph.calibrated",
            tag=self.tag,
            point=point,
            value=value,
            temperature_c=temperature_c,
            status=result.status.describe(),
        )
        if result.status.verdict is Verdict.REFUSE:
            raise CalibrationRefused(result)
        return result

    async def clear_calibration(self) -> None:
        """Forget every calibration point (`Cal,clear`)."""

        async def work() -> None:
            await self.ask("Cal,clear")
            self._points = ()

        await self.call(work, timeout_s=CALIBRATION_TIMEOUT_S)

    async def calibration_status(self) -> CalibrationStatus:
        """The circuit's calibration now (`Cal,?` and `Slope,?`) with its verdict."""
        return await self.call(self._status, timeout_s=CALIBRATION_TIMEOUT_S)

    @property
    def calibration_points(self) -> tuple[CalibrationPoint, ...]:
        """The points calibrated through this driver since the last mid, with temperatures."""
        return self._points

    async def _query_points(self) -> int:
        lines = await self.ask("Cal,?")
        fields = _fields(lines, "?CAL", 1, tag=self.tag, command="Cal,?")
        return int(fields[0])

    async def _status(self) -> CalibrationStatus:
        lines = await self.ask("Slope,?")
        acid, base, offset = _fields(lines, "?SLOPE", 3, tag=self.tag, command="Slope,?")
        points = await self._query_points()
        verdict, problems = judge(acid_pct=acid, base_pct=base, offset_mv=offset)
        return CalibrationStatus(
            points=points,
            acid_slope_pct=acid,
            base_slope_pct=base,
            offset_mv=offset,
            verdict=verdict,
            problems=problems,
        )


def _fields(lines: list[str], prefix: str, count: int, *, tag: str, command: str) -> list[float]:
    """The `count` numbers of a `?PREFIX,a,b,...` reply line."""
    for line in reversed(lines):
        parts = line.split(",")
        if parts[0].upper() == prefix and len(parts) == count + 1:
            try:
                values = [float(p) for p in parts[1:]]
            except ValueError:
                break
            if all(math.isfinite(v) for v in values):
                return values
    raise EzoGarbage(f"malformed reply {lines!r}", tag=tag, command=command)
