"""How much the reactor may be heating itself from dosed reagents (acid dilution, peroxide).

Lets the welded-SSR check tell a weld from a reaction; never forces or allows any output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hal.wiring import DosingPumpWiring, Reagent

# Heat released per mol dosed (J/mol): H2SO4 dilution ≈75 kJ, H2O2 decomposition ≈98 kJ.
REACTION_HEAT_J_MOL: Mapping[Reagent, float] = {Reagent.H2SO4: 75e3, Reagent.H2O2: 98e3}
_WATER_J_L_K = 4180.0


class ExothermEstimate:
    """Heat from recent exothermic dosing, fading with `settle_s`/3 (peroxide decomposes slowly)."""

    def __init__(self, *, pumps: Mapping[str, DosingPumpWiring], settle_s: float) -> None:
        self._j_per_ml = {
            tag: pump.concentration_mol_l / 1000.0 * REACTION_HEAT_J_MOL[pump.reagent]
            for tag, pump in pumps.items()
            if pump.reagent in REACTION_HEAT_J_MOL
        }
        self._tau_s = max(settle_s / 3.0, 1e-9)
        self._heat_j = 0.0
        self._at: float | None = None

    def update(self, *, now: float, ml_min: Mapping[str, float]) -> None:
        """Account the pumps' rates (mL/min) applied since the last update."""
        dt = 0.0 if self._at is None else max(0.0, now - self._at)
        self._at = now
        self._heat_j *= math.exp(-dt / self._tau_s)
        for tag, j_per_ml in self._j_per_ml.items():
            self._heat_j += ml_min.get(tag, 0.0) * dt / 60.0 * j_per_ml

    def explains_c(self, *, volume_l: float) -> float:
        """The rise (°C) recent dosing could cause in `volume_l` of liquor, at most."""
        return self._heat_j / (max(volume_l, 1.0) * _WATER_J_L_K)
