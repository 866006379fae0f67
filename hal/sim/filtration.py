"""The filter between recipes: slurry in, a washed cake and a filtrate out.

Pure bookkeeping on a `Receiver`'s contents; every mole that goes in comes out in one of the two
(the campaign's mass balance depends on it). Never steps time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hal.sim.chemistry import METALS, Liquor
from hal.sim.residue import Residue
from hal.sim.streams import Receiver

# A filter cake holds this much liquor per kg of dry solids before washing (L/kg).
CAKE_MOISTURE_L_PER_KG = 0.5
_NA_KG = 0.02299  # kg/mol
_SO4_KG = 0.09606
_SOLID_FIELDS = ("ni_s", "co_s", "mn_s", "cu_s", "fe_s", "al_s")
_HYDROXIDE_KG = {
    f"{metal.name}_s": metal.hydroxide_molar_mass_g / 1000.0 for metal in METALS if metal.ksp
}


@dataclass(slots=True)
class Cake:
    """What stays on the filter: solids, and the liquor its moisture kept after washing."""

    # the *_s fields, and the sulfate or sodium that balances their charge
    solids: Liquor = field(default_factory=Liquor)
    residue: Residue = field(default_factory=Residue)
    entrained: Liquor = field(default_factory=Liquor)  # dissolved species left in the moisture

    def dry_kg(self) -> float:
        """Mass of the dry cake: hydroxides, undissolved black mass, and what the moisture left."""
        solids = sum(float(getattr(self.solids, f)) * kg for f, kg in _HYDROXIDE_KG.items())
        ions = self.solids.sodium * _NA_KG + self.solids.sulfate * _SO4_KG
        entrained = (
            sum(self.entrained.metal_total(m.name) * m.molar_mass_g / 1000.0 for m in METALS)
            + self.entrained.sodium * _NA_KG
            + self.entrained.sulfate * _SO4_KG
        )
        return solids + ions + self.residue.mass_kg() + entrained


@dataclass(frozen=True, slots=True)
class Filtrate:
    """The clear liquor through the filter, with the wash water that displaced the moisture."""

    liquor: Liquor
    volume_l: float
    temperature_c: float


def filter_slurry(receiver: Receiver, *, wash_efficiency: float) -> tuple[Cake, Filtrate]:
    """Split what the receiver collected into a washed cake and the filtrate.

    The cake's moisture holds liquor of the filtrate's composition; washing with its own volume
    of water displaces `wash_efficiency` of it into the filtrate (the wash water goes along).
    """
    if not 0.0 <= wash_efficiency <= 1.0:
        raise ValueError(f"wash efficiency must be within 0..1, got {wash_efficiency}")
    cake = Cake(residue=receiver.residue.copy())
    dissolved = receiver.liquor.copy()
    for solid in _SOLID_FIELDS:
        setattr(cake.solids, solid, getattr(dissolved, solid))
        setattr(dissolved, solid, 0.0)
    # The charge the precipitates left in solution goes with them. A basic sulfate (fewer than
    # two OH⁻ per metal) keeps sulfate in the cake; a precipitate that took more hydroxide than
    # its metal's charge keeps a counter-ion instead, sodium, so neither side ever goes negative.
    charge = dissolved.bound_charge
    if charge >= 0.0:
        cake.solids.sulfate = 0.5 * charge
        dissolved.sulfate -= cake.solids.sulfate
    else:
        cake.solids.sodium = -charge
        dissolved.sodium -= cake.solids.sodium
    dissolved.bound_charge = 0.0
    volume = receiver.volume_l
    dry = cake.dry_kg()
    moisture = min(volume, CAKE_MOISTURE_L_PER_KG * dry)
    kept = 0.0 if volume <= 0.0 else moisture / volume * (1.0 - wash_efficiency)
    cake.entrained = dissolved.copy()
    cake.entrained.scale(kept)
    filtrate = dissolved
    filtrate.scale(1.0 - kept)
    # washed with the moisture's own volume of water: as much water leaves as came in
    filtrate_volume = volume
    temperature = receiver.temperature_c if receiver.temperature_c is not None else 20.0
    return cake, Filtrate(liquor=filtrate, volume_l=filtrate_volume, temperature_c=temperature)
