"""Typed device interfaces the controller talks to; backends (mock, serial) implement them.

Every call here is non-blocking: inputs return the newest reading, outputs queue or apply a
command. No method may wait on I/O.
"""

from __future__ import annotations

from typing import Protocol

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


class HeaterSsr(Protocol):
    """The heater's SSR, driven by timed pulses that switch off by themselves."""

    tag: str

    def pulse(self, on_s: float) -> None:
        """Keep the heater on for `on_s` seconds from now, then off; 0 switches it off now."""
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
