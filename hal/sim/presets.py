"""What a recipe's `starts_with` puts in the simulated reactor: water, or the liquors the shipped
leach and purify recipes make from the configured black mass.

Closed-form contents (no time passes); never touches a plant.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal.sim.chemistry import (
    ALUMINIUM,
    COPPER,
    IRON,
    Liquor,
    charge_imbalance,
    equilibrium_dissolved,
    speciation,
)
from hal.sim.params import PlantParams

PRESETS = ("empty", "water", "leach_liquor", "purified_liquor")

# The shipped leach (recipes/leach.toml): 4 kg of black mass in 40 L of water with 2.25 L of 18 M
# H2SO4 and 2.4 L of 30 % H2O2; ≈ 44 L of filtered liquor, stored and cooled to 40 °C.
PRESET_BLACK_MASS_KG = 4.0
PRESET_ACID_MOL = 40.5
PRESET_VOLUME_L = 44.0
PRESET_TEMPERATURE_C = 40.0
# The shipped purify raises the liquor to this pH with 4 M NaOH: Fe, Al and Cu hydroxides go to
# the filter cake.
PURIFIED_PH = 5.5
PURIFY_NAOH_MOL_L = 4.0


@dataclass(frozen=True, slots=True)
class Contents:
    """Liquor, its volume and temperature."""

    liquor: Liquor
    volume_l: float
    temperature_c: float


def leach_liquor(params: PlantParams) -> Contents:
    """The filtered liquor of a complete leach of the default charge (pH ≈ 0.9)."""
    black_mass = params.black_mass
    leached = 1.0 - black_mass.refractory_pct / 100.0
    mol = black_mass.mol_per_kg()
    liquor = Liquor(sulfate=PRESET_ACID_MOL)
    for name in ("ni", "co", "mn", "li"):
        setattr(liquor, name, mol[name] * PRESET_BLACK_MASS_KG * leached)
    for name in ("al", "cu", "fe"):
        setattr(liquor, name, mol[name] * PRESET_BLACK_MASS_KG)
    return Contents(liquor=liquor, volume_l=PRESET_VOLUME_L, temperature_c=PRESET_TEMPERATURE_C)


def purified_liquor(params: PlantParams) -> Contents:
    """The leach liquor raised to pH 5.5 with 4 M NaOH and filtered: Fe, Al and most Cu gone."""
    start = leach_liquor(params)
    liquor = start.liquor.copy()
    volume = start.volume_l
    t_c = start.temperature_c
    for _ in range(8):  # fixed point: the NaOH dilutes the liquor it neutralises
        spec = speciation(liquor, volume_l=volume, t_c=t_c, ph=PURIFIED_PH)
        for metal in (IRON, ALUMINIUM, COPPER):
            total = getattr(start.liquor, metal.name)
            left = equilibrium_dissolved(
                metal,
                volume_l=volume,
                t_c=t_c,
                ph=PURIFIED_PH,
                free_ammonia_mol_l=0.0,
                free_sulfate_mol_l=spec.free_sulfate_mol_l,
            )
            setattr(liquor, metal.name, min(total, left))
        liquor.sodium = 0.0
        liquor.sodium = -charge_imbalance(liquor, volume_l=volume, t_c=t_c, ph=PURIFIED_PH) * volume
        volume = start.volume_l + liquor.sodium / PURIFY_NAOH_MOL_L
    return Contents(liquor=liquor, volume_l=volume, temperature_c=t_c)
