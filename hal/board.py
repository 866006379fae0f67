"""The unit's devices by role, and the one place outputs are written to them.

`apply` only hands each device its desired state; devices make writes idempotent and bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hal.devices import (
    Coil,
    DigitalInput,
    DosingPump,
    HeaterSsr,
    PhCalibration,
    PhProbe,
    PumpCalibration,
    TemperatureSensor,
)
from hal.outputs import Outputs
from hal.wiring import CoilFunction, LevelPoint


@dataclass(frozen=True, slots=True)
class Board:
    """Every device of one unit, reached by role (the controller never speaks protocols)."""

    temperature: TemperatureSensor
    ph: PhProbe
    heater: HeaterSsr
    coils: Mapping[CoilFunction, Coil]
    levels: Mapping[LevelPoint, DigitalInput]
    estop: DigitalInput
    pumps: Mapping[str, DosingPump]

    def apply(self, outputs: Outputs) -> None:
        """Hand every device its desired state for this scan (non-blocking)."""
        # Contactor before heater when opening, so a welded SSR is cut first.
        self.coils[CoilFunction.CONTACTOR].set(outputs.contactor)
        self.heater.pulse(outputs.heater_on_s)
        self.coils[CoilFunction.AGITATOR].set(outputs.agitator)
        self.coils[CoilFunction.FILL_PUMP].set(outputs.fill_pump)
        self.coils[CoilFunction.DRAIN_VALVE].set(outputs.drain_valve)
        self.coils[CoilFunction.PURGE_VALVE].set(outputs.purge_valve)
        cooling = self.coils.get(CoilFunction.COOLING_VALVE)
        if cooling is not None:
            cooling.set(outputs.cooling_valve)
        for tag, pump in self.pumps.items():
            pump.run(outputs.pump(tag))

    def ph_calibration(self) -> PhCalibration | None:
        """The pH probe's calibration, or None when this backend cannot calibrate it."""
        return self.ph if isinstance(self.ph, PhCalibration) else None

    def pump_calibration(self, tag: str) -> PumpCalibration | None:
        """Pump `tag`'s volume calibration, or None (no such pump, or it cannot calibrate)."""
        pump = self.pumps.get(tag)
        return pump if isinstance(pump, PumpCalibration) else None
