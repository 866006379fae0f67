"""The process image: an immutable snapshot of every input, taken at the start of a scan.

Readings keep their quality: a bad reading is never a number here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hal.outputs import Outputs
from hal.reading import Reading
from hal.wiring import LevelPoint


@dataclass(frozen=True, slots=True)
class ProcessImage:
    """Inputs of one scan, plus what the controller applied last scan (for the verifiers)."""

    now: float
    temperature: Reading[float]
    ph: Reading[float]
    levels: Mapping[LevelPoint, Reading[bool]]
    estop: Reading[bool]
    dispensed_ml: Mapping[str, Reading[float]]
    applied: Outputs
    # Coils that do not obey (tag -> why: a refused or failed write, a read-back that differs).
    output_faults: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def level(self, point: LevelPoint) -> Reading[bool]:
        """The switch at `point`: True when liquid covers it."""
        return self.levels[point]

    def wet(self, point: LevelPoint) -> bool | None:
        """True/False for a good reading of the switch at `point`, None when bad."""
        reading = self.levels[point]
        return reading.value if reading.good else None
