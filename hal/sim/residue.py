"""Undissolved black mass in the reactor and how it leaches (sulfuric acid with H2O2).

Pure kinetics on the amounts it is handed; never steps time or reads a clock. Rates follow the
published behaviour of NMC leaching (first order in what is left, Arrhenius in temperature,
throttled as the free acid runs out; the share that needs a reductant waits for H2O2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from hal.sim.chemistry import Liquor
from hal.sim.params import BlackMass

_R = 8.314462618
_T_REF_K = 348.15  # 75 °C: the leach rates are quoted there
# Activation energies (J/mol): oxide leaching 30–65 kJ/mol in the literature; aluminium faster.
LEACH_EA_J_MOL = 45_000.0
PEROXIDE_EA_J_MOL = 60_000.0
# Acid (free H⁺ plus the protons bisulfate holds, mol/L) at this level halves the leach rate:
# leaching slows as the free acid is used up and stops once it is gone.
ACID_HALF_MOL_L = 0.05
# H2O2 at this concentration (mol/L) halves the reductive share of the rate.
PEROXIDE_HALF_MOL_L = 0.02
# Share of the transition-metal oxide that dissolves without a reductant (lattice oxygen goes).
NON_REDUCTIVE_SHARE = 0.25
# Metallic Al foil in hot acid and Cu/Fe with peroxide, relative to the oxide rate.
ALUMINIUM_RATE = 0.7
METAL_RATE = 1.0
# Heats released (J/mol), from standard enthalpies of formation (NBS; LiCoO2 −679 kJ/mol as the
# proxy for the NMC oxides): LiMO2 + 3H⁺ + ½H2O2 → Li⁺ + M²⁺ + 2H2O + ½O2 134 kJ per mol M;
# without the reductant (¼ O2 from the lattice) 86 kJ; Al + 3H⁺ → Al³⁺ + 1.5 H2 531 kJ;
# Cu + H2O2 + 2H⁺ 316 kJ; Fe to Fe³⁺ with H2O2 239 kJ; H2O2 → H2O + ½O2 94.7 kJ (aq).
REDUCTIVE_LEACH_J_MOL = 134_000.0
NON_REDUCTIVE_LEACH_J_MOL = 86_000.0
ALUMINIUM_J_MOL = 531_000.0
COPPER_J_MOL = 316_000.0
IRON_J_MOL = 239_000.0
PEROXIDE_DECOMPOSITION_J_MOL = 94_700.0
# Heat capacity of the undissolved solids (graphite, oxides), J/kg·K.
SOLIDS_CP_J_KG_K = 750.0


@dataclass(slots=True)
class Residue:
    """Black mass not yet dissolved (mol of each metal; graphite in kg)."""

    ni: float = 0.0
    co: float = 0.0
    mn: float = 0.0
    li: float = 0.0
    ni_r: float = 0.0  # refractory: too coarse or sintered to leach
    co_r: float = 0.0
    mn_r: float = 0.0
    li_r: float = 0.0
    al: float = 0.0  # metallic
    cu: float = 0.0
    fe: float = 0.0
    graphite_kg: float = 0.0

    def scale(self, factor: float) -> None:
        """Keep `factor` of everything."""
        for f in _FIELDS:
            setattr(self, f, getattr(self, f) * factor)

    def add(self, other: Residue, factor: float = 1.0) -> None:
        """Add `factor` times `other`."""
        for f in _FIELDS:
            setattr(self, f, getattr(self, f) + factor * getattr(other, f))

    def copy(self) -> Residue:
        """An independent copy."""
        return Residue(**{f: getattr(self, f) for f in _FIELDS})

    def metal(self, name: str) -> float:
        """Moles of metal `name` still in the solid (leachable and refractory)."""
        return float(getattr(self, name, 0.0)) + float(getattr(self, f"{name}_r", 0.0))

    @property
    def oxide_mol(self) -> float:
        """Leachable Ni + Co + Mn oxide left (mol)."""
        return self.ni + self.co + self.mn

    def mass_kg(self) -> float:
        """Approximate mass of the solids (for their heat capacity)."""
        metals = self.ni + self.co + self.mn + self.ni_r + self.co_r + self.mn_r
        # LiMO2 ≈ 97 g/mol per M; metallic Al, Cu, Fe at their atomic masses.
        return (
            self.graphite_kg
            + metals * 0.097
            + self.al * 0.027
            + self.cu * 0.0635
            + self.fe * 0.0558
        )

    @classmethod
    def of_black_mass(cls, black_mass: BlackMass, kg: float) -> Residue:
        """`kg` of black mass as charged."""
        mol = black_mass.mol_per_kg()
        keep = 1.0 - black_mass.refractory_pct / 100.0
        out = cls(
            al=mol["al"] * kg,
            cu=mol["cu"] * kg,
            fe=mol["fe"] * kg,
            graphite_kg=black_mass.graphite_pct / 100.0 * kg,
        )
        for name in ("ni", "co", "mn", "li"):
            setattr(out, name, mol[name] * kg * keep)
            setattr(out, f"{name}_r", mol[name] * kg * (1.0 - keep))
        return out


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Residue))


@dataclass(slots=True)
class LeachStep:
    """What one leach step did: heat released (J) and H2O2 consumed (mol)."""

    heat_j: float = 0.0
    peroxide_mol: float = 0.0


def arrhenius(t_c: float, ea_j_mol: float) -> float:
    """Rate relative to 75 °C."""
    return math.exp(-ea_j_mol / _R * (1.0 / (t_c + 273.15) - 1.0 / _T_REF_K))


def leach(
    residue: Residue,
    liquor: Liquor,
    *,
    dt: float,
    t_c: float,
    acid_mol_l: float,
    h2o2_mol: float,
    volume_l: float,
    tau_s: float,
) -> LeachStep:
    """Dissolve what `dt` seconds allow into `liquor`; returns the heat and H2O2 used."""
    step = LeachStep()
    if volume_l <= 0.0 or dt <= 0.0:
        return step
    acid = acid_mol_l / (acid_mol_l + ACID_HALF_MOL_L)
    if acid < 1e-6:
        return step
    k = arrhenius(t_c, LEACH_EA_J_MOL) / tau_s * acid
    peroxide = max(0.0, h2o2_mol) / volume_l
    reducing = peroxide / (peroxide + PEROXIDE_HALF_MOL_L)
    oxide = residue.oxide_mol
    if oxide > 0.0:
        share = NON_REDUCTIVE_SHARE + (1.0 - NON_REDUCTIVE_SHARE) * reducing
        fraction = 1.0 - math.exp(-k * share * dt)
        reductive = (1.0 - NON_REDUCTIVE_SHARE) * reducing / share
        dissolved = oxide * fraction
        wanted_h2o2 = 0.5 * dissolved * reductive
        if wanted_h2o2 > h2o2_mol:
            # Not enough reductant for the reductive share this step: only what H2O2 allows.
            dissolved = oxide * (1.0 - math.exp(-k * NON_REDUCTIVE_SHARE * dt)) + 2.0 * h2o2_mol
            dissolved = min(dissolved, oxide)
            wanted_h2o2 = h2o2_mol
            reductive = min(1.0, 2.0 * h2o2_mol / dissolved) if dissolved > 0 else 0.0
        share_gone = dissolved / oxide
        for name in ("ni", "co", "mn", "li"):
            amount = getattr(residue, name) * share_gone
            setattr(residue, name, getattr(residue, name) - amount)
            setattr(liquor, name, getattr(liquor, name) + amount)
        step.peroxide_mol += wanted_h2o2
        step.heat_j += dissolved * (
            reductive * REDUCTIVE_LEACH_J_MOL + (1.0 - reductive) * NON_REDUCTIVE_LEACH_J_MOL
        )
    if residue.al > 0.0:
        gone = residue.al * (1.0 - math.exp(-k * ALUMINIUM_RATE * dt))
        residue.al -= gone
        liquor.al += gone
        step.heat_j += gone * ALUMINIUM_J_MOL
    left = h2o2_mol - step.peroxide_mol
    for name, per_mol_h2o2, heat in (("cu", 1.0, COPPER_J_MOL), ("fe", 0.5, IRON_J_MOL)):
        solid = getattr(residue, name)
        if solid <= 0.0 or left <= 0.0:
            continue
        gone = min(solid * (1.0 - math.exp(-k * METAL_RATE * reducing * dt)), left / per_mol_h2o2)
        setattr(residue, name, solid - gone)
        setattr(liquor, name, getattr(liquor, name) + gone)
        left -= gone * per_mol_h2o2
        step.peroxide_mol += gone * per_mol_h2o2
        step.heat_j += gone * heat
    return step
