"""The whole set of outputs the controller wants this scan, by function.

Computed fresh every scan; the safety filter is the only code that overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


def _no_pumps() -> Mapping[str, float]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Outputs:
    """Desired outputs for one scan.

    `heater_on_s` is the heater on-time still wanted from now (0 = off); the HAL writes it as a
    timed flash-on so the relay turns itself off. `pumps` maps dosing-pump tags to mL/min.
    """

    heater_on_s: float = 0.0
    contactor: bool = False
    agitator: bool = False
    fill_pump: bool = False
    drain_valve: bool = False
    purge_valve: bool = False
    cooling_valve: bool = False  # jacket cooling water (XV-103), where fitted
    pumps: Mapping[str, float] = field(default_factory=_no_pumps)

    @classmethod
    def safe(cls) -> Outputs:
        """Everything off: the state every output takes on a trip, a stop or power-up."""
        return cls()

    def with_pumps(self, pumps: Mapping[str, float]) -> Outputs:
        """A copy with the given pump rates (read-only mapping)."""
        return replace(self, pumps=MappingProxyType(dict(pumps)))

    def pump(self, tag: str) -> float:
        """Commanded rate of one pump in mL/min (0 when not commanded)."""
        return self.pumps.get(tag, 0.0)

    @property
    def heater_on(self) -> bool:
        """True when the heater is wanted on now."""
        return self.heater_on_s > 0.0
