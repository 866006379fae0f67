"""What flows in and out of the reactor: reagent and feed streams, and the slurry that leaves.

Pure data and bookkeeping; never steps time. A stream is its composition per litre plus what its
acid–base species carry in (so the plant can account the heat of neutralisation exactly).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hal.sim.chemistry import Liquor, speciation
from hal.sim.residue import Residue
from hal.wiring import DosingPumpWiring, Reagent

# Integral heat of diluting 96 % H2SO4 to ~2 M (J/mol): Perry's, ≈ 75 kJ/mol.
DILUTION_H2SO4_J_MOL = 75_000.0


@dataclass(frozen=True, slots=True)
class Stream:
    """One litre of what a pump delivers, and the acid–base species it carries."""

    per_l: Liquor
    h2o2_mol_l: float = 0.0
    hydroxide_mol_l: float = 0.0  # free OH⁻ (NaOH)
    bisulfate_mol_l: float = 0.0  # HSO4⁻ (sulfuric acid, acid in a feed)
    ammonium_mol_l: float = 0.0  # NH4⁺
    dilution_j_per_l: float = 0.0  # heat of mixing released on entering the liquor
    temperature_c: float | None = None  # None: at the plant's water temperature


def reagent_stream(
    pump: DosingPumpWiring, *, feed_ratio: dict[str, float], feed_acid_per_metal: float
) -> Stream:
    """The stream a pump of the unit's wiring delivers (its reagent at its concentration).

    `feed_ratio` splits a metal-sulfate feed among Ni/Co/Mn (fractions summing to 1);
    `feed_acid_per_metal` is the free H2SO4 such a feed carries per mol of metal.
    """
    c = pump.concentration_mol_l
    if pump.reagent is Reagent.NAOH:
        return Stream(per_l=Liquor(sodium=c), hydroxide_mol_l=c)
    if pump.reagent is Reagent.H2SO4:
        # Concentrated acid is H2SO4 molecules: on dilution one proton goes free at once, the
        # other stays on bisulfate until the liquor's pH lets it go.
        return Stream(
            per_l=Liquor(sulfate=c), bisulfate_mol_l=c, dilution_j_per_l=DILUTION_H2SO4_J_MOL * c
        )
    if pump.reagent is Reagent.NH4OH:
        return Stream(per_l=Liquor(ammonia=c))
    if pump.reagent is Reagent.H2O2:
        return Stream(per_l=Liquor(), h2o2_mol_l=c)
    # Metal sulfate: Ni/Co/Mn in the black mass's proportions, with a little free acid.
    acid = c * feed_acid_per_metal
    per_l = Liquor(sulfate=c + acid)
    for name, share in feed_ratio.items():
        setattr(per_l, name, c * share)
    return Stream(per_l=per_l, bisulfate_mol_l=acid)


def liquor_stream(liquor: Liquor, *, volume_l: float, t_c: float, ph: float) -> Stream:
    """A litre of a filtered liquor (dissolved species only) as a feed stream."""
    if volume_l <= 0.0:
        raise ValueError("a liquor stream needs a volume > 0")
    per_l = liquor.copy()
    for solid in ("ni_s", "co_s", "mn_s", "cu_s", "fe_s", "al_s"):
        setattr(per_l, solid, 0.0)
    per_l.bound_charge = 0.0
    per_l.scale(1.0 / volume_l)
    # The balance without the solids' bound charge: renormalise sulfate so the feed is neutral
    # in charge at its own pH (filtration takes the basic sulfate with the cake).
    spec = speciation(per_l, volume_l=1.0, t_c=t_c, ph=ph)
    return Stream(
        per_l=per_l,
        hydroxide_mol_l=spec.hydroxide,
        bisulfate_mol_l=spec.bisulfate,
        ammonium_mol_l=spec.ammonium,
        temperature_c=t_c,
    )


@dataclass(slots=True)
class Receiver:
    """A tank that collects what leaves the reactor (drain to the filter, or spill)."""

    volume_l: float = 0.0
    liquor: Liquor = field(default_factory=Liquor)
    residue: Residue = field(default_factory=Residue)
    h2o2_mol: float = 0.0
    heat_j: float = 0.0  # enthalpy above 0 °C, for the mixed temperature

    @property
    def temperature_c(self) -> float | None:
        """Mixed temperature of what was received (None while empty)."""
        return None if self.volume_l <= 0.0 else self.heat_j / self.volume_l

    def take(
        self, *, volume_l: float, liquor: Liquor, residue: Residue, h2o2_mol: float, t_c: float
    ) -> None:
        """Receive `volume_l` of slurry at `t_c` carrying these contents."""
        self.volume_l += volume_l
        self.liquor.add(liquor)
        self.residue.add(residue)
        self.h2o2_mol += h2o2_mol
        self.heat_j += volume_l * t_c

    def clear(self) -> None:
        """Empty the tank."""
        self.volume_l = 0.0
        self.liquor = Liquor()
        self.residue = Residue()
        self.h2o2_mol = 0.0
        self.heat_j = 0.0
