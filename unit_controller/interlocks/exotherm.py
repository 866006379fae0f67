"""How much dosed reagents may have heated the reactor (acid dilution, peroxide decomposition).

Lets the welded-SSR check subtract a reaction's heat instead of going blind during dosing;
never forces or allows any output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hal.wiring import DosingPumpWiring, Reagent

# Heat released per mol dosed (J/mol), upper bounds: H2SO4 dilution ≈75 kJ at once; H2O2 over
# minutes, up to 268 kJ when it reduces black mass (LiMO2 + 3H⁺ + ½H2O2: 134 kJ per mol M).
IMMEDIATE_HEAT_J_MOL: Mapping[Reagent, float] = {Reagent.H2SO4: 75e3}
DELAYED_HEAT_J_MOL: Mapping[Reagent, float] = {Reagent.H2O2: 268e3}
# A black-mass charge in acid: aluminium foil and the acid-soluble oxide (≈0.4 MJ/kg for NMC
# black mass), bounded at 1 MJ/kg, released over minutes.
CHARGE_HEAT_J_KG = 1.0e6
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
        self._releasing_w = 0.0
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
        if dt > 0.0:
            self._releasing_w = released / dt

    @property
    def releasing_w(self) -> float:
        """Heat (W) the doses and charges may be releasing now, at most."""
        return self._releasing_w

    def charged(self, kg: float) -> None:
        """A person tipped `kg` of black mass in: its reaction heat is on its way."""
        self._pending_j += max(0.0, kg) * CHARGE_HEAT_J_KG

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
