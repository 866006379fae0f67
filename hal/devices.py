"""Typed device interfaces the controller talks to; backends (mock, serial) implement them.

Every plain call here is non-blocking: inputs return the newest reading, outputs queue or apply
a command. Only the calibration coroutines wait, and only on the device's own task, never on I/O.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from hal.calibration import CalibrationResult, CalibrationStatus, CalPoint
from hal.reading import Reading


class TemperatureSensor(Protocol):
    """Reactor temperature (TT-101), in °C."""

    tag: str

    def latest(self) -> Reading[float]:
        """The newest reading."""
        ...


class PhProbe(Protocol):
    """Reactor pH (AT-101), temperature compensated."""

    tag: str

    def latest(self) -> Reading[float]:
        """The newest reading."""
        ...

    def compensate(self, temperature_c: float) -> None:
        """Use this process temperature (°C) for compensation of the next readings."""
        ...


class DigitalInput(Protocol):
    """A discrete input: a level switch (True = liquid at it) or the E-stop (True = pressed)."""

    tag: str

    def latest(self) -> Reading[bool]:
        """The newest reading."""
        ...


class Coil(Protocol):
    """A relay coil that stays on while renewed (agitator, fill pump, valves, contactor)."""

    tag: str

    def set(self, on: bool) -> None:
        """Desired state; idempotent. An energised coil is a lease the device renews."""
        ...

    def fault(self) -> str | None:
        """Why the coil may not hold what it was told (the board refused or failed the write,
        or it reads back otherwise); None while it obeys."""
        ...


class HeaterSsr(Protocol):
    """The heater's SSR, driven by timed pulses that switch off by themselves."""

    tag: str

    def pulse(self, on_s: float) -> None:
        """Keep the heater on for `on_s` seconds from now, then off; 0 switches it off now."""
        ...

    def fault(self) -> str | None:
        """Why its drive may not hold what it was told (a refused write, a read-back that
        disagrees), or None."""
        ...


class DosingPump(Protocol):
    """A peristaltic dosing pump (EZO-PMP) run at a bounded rate."""

    tag: str

    def run(self, ml_min: float) -> None:
        """Desired rate in mL/min (0 stops); the device bounds every run in volume or time."""
        ...

    def dispensed_ml(self) -> Reading[float]:
        """Total volume the pump reports as dispensed since start-up, in mL."""
        ...

    def fault(self) -> str | None:
        """Why the circuit refuses to run as told (*TOOFAST, motor supply low); None while it
        obeys."""
        ...


@runtime_checkable
class PhCalibration(Protocol):
    """A pH probe calibrated in buffers (the EZO rule: mid first; a mid clears low and high)."""

    tag: str

    async def calibrate(
        self, point: CalPoint, value: float, *, temperature_c: float
    ) -> CalibrationResult:
        """Calibrate `point` in a buffer of pH `value` at `temperature_c`. Raises
        CalibrationOrderError (low/high before mid) or CalibrationRefused (out of bounds)."""
        ...

    async def calibration_status(self) -> CalibrationStatus:
        """The probe's calibration now: points, slopes, offset and verdict."""
        ...

    async def clear_calibration(self) -> None:
        """Forget every calibration point."""
        ...


@runtime_checkable
class PumpCalibration(Protocol):
    """A dosing pump whose volume is calibrated against a measured dose."""

    tag: str

    async def calibrate(self, measured_ml: float) -> bool:
        """The measured volume of the last dose; returns whether the pump is now calibrated.
        Raises ValueError for a volume it cannot take."""
        ...

    async def clear_calibration(self) -> None:
        """Forget the volume calibration."""
        ...

    async def is_calibrated(self) -> bool:
        """Whether the pump holds a volume calibration."""
        ...
