"""Mock devices on the plant simulator, behaving like the real instruments at their interface.

Never blocks; never lets an output outlive its lease (the same rule the hardware enforces).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from hal.calibration import (
    CAL_POINTS,
    CalibrationFailed,
    CalibrationOrderError,
    CalibrationPoint,
    CalibrationResult,
    CalibrationStatus,
    CalPoint,
    calibration_done,
    judge,
    nernst_mv_per_ph,
)
from hal.clock import Clock
from hal.log import get_logger
from hal.reading import BadReason, Reading
from hal.sim.sensors import PhElectrode, SensorModel

# An EZO circuit answers a read in about 900 ms, so a new sample arrives about once a second.
SAMPLE_PERIOD_S = 1.0
# What an EZO-RTD reports with its probe disconnected.
RTD_OPEN_CIRCUIT_C = -1023.0
# A slope this flat (as a fraction) is no electrode: readings are not corrected by it.
_DEGENERATE_SLOPE = 0.05

log = get_logger(__name__)


class Answering:
    """A device that may stop answering for a while (fault `device_silent`); its readings then
    say so."""

    _clock: Clock
    _silent_from = 0.0
    _silent_until = -1.0
    _went_silent = False  # never silent yet: no clock to ask (every read asks)

    @property
    def silent(self) -> bool:
        """True while the device does not answer."""
        return self._went_silent and self._clock.monotonic() < self._silent_until

    def go_silent(self, for_s: float) -> None:
        """Answer nothing for `for_s` seconds from now."""
        self._went_silent = True
        self._silent_from = self._clock.monotonic()
        self._silent_until = self._silent_from + for_s

    def _no_answer(self) -> Reading[Any] | None:
        if not self._went_silent or not self.silent:
            return None
        now = self._clock.monotonic()
        silent_s = now - self._silent_from
        return Reading.bad(
            BadReason.NO_RESPONSE,
            now,
            f"no answer for {silent_s:.0f} s" if silent_s >= 1.0 else "stopped answering",
        )


class _Sampled(Answering):
    """A probe whose newest sample is refreshed once per sample period from a sensor model."""

    def __init__(self, *, tag: str, model: SensorModel, clock: Clock) -> None:
        self.tag = tag
        self.model = model
        self._clock = clock
        self._next_sample = clock.monotonic()
        self._latest: Reading[float] = Reading.bad(BadReason.NO_READING_YET, clock.monotonic())
        self.error = False  # fault: the circuit answers every read with *ER

    def sample(self, true_value: float, dt: float) -> None:
        """Advance the sensor model and take a sample when one is due."""
        self.model.update(true_value, dt)
        now = self._clock.monotonic()
        if now + 1e-9 < self._next_sample:
            return
        self._next_sample = now + SAMPLE_PERIOD_S
        value = self._measure()
        if self.error or value is None:
            # A failed read leaves the last sample to go stale, as a real driver would.
            return
        self._latest = Reading.ok(round(value, 3), now)

    def _measure(self) -> float | None:
        return self.model.value

    def resample(self, true_value: float) -> None:
        """Take a sample now, whatever the schedule (after the simulator preloads the plant)."""
        self._next_sample = self._clock.monotonic()
        self.sample(true_value, 0.0)

    def latest(self) -> Reading[float]:
        """The newest sample."""
        if not self._went_silent:
            return self._latest
        silent: Reading[float] | None = self._no_answer()
        return silent or self._latest


class MockRtd(_Sampled):
    """EZO-RTD on the reactor temperature."""

    open_circuit = False  # fault: probe disconnected; the circuit reads -1023

    def _measure(self) -> float | None:
        return RTD_OPEN_CIRCUIT_C if self.open_circuit else self.model.value


class MockPhProbe(_Sampled):
    """EZO-pH on the reactor pH, calibrated like the circuit: mid first, then low and high.

    The electrode's voltage follows the true process temperature and the circuit converts it at
    the compensation temperature it was given (25 °C until then), so a wrong compensation reads
    wrong. A buffer reads what the sensor model's slope, offset and faults make of it (a healthy
    model reads it exactly: 100 % slopes); once calibrated, readings are corrected as the EZO
    does. A stuck probe repeats its last reading exactly.
    """

    compensation_c: float | None = None
    process_c: float = 25.0  # the true temperature the electrode sits at (set by the plant)

    def __init__(
        self,
        *,
        tag: str,
        model: SensorModel,
        clock: Clock,
        electrode: PhElectrode | None = None,
    ) -> None:
        super().__init__(tag=tag, model=model, clock=clock)
        self.electrode = electrode
        self._points: tuple[CalibrationPoint, ...] = ()
        self._read_at: dict[CalPoint, float] = {}  # what the probe read in each buffer
        self._last: float | None = None
        # Called after each change to the calibration: the circuit keeps it through a power
        # cycle, so a simulated unit that restarts keeps it too (see `memory`).
        self.remember: Callable[[], Awaitable[None]] | None = None

    def compensate(self, temperature_c: float) -> None:
        """Convert the electrode's voltage at this temperature from now on."""
        self.compensation_c = temperature_c

    def sample(self, true_value: float, dt: float) -> None:
        """Advance the electrode (drift) and the sensor model; sample when due."""
        if self.electrode is not None:
            self.electrode.advance(dt)
        super().sample(true_value, dt)

    def bias(self, ph: float) -> float:
        """How far the noise-free, settled reading sits from `ph` (offset, drift, compensation):
        the error no controller can see. Calibration corrections are not included."""
        if self.electrode is None:
            return self.model.offset
        compensation = 25.0 if self.compensation_c is None else self.compensation_c
        membrane = self.model.slope_ref + self.model.slope * (ph - self.model.slope_ref)
        membrane += self.model.offset
        converted = self.electrode.convert(
            membrane, process_c=self.process_c, compensation_c=compensation
        )
        return converted - ph

    def _measure(self) -> float | None:
        membrane = self.model.value
        if membrane is None:
            return None
        if self.model.stuck and self._last is not None:
            return self._last
        raw = membrane
        if self.electrode is not None:
            raw = self.electrode.read(
                membrane,
                process_c=self.process_c,
                compensation_c=25.0 if self.compensation_c is None else self.compensation_c,
                sample_s=SAMPLE_PERIOD_S,
            )
        mid = self._point("mid")
        if mid is not None:
            read_mid = self._read_at["mid"]
            acid, base = self._slopes()
            slope = acid if raw < read_mid else base
            if slope < _DEGENERATE_SLOPE:
                slope = 1.0
            raw = mid.value + (raw - read_mid) / slope
        self._last = raw
        return raw

    async def calibrate(
        self, point: CalPoint, value: float, *, temperature_c: float
    ) -> CalibrationResult:
        """Calibrate one point in a buffer of pH `value` at `temperature_c`; mid first. Raises
        CalibrationOrderError, CalibrationRefused (out of bounds) or CalibrationFailed (dead)."""
        if point not in CAL_POINTS:
            raise ValueError(f"calibration point must be mid, low or high, not {point!r}")
        if not (math.isfinite(value) and math.isfinite(temperature_c)):
            raise ValueError("buffer pH and temperature must be finite numbers")
        if point != "mid" and self._point("mid") is None:
            raise CalibrationOrderError(
                f"{self.tag}: calibrate mid first (no mid point yet; a mid point clears low "
                "and high, as on the EZO)"
            )
        read = self._buffer_reading(value)
        if point == "mid":
            self._points = ()
            self._read_at = {}
        record = CalibrationPoint(
            point=point, value=value, temperature_c=temperature_c, at=self._clock.monotonic()
        )
        self._points = (*(p for p in self._points if p.point != point), record)
        self._read_at[point] = read
        if self.remember is not None:
            await self.remember()
        result = CalibrationResult(point=record, points=self._points, status=self._status())
        return calibration_done(
            result, tag=self.tag, point=point, value=value, temperature_c=temperature_c
        )

    async def calibration_status(self) -> CalibrationStatus:
        """The calibration now: points, slopes, offset and verdict."""
        return self._status()

    async def clear_calibration(self) -> None:
        """Forget every calibration point."""
        self._points = ()
        self._read_at = {}
        if self.remember is not None:
            await self.remember()

    def memory(self) -> dict[str, list[dict[str, object]]]:
        """What the circuit keeps through a power cycle: each point, and what it read there."""
        return {
            "points": [
                {
                    "point": p.point,
                    "value": p.value,
                    "temperature_c": p.temperature_c,
                    "read": self._read_at[p.point],
                }
                for p in self._points
            ]
        }

    def restore(self, memory: object) -> None:
        """Take back what `memory()` gave; ValueError (nothing changed) if it is not that."""
        rows = memory.get("points") if isinstance(memory, dict) else None
        if not isinstance(rows, list) or len(rows) > len(CAL_POINTS):
            raise ValueError("no list of at most three points")
        points: list[CalibrationPoint] = []
        read_at: dict[CalPoint, float] = {}
        now = self._clock.monotonic()
        for row in rows:
            point = row.get("point") if isinstance(row, dict) else None
            if point not in CAL_POINTS or point in read_at:
                raise ValueError(f"not a calibration point: {row!r:.80}")
            value, temperature_c = _finite(row.get("value")), _finite(row.get("temperature_c"))
            points.append(CalibrationPoint(point, value, temperature_c, at=now))
            read_at[point] = _finite(row.get("read"))
        if points and "mid" not in read_at:
            raise ValueError("low or high without mid")
        self._points, self._read_at = tuple(points), read_at

    @property
    def calibration_points(self) -> tuple[CalibrationPoint, ...]:
        """The points calibrated since the last mid, with temperatures."""
        return self._points

    def _buffer_reading(self, value: float) -> float:
        """What the uncorrected probe reads, settled in a buffer of pH `value`."""
        model = self.model
        if self.error or model.value is None:
            raise CalibrationFailed(f"{self.tag}: the probe gives no reading to calibrate on")
        if model.stuck:
            return model.value  # a stuck probe reads the same in any buffer
        return model.slope_ref + model.slope * (value - model.slope_ref) + model.offset

    def _point(self, point: CalPoint) -> CalibrationPoint | None:
        return next((p for p in self._points if p.point == point), None)

    def _slopes(self) -> tuple[float, float]:
        """Acid and base slopes as fractions of the ideal (1.0 until their point is in)."""
        return self._slope("low"), self._slope("high")

    def _slope(self, point: CalPoint) -> float:
        mid, other = self._point("mid"), self._point(point)
        if mid is None or other is None or other.value == mid.value:
            return 1.0
        return (self._read_at[point] - self._read_at["mid"]) / (other.value - mid.value)

    def _status(self) -> CalibrationStatus:
        mid = self._point("mid")
        acid, base = self._slopes()
        offset_mv = 0.0
        if mid is not None:
            offset_mv = (self._read_at["mid"] - mid.value) * nernst_mv_per_ph(mid.temperature_c)
        acid_pct, base_pct = round(acid * 100.0, 1), round(base * 100.0, 1)
        offset_mv = round(offset_mv, 2)
        verdict, problems = judge(acid_pct=acid_pct, base_pct=base_pct, offset_mv=offset_mv)
        return CalibrationStatus(
            points=len(self._points),
            acid_slope_pct=acid_pct,
            base_slope_pct=base_pct,
            offset_mv=offset_mv,
            verdict=verdict,
            problems=problems,
        )


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r:.40}")
    return float(value)


class MockDigitalInput(Answering):
    """A level switch or E-stop contact on the relay board's inputs."""

    def __init__(self, *, tag: str, clock: Clock) -> None:
        self.tag = tag
        self._clock = clock
        self.forced: bool | None = None  # fault: switch stuck at this value
        self._latest: Reading[bool] = Reading.bad(BadReason.NO_READING_YET, clock.monotonic())

    def sample(self, true_value: bool, *, now: float | None = None) -> None:
        """Take the switch's state (inputs are polled every scan on the board); `now`: the
        clock's time, when the caller has it already."""
        value = true_value if self.forced is None else self.forced
        self._latest = Reading.ok(value, self._clock.monotonic() if now is None else now)

    def latest(self) -> Reading[bool]:
        """The newest sample."""
        if not self._went_silent:
            return self._latest
        silent: Reading[bool] | None = self._no_answer()
        return silent or self._latest


class MockCoil:
    """A relay coil whose on-state is a lease: not renewed within `lease_s`, it drops out."""

    def __init__(self, *, tag: str, clock: Clock, lease_s: float = 5.0) -> None:
        self.tag = tag
        self._clock = clock
        self._lease_s = lease_s
        self._on_until = -1.0
        self.refused = False  # fault: the board refuses every write to this relay

    def set(self, on: bool) -> None:
        """Desired state; renewing an on-coil extends its lease. A refused write changes
        nothing: an on-coil then drops out when its lease ends."""
        if self.refused:
            return
        now = self._clock.monotonic()
        self._on_until = now + self._lease_s if on else -1.0

    def fault(self) -> str | None:
        """Why the coil does not obey, or None."""
        return "the board refuses writes to this relay" if self.refused else None

    def drive(self, on: bool, *, for_s: float | None = None) -> None:
        """Hardware truth from an emulated relay board: on for `for_s` seconds, or until off."""
        if not on:
            self._on_until = -1.0
        elif for_s is None:
            self._on_until = float("inf")
        else:
            self._on_until = self._clock.monotonic() + for_s

    @property
    def energised(self) -> bool:
        """True while the lease holds."""
        return self._clock.monotonic() < self._on_until

    def energised_at(self, now: float) -> bool:
        """Whether the lease holds at `now` (the clock's time, read once by the caller)."""
        return now < self._on_until


class MockHeaterSsr:
    """The heater SSR with the relay board's timed flash-on (turns itself off)."""

    def __init__(self, *, tag: str, clock: Clock) -> None:
        self.tag = tag
        self._clock = clock
        self._on_until = -1.0
        self.welded = False  # fault: SSR failed shorted
        self.refused = False  # fault: the board refuses every write to the SSR's relay

    def pulse(self, on_s: float) -> None:
        """On for `on_s` seconds from now, then off by itself; 0 switches off now. A refused
        write changes nothing: a pulse under way ends when it was to."""
        if self.refused:
            return
        now = self._clock.monotonic()
        self._on_until = now + on_s if on_s > 0 else -1.0

    def fault(self) -> str | None:
        """Why its drive does not obey, or None (a weld is the SSR's own fault: `welded`)."""
        return "the board refuses writes to this relay" if self.refused else None

    @property
    def conducting(self) -> bool:
        """True while the SSR passes current (always, once welded)."""
        return self.welded or self._clock.monotonic() < self._on_until

    def conducting_at(self, now: float) -> bool:
        """Whether the SSR passes current at `now` (the clock's time, read once by the caller)."""
        return self.welded or now < self._on_until
