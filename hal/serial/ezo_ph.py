"""EZO-pH driver: temperature-compensated reads and calibration as library calls for the console.

Calibration runs on the device task between polls (one command at a time on the wire). Never
accepts a calibration whose slope or offset is out of bounds; never blocks the event loop.
"""

from __future__ import annotations

import math

# The data types live in hal.calibration (shared with the mock); importable from here too.
from hal.calibration import (
    OFFSET_LIMIT_MV,
    SLOPE_OK_PCT,
    SLOPE_WARN_HIGH_PCT,
    SLOPE_WARN_LOW_PCT,
    CalibrationOrderError,
    CalibrationPoint,
    CalibrationRefused,
    CalibrationResult,
    CalibrationStatus,
    CalPoint,
    Verdict,
    calibration_done,
    judge,
)
from hal.log import get_logger
from hal.serial.ezo_link import CAL_S, EzoGarbage, ezo_number
from hal.serial.ezo_rtd import EzoSensor

log = get_logger(__name__)

CALIBRATION_TIMEOUT_S = 30.0

__all__ = [
    "CALIBRATION_TIMEOUT_S",
    "OFFSET_LIMIT_MV",
    "SLOPE_OK_PCT",
    "SLOPE_WARN_HIGH_PCT",
    "SLOPE_WARN_LOW_PCT",
    "CalPoint",
    "CalibrationOrderError",
    "CalibrationPoint",
    "CalibrationRefused",
    "CalibrationResult",
    "CalibrationStatus",
    "EzoPhProbe",
    "Verdict",
    "judge",
]


# `RT,<t>` (compensate and read in one) came with pH firmware 2.12; older circuits take `T,<t>`
# and then `R`.
RT_FIRMWARE = (2, 12)
# A compensation this close to the one the circuit holds is not sent again.
T_RESEND_C = 0.1


class EzoPhProbe(EzoSensor):
    """EZO-pH reactor pH, a `PhProbe`: polls `RT,<°C>` with the newest compensation temperature
    (on firmware before 2.12, `T,<°C>` when it moves, then `R`)."""

    circuit = "pH"
    default_stale_s = 10.0
    _compensation_c: float | None = None
    _sent_t: float | None = None  # the T the circuit holds (older firmware)
    # Replaced, never mutated in place: a class-level empty tuple is a safe start.
    _points: tuple[CalibrationPoint, ...] = ()

    def compensate(self, temperature_c: float) -> None:
        """Compensate the next readings for this process temperature (°C, from TT-101)."""
        if math.isfinite(temperature_c):
            self._compensation_c = temperature_c

    def _has_rt(self) -> bool:
        firmware = self.link.firmware
        return firmware is None or firmware.at_least(*RT_FIRMWARE)

    def _read_command(self) -> str:
        if self._compensation_c is None or not self._has_rt():
            return "R"
        return f"RT,{self._compensation_c:.1f}"

    async def _before_read(self) -> None:
        wanted = self._compensation_c
        if self._has_rt() or wanted is None:
            return
        if self._sent_t is None or abs(wanted - self._sent_t) >= T_RESEND_C:
            await self.ask(f"T,{wanted:.1f}")
            self._sent_t = wanted

    async def _on_initialised(self) -> None:
        # A rebooted circuit forgets T; RT restores it on every read, T covers a plain R.
        self._sent_t = None
        if self._compensation_c is not None:
            await self.ask(f"T,{self._compensation_c:.1f}")
            self._sent_t = self._compensation_c

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
            self._sent_t = temperature_c
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
        return calibration_done(
            result, tag=self.tag, point=point, value=value, temperature_c=temperature_c
        )

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
        try:
            acid, base, offset = _fields(lines, "?SLOPE", 3, tag=self.tag, command="Slope,?")
        except EzoGarbage:
            # Older firmware gives the two slopes without the zero-point offset.
            acid, base = _fields(lines, "?SLOPE", 2, tag=self.tag, command="Slope,?")
            offset = 0.0
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
                values = [ezo_number(p) for p in parts[1:]]
            except ValueError:
                break
            if all(math.isfinite(v) for v in values):
                return values
    raise EzoGarbage(f"malformed reply {lines!r}", tag=tag, command=command)
