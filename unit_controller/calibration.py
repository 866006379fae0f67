"""Console calibration of the pH probe and the dosing pumps (DESIGN §4), as plain-dict results.

Checks every value before a device is asked; never calibrates while a batch is under way and
never holds the scan lock while a device works (a calibration takes seconds on the wire).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hal.calibration import (
    CAL_POINTS,
    PUMP_CAL_RATIO,
    CalibrationOrderError,
    CalibrationRefused,
    CalibrationResult,
    CalibrationStatus,
    CalPoint,
)
from hal.devices import PhCalibration, PumpCalibration
from hal.log import get_logger
from hal.reading import Reading
from unit_controller.controller import UnitController
from unit_controller.errors import CommandRefused
from unit_controller.ph_buffers import BUFFER_C_RANGE, ROOM_C_RANGE, buffer_problem

log = get_logger(__name__)

MAX_MEASURED_ML = 1000.0


def _status_dict(tag: str, status: CalibrationStatus) -> dict[str, object]:
    return {
        "probe": tag,
        "points": status.points,
        "calibrated": status.points > 0,
        "acid_slope_pct": status.acid_slope_pct,
        "base_slope_pct": status.base_slope_pct,
        "offset_mv": status.offset_mv,
        "verdict": str(status.verdict),
        "problems": list(status.problems),
        "summary": status.describe(),
    }


def _check_buffer(point: str, value: float) -> CalPoint:
    """The point as a CalPoint, if `value` is a plausible buffer for it; else CommandRefused."""
    name = point.strip().lower()
    cal_point = next((p for p in CAL_POINTS if p == name), None)
    if cal_point is None:
        raise CommandRefused(f"calibration point must be mid, low or high, not {point!r}")
    problem = buffer_problem(cal_point, value)
    if problem is not None:
        raise CommandRefused(problem)
    return cal_point


class PhCalibrationRefused(CommandRefused):
    """A pH point judged out of bounds; the circuit's calibration was cleared."""

    def __init__(self, message: str, *, point: str, value: float) -> None:
        super().__init__(message)
        self.point = point
        self.value = value


class Calibrations:
    """pH and pump calibration for the control socket; every refusal is a CommandRefused."""

    def __init__(self, *, controller: UnitController) -> None:
        self._controller = controller
        self._wiring = controller.config.wiring

    async def ph(
        self,
        point: str,
        value: float,
        *,
        temperature_c: float | None = None,
        source: str = "console",
    ) -> dict[str, object]:
        """Calibrate `point` (mid first, then low and high) in a buffer of pH `value`.

        The buffer temperature is `temperature_c`, else the reactor temperature (TT-101).
        """
        cal_point = _check_buffer(point, value)
        temperature = self._buffer_temperature(temperature_c)
        tag = self._wiring.ph_tag
        async with self._device_work(f"calibrate the pH probe {tag}"):
            probe = self._ph_probe()
            try:
                result = await probe.calibrate(cal_point, value, temperature_c=temperature)
            except CalibrationOrderError:
                raise CommandRefused(
                    f"cannot calibrate {cal_point} before mid: calibrate {tag} in the mid buffer "
                    "(e.g. pH 7.00) first; a new mid point clears low and high"
                ) from None
            except CalibrationRefused as exc:
                # The circuit took the point all the same: a batch would run on a calibration
                # just judged wrong. Cleared, the probe is uncalibrated, and says so (due).
                await probe.clear_calibration()
                await self._controller.report_command(
                    f"pH calibration cleared: {cal_point} {value:.2f} refused",
                    command="cal ph clear",
                    source=source,
                    probe=tag,
                )
                raise PhCalibrationRefused(
                    f"pH calibration refused at {cal_point} {value:.2f}: "
                    f"{exc.result.status.describe()}; the probe's calibration is cleared (it "
                    "would read wrong): clean or replace the electrode and calibrate again "
                    "from mid",
                    point=cal_point,
                    value=value,
                ) from None
        await self._controller.report_command(
            f"pH calibration {cal_point} {value:.2f}",
            command="cal ph",
            source=source,
            probe=tag,
            point=cal_point,
            value=value,
            verdict=str(result.status.verdict),
        )
        return self._result_dict(tag, result)

    async def ph_status(self) -> dict[str, object]:
        """The pH probe's calibration now: points, slopes, offset and verdict."""
        tag = self._wiring.ph_tag
        async with self._device_work(f"read the calibration of {tag}"):
            status = await self._ph_probe().calibration_status()
        return _status_dict(tag, status)

    async def ph_clear(self, *, source: str = "console") -> dict[str, object]:
        """Forget every pH calibration point; returns the status after."""
        tag = self._wiring.ph_tag
        async with self._device_work(f"clear the calibration of {tag}"):
            probe = self._ph_probe()
            await probe.clear_calibration()
            status = await probe.calibration_status()
        await self._controller.report_command(
            "pH calibration cleared", command="cal ph clear", source=source, probe=tag
        )
        return {**_status_dict(tag, status), "cleared": True}

    async def pump(
        self, tag: str, measured_ml: float, *, source: str = "console"
    ) -> dict[str, object]:
        """Calibrate pump `tag` with the volume its last dose really measured (mL)."""
        name = tag.strip().upper()
        pumps = self._wiring.pumps()
        if name not in pumps:
            raise CommandRefused(
                f"no dosing pump {tag!r} on this unit; pumps are {', '.join(sorted(pumps))}"
            )
        if not (math.isfinite(measured_ml) and 0.0 < measured_ml <= MAX_MEASURED_ML):
            raise CommandRefused(
                f"measured volume must be more than 0 and at most {MAX_MEASURED_ML:g} mL, "
                f"got {measured_ml:g}"
            )
        async with self._device_work(f"calibrate pump {name}"):
            self._measured_run(name, measured_ml)
            pump = self._pump(name)
            calibrated = await pump.calibrate(measured_ml)
        self._controller.calibrated_against(name)
        await self._controller.report_command(
            f"pump calibration {name} {measured_ml:g} mL",
            command="cal pump",
            source=source,
            pump=name,
            measured_ml=measured_ml,
            calibrated=calibrated,
        )
        return {"pump": name, "measured_ml": measured_ml, "calibrated": calibrated}

    # --- helpers ---------------------------------------------------------------------------
    def _measured_run(self, name: str, measured_ml: float) -> None:
        """Refuse a pump calibration with nothing measured to stand on."""
        nominal = self._controller.cylinder_run_ml(name)
        again = f"jog pump {name} 10 cylinder, measure what it dispensed, then cal pump {name} <ml>"
        if nominal is None:
            # The circuit takes Cal,<ml> against whatever it ran last: a recipe's dose, a jog
            # into the reactor, a run already calibrated against. Only a measured one counts.
            raise CommandRefused(
                f"cannot calibrate {name}: its last run was not a whole dose into a measuring "
                f"cylinder (or was calibrated against already): {again}"
            )
        low, high = PUMP_CAL_RATIO
        if not low <= measured_ml / nominal <= high:
            raise CommandRefused(
                f"cannot calibrate {name}: {measured_ml:g} mL measured after a run of "
                f"{nominal:.2f} mL is more than {high:g}× off (a misread cylinder?): {again}"
            )

    @asynccontextmanager
    async def _device_work(self, what: str) -> AsyncIterator[None]:
        """No batch under way (and none starts) while `what` runs; device errors become one line."""
        async with self._controller.outside_batch(what):
            try:
                yield
            except CommandRefused:
                raise
            except ValueError as exc:  # the device's own bounds
                raise CommandRefused(f"cannot {what}: {exc}") from None
            except Exception as exc:  # no answer, refused command: the tech must know
                log.warning("calibration.failed", what=what, error=str(exc))
                raise CommandRefused(f"cannot {what}: {exc}") from exc

    def _ph_probe(self) -> PhCalibration:
        probe = self._controller.board.ph_calibration()
        if probe is None:
            raise CommandRefused(
                f"{self._wiring.ph_tag}: this backend cannot calibrate the pH probe"
            )
        image = self._controller.snapshot.image if self._controller.snapshot else None
        self._answering(self._wiring.ph_tag, image.ph if image is not None else None)
        return probe

    def _pump(self, tag: str) -> PumpCalibration:
        pump = self._controller.board.pump_calibration(tag)
        if pump is None:
            raise CommandRefused(f"{tag}: this backend cannot calibrate the pump")
        image = self._controller.snapshot.image if self._controller.snapshot else None
        self._answering(tag, image.dispensed_ml.get(tag) if image is not None else None)
        return pump

    @staticmethod
    def _answering(tag: str, reading: Reading[float] | None) -> None:
        # A circuit the scan already finds silent would only be waited on for the request's
        # whole timeout, and the tech told the controller did not answer.
        if reading is not None and reading.reason is not None and reading.reason.silent:
            raise CommandRefused(
                f"{tag} is not answering ({reading.why}): check its cable, then try again"
            )

    def _buffer_temperature(self, temperature_c: float | None) -> float:
        if temperature_c is not None:
            low, high = BUFFER_C_RANGE
            if not (math.isfinite(temperature_c) and low <= temperature_c <= high):
                raise CommandRefused(
                    f"buffer temperature must be {low:g} to {high:g} °C, got {temperature_c:g}"
                )
            return temperature_c
        snapshot = self._controller.snapshot
        reading = snapshot.image.temperature if snapshot is not None else None
        if reading is None or not reading.good or reading.value is None:
            raise CommandRefused(
                f"{self._wiring.rtd_tag} gives no good temperature: give the buffer temperature"
            )
        low, high = ROOM_C_RANGE
        if not low <= reading.value <= high:
            # The probe sits in a beaker of buffer at room temperature: a reactor warmer or
            # colder than a room (55 °C at the end of a co-precipitation) says nothing of it.
            raise CommandRefused(
                f"{self._wiring.rtd_tag} reads {reading.value:.1f} °C, no buffer's temperature: "
                "give the buffer's (e.g. cal ph mid 7.00 22)"
            )
        return reading.value

    @staticmethod
    def _result_dict(tag: str, result: CalibrationResult) -> dict[str, object]:
        point = result.point
        return {
            **_status_dict(tag, result.status),
            "point": point.point,
            "value": point.value,
            "temperature_c": point.temperature_c,
            "calibrated_points": [p.point for p in result.points],
        }
