"""The heat dosed reagents release into the liquor, as the controller expects it (feed-forward).

A best estimate from the reagents' literature heats: H2SO4 dilution at once, H2O2 decomposition
over minutes (first order), NaOH neutralising acid at once. It knows nothing of alarms and never
touches a device; the temperature loop and the exothermic dose limiter use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hal.wiring import DosingPumpWiring, Reagent

# J/mol, from standard enthalpies of formation (the simulator's plant states the same values).
H2SO4_DILUTION_J_MOL = 67_000.0  # 96 % to ~2 M
H2O2_DECOMPOSITION_J_MOL = 94_700.0
NEUTRALISATION_J_MOL = 55_840.0
# Below this pH, a base dosed meets free acid and neutralises it.
BASE_MEETS_ACID_PH = 6.0
# Above this pH, an acid dosed meets hydroxide (a second heat on top of its dilution).
ACID_MEETS_BASE_PH = 8.0


class ReactionHeat:
    """Heat released now (W) by what was dosed: immediate heats and a pending pool of H2O2."""

    def __init__(self, *, pumps: Mapping[str, DosingPumpWiring], release_s: float) -> None:
        self._pumps = dict(pumps)
        self._release_s = max(release_s, 1e-6)
        self._pending_j = 0.0
        self._released_w = 0.0
        self._at: float | None = None

    @property
    def released_w(self) -> float:
        """Heat released over the last update (W)."""
        return self._released_w

    @property
    def pending_j(self) -> float:
        """Heat dosed but not yet released (J): peroxide waiting to decompose."""
        return self._pending_j

    def reset(self) -> None:
        """Forget what was dosed."""
        self._pending_j = 0.0
        self._released_w = 0.0
        self._at = None

    def heat_per_ml(self, tag: str, *, ph: float | None) -> tuple[float, float]:
        """(immediate, delayed) J per mL dosed through pump `tag` into liquor at `ph`."""
        pump = self._pumps.get(tag)
        if pump is None:
            return 0.0, 0.0
        mol_ml = pump.concentration_mol_l / 1000.0
        if pump.reagent is Reagent.H2O2:
            return 0.0, mol_ml * H2O2_DECOMPOSITION_J_MOL
        if pump.reagent is Reagent.H2SO4:
            now = mol_ml * H2SO4_DILUTION_J_MOL
            if ph is not None and ph > ACID_MEETS_BASE_PH:
                now += 2.0 * mol_ml * NEUTRALISATION_J_MOL
            return now, 0.0
        if pump.reagent is Reagent.NAOH and ph is not None and ph < BASE_MEETS_ACID_PH:
            return mol_ml * NEUTRALISATION_J_MOL, 0.0
        return 0.0, 0.0

    def update(self, *, now: float, ml_min: Mapping[str, float], ph: float | None) -> float:
        """Account the pumps' rates applied since the last update; returns the heat now (W)."""
        dt = 0.0 if self._at is None else max(0.0, now - self._at)
        self._at = now
        if dt <= 0.0:
            return self._released_w
        released = self._pending_j * (1.0 - math.exp(-dt / self._release_s))
        self._pending_j -= released
        for tag, rate in ml_min.items():
            if rate <= 0.0:
                continue
            immediate, delayed = self.heat_per_ml(tag, ph=ph)
            ml = rate * dt / 60.0
            released += immediate * ml
            self._pending_j += delayed * ml
        self._released_w = released / dt
        return self._released_w
