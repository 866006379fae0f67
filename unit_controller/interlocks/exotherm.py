"""How much dosed reagents may have heated the reactor (acid dilution, peroxide decomposition).

Lets the welded-SSR check subtract a reaction's heat instead of going blind during dosing;
never forces or allows any output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hal.wiring import DosingPumpWiring, Reagent

# Heat released per mol dosed (J/mol): H2SO4 dilution ≈75 kJ at once; H2O2 decomposition
# ≈98 kJ, released over minutes.
IMMEDIATE_HEAT_J_MOL: Mapping[Reagent, float] = {Reagent.H2SO4: 75e3}
DELAYED_HEAT_J_MOL: Mapping[Reagent, float] = {Reagent.H2O2: 98e3}
_LIQUOR_J_L_K = 4180.0


class ExothermEstimate:
    """An upper bound of the temperature rise dosed reagents explain, accumulated over time.

    Upper bound on purpose: the heat is assumed to stay in the liquor (no losses) and to heat
    the smallest volume the level switches allow, so a reaction is never taken for a weld.
    """

    def __init__(self, *, pumps: Mapping[str, DosingPumpWiring], release_s: float) -> None:
        self._now_j_per_ml = _j_per_ml(pumps, IMMEDIATE_HEAT_J_MOL)
        self._later_j_per_ml = _j_per_ml(pumps, DELAYED_HEAT_J_MOL)
        self._release_s = max(release_s, 1e-9)
        self._pending_j = 0.0
        self._explained_c = 0.0
        self._at: float | None = None

    def update(self, *, now: float, ml_min: Mapping[str, float], volume_l: float) -> None:
        """Account the pumps' rates (mL/min) applied since the last update into `volume_l`."""
        dt = 0.0 if self._at is None else max(0.0, now - self._at)
        self._at = now
        released = self._pending_j * (1.0 - math.exp(-dt / self._release_s))
        self._pending_j -= released
        for tag, j_per_ml in self._now_j_per_ml.items():
            released += ml_min.get(tag, 0.0) * dt / 60.0 * j_per_ml
        for tag, j_per_ml in self._later_j_per_ml.items():
            self._pending_j += ml_min.get(tag, 0.0) * dt / 60.0 * j_per_ml
        self._explained_c += released / (max(volume_l, 1.0) * _LIQUOR_J_L_K)

    @property
    def explained_c(self) -> float:
        """The rise (°C) dosing has explained since start; subtract it from the temperature."""
        return self._explained_c


def _j_per_ml(
    pumps: Mapping[str, DosingPumpWiring], heat: Mapping[Reagent, float]
) -> dict[str, float]:
    return {
        tag: pump.concentration_mol_l / 1000.0 * heat[pump.reagent]
        for tag, pump in pumps.items()
        if pump.reagent in heat
    }
