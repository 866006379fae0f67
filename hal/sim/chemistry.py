"""Aqueous chemistry of the reactor liquor: a charge balance solved for pH, and the species it sets.

Metals precipitate at a finite rate (plant.py), so the balance sees each dissolved metal as a fixed
charge and stays smooth and monotonic; equilibrium (Ksp with ammine complexes) only sets where
precipitation is heading. Pure Python and allocation-light; never touches plant state beyond the
`Liquor` it is handed, and never uses activity coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter

# Kelvin offset, gas constant (J/mol·K) and ln 10 for van 't Hoff.
_K0 = 273.15
_R = 8.314462618
_LN10 = math.log(10.0)

# HSO4⁻ ⇌ H⁺ + SO4²⁻ at 25 °C; the dissociation is exothermic, so pK2 rises when hot (≈ 2.35 at
# 58 °C, as phreeqc.dat gives).
PK2_BISULFATE = 1.99
PKA_AMMONIUM_25C = 9.25
# Enthalpy of NH4⁺ ⇌ NH3 + H⁺ (J/mol): pKa falls about 0.03 per K.
DH_AMMONIUM_J_MOL = 52_200.0
# Heats released (J/mol) by the fast acid–base equilibria, from standard enthalpies of formation
# (NBS tables): H⁺ + OH⁻ → H2O 55.8 kJ; HSO4⁻ → H⁺ + SO4²⁻ 21.9 kJ; NH4⁺ → NH3 + H⁺ takes 52.2 kJ.
NEUTRALISATION_J_MOL = 55_840.0
BISULFATE_DISSOCIATION_J_MOL = 21_900.0


@dataclass(frozen=True, slots=True)
class Metal:
    """A metal of the liquor: charge, hydroxide solubility, ammine complexes, molar masses."""

    name: str
    charge: int
    ksp: float | None  # of the hydroxide at 25 °C; None never precipitates
    # cumulative log10 β1..βn of the ammine complexes M(NH3)n (25 °C, I → 0)
    ammine_log_beta: tuple[float, ...]
    precipitation_j_mol: float  # heat released by M^z+ + z OH⁻ → M(OH)z(s)
    molar_mass_g: float
    hydroxide_molar_mass_g: float
    # heat released per NH3 bound (J/mol): complexes weaken as the liquor warms
    ammine_j_mol: float = 0.0
    # conditional log10 β1, β2 of the sulfate complexes M(SO4)n at a leach liquor's ionic
    # strength (the I → 0 values less a Davies correction at I = 0.5)
    sulfate_log_beta: tuple[float, ...] = ()


# Ksp: CRC Handbook; ammine constants: Smith & Martell, Critical Stability Constants; heats of
# precipitation from standard enthalpies of formation (aq ions, crystalline hydroxides).
# Fresh (amorphous) hydroxides for Ni and Co: what a reactor precipitates, not the aged crystal.
NICKEL = Metal(
    "ni", 2, 7.9e-16, (2.72, 4.89, 6.55, 7.67, 8.34, 8.31), 15_700.0, 58.693, 92.708, 16_000.0
)
COBALT = Metal(
    "co", 2, 1.6e-15, (1.99, 3.50, 4.43, 5.07, 5.13, 4.40), 21_500.0, 58.933, 92.948, 16_000.0
)
MANGANESE = Metal("mn", 2, 2.06e-13, (0.84,), 14_600.0, 54.938, 88.953, 16_000.0)
COPPER = Metal("cu", 2, 2.2e-20, (4.04, 7.47, 10.27, 11.75), 54_600.0, 63.546, 97.561, 22_400.0)
# Fe(III) and Al sulfate complexes (FeSO4⁺ log K 4.0, AlSO4⁺ 3.5 at I → 0) keep both in solution
# in an acid sulfate leach; without them Al(OH)3 would fall out of hot liquor at pH 2.5.
IRON = Metal("fe", 3, 2.79e-39, (), 84_500.0, 55.845, 106.867, 0.0, (2.5, 3.5))
ALUMINIUM = Metal("al", 3, 1.3e-33, (), 55_000.0, 26.982, 78.004, 0.0, (2.0, 3.0))
LITHIUM = Metal("li", 1, None, (), 0.0, 6.94, 23.95)

PRECIPITATING: tuple[Metal, ...] = (NICKEL, COBALT, MANGANESE, COPPER, IRON, ALUMINIUM)
METALS: tuple[Metal, ...] = (*PRECIPITATING, LITHIUM)
# The metals co-precipitation makes into pCAM.
PCAM_METALS = ("ni", "co", "mn")

# Bracket for the bisection, in pH. Concentrated acid or base can sit slightly outside 0–14.
PH_MIN = -3.0
PH_MAX = 17.0
# Half-width of the first bracket around a warm-start hint, and the solve tolerance (pH).
HINT_HALF_WIDTH = 0.5
PH_TOLERANCE = 1e-6
# What an empty vessel reports: there is no liquor to have a pH.
EMPTY_PH = 7.0


def pkw(t_c: float) -> float:
    """pKw of water at `t_c` °C (Harned & Owen); 13.995 at 25 °C."""
    t = t_c + _K0
    return 4470.99 / t - 6.0875 + 0.01706 * t


def pka_ammonium(t_c: float) -> float:
    """pKa of NH4⁺ at `t_c` °C: 9.25 at 25 °C, van 't Hoff with ΔH ≈ 52 kJ/mol."""
    t = t_c + _K0
    return PKA_AMMONIUM_25C + DH_AMMONIUM_J_MOL / (_R * _LN10) * (1.0 / t - 1.0 / (_K0 + 25.0))


@dataclass(slots=True)
class Liquor:
    """Moles of each conserved species in solution, plus what precipitates hold.

    Acid is implicit: H2SO4 adds `sulfate` only and the charge balance finds the protons.
    Metals are dissolved (free and ammine-complexed); `*_s` fields are their hydroxides in
    suspension. `bound_charge` is the charge left in solution by precipitates whose hydroxide
    content differs from the metal's charge (a basic sulfate takes sulfate instead).
    """

    sulfate: float = 0.0  # S(VI) in solution: H2SO4, HSO4⁻, SO4²⁻
    sodium: float = 0.0
    ammonia: float = 0.0  # NH3 + NH4⁺, including what the ammine complexes hold
    ammonia_bound: float = 0.0  # NH3 held in ammine complexes
    li: float = 0.0
    ni: float = 0.0
    co: float = 0.0
    mn: float = 0.0
    cu: float = 0.0
    fe: float = 0.0
    al: float = 0.0
    bound_charge: float = 0.0
    ni_s: float = 0.0
    co_s: float = 0.0
    mn_s: float = 0.0
    cu_s: float = 0.0
    fe_s: float = 0.0
    al_s: float = 0.0

    def scale(self, factor: float) -> None:
        """Keep `factor` of everything (drained or spilled slurry takes its share along)."""
        for f, value in zip(_FIELDS, _values(self), strict=True):
            setattr(self, f, value * factor)

    def copy(self) -> Liquor:
        """An independent copy."""
        return Liquor(*_values(self))

    def add(self, other: Liquor, factor: float = 1.0) -> None:
        """Add `factor` times `other` to this one."""
        for f, value in zip(_FIELDS, _values(other), strict=True):
            if value:  # adding factor·0 changes nothing: most streams carry one or two species
                setattr(self, f, getattr(self, f) + factor * value)

    def cation_charge(self) -> float:
        """Equivalents of fixed cations in solution (Na, Li, dissolved metals, bound charge)."""
        return (
            self.sodium
            + self.li
            + 2.0 * (self.ni + self.co + self.mn + self.cu)
            + 3.0 * (self.fe + self.al)
            + self.bound_charge
        )

    def metal_total(self, name: str) -> float:
        """Dissolved plus precipitated moles of metal `name`."""
        solid = getattr(self, f"{name}_s", 0.0)
        return float(getattr(self, name)) + float(solid)

    def as_dict(self) -> dict[str, float]:
        """Every field by name."""
        return {f: getattr(self, f) for f in _FIELDS}


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Liquor))
# Every field's value in `_FIELDS` order, in one call (copies and sums run every plant step).
_values: Callable[[Liquor], tuple[float, ...]] = attrgetter(*_FIELDS)


@dataclass(frozen=True, slots=True)
class Speciation:
    """The acid–base species at the solved pH, in moles in the vessel (for the heat of reaction)."""

    ph: float
    hydroxide: float
    bisulfate: float
    ammonium: float
    free_ammonia_mol_l: float
    free_sulfate_mol_l: float = 0.0


def pk2_bisulfate(t_c: float) -> float:
    """pK2 of H2SO4 at `t_c` °C: 1.99 at 25 °C, van 't Hoff with ΔH ≈ −21.9 kJ/mol."""
    t = t_c + _K0
    return PK2_BISULFATE - BISULFATE_DISSOCIATION_J_MOL / (_R * _LN10) * (
        1.0 / t - 1.0 / (_K0 + 25.0)
    )


def _constants(t_c: float) -> tuple[float, float, float]:
    return 10.0 ** -pkw(t_c), 10.0 ** -pka_ammonium(t_c), 10.0 ** -pk2_bisulfate(t_c)


def charge_imbalance(liquor: Liquor, *, volume_l: float, t_c: float, ph: float) -> float:
    """Cations minus anions (eq/L) at `ph`: zero at the true pH, falling as pH rises.

    Handy in closed form: the NaOH (mol) that brings the liquor to `ph` is −imbalance·volume.
    """
    kw, ka, k2 = _constants(t_c)
    inv = 1.0 / volume_l
    h: float = 10.0**-ph
    nh = (liquor.ammonia - liquor.ammonia_bound) * inv
    pos = h + liquor.cation_charge() * inv + nh * h / (h + ka)
    neg = kw / h + liquor.sulfate * inv * (1.0 + k2 / (h + k2))
    return pos - neg


def solve_ph(liquor: Liquor, volume_l: float, t_c: float, hint: float | None = None) -> float:
    """pH of the liquor to within 1e-6, by bisection on the charge balance.

    Warm-starts from `hint` (the last pH) with a ±0.5 bracket widened as needed. An empty vessel
    (`volume_l` <= 0) has no pH: returns 7.0, which a caller should not show as a measurement.
    """
    if volume_l <= 0.0:
        return EMPTY_PH
    kw, ka, k2 = _constants(t_c)
    inv = 1.0 / volume_l
    fixed = liquor.cation_charge() * inv
    nh = (liquor.ammonia - liquor.ammonia_bound) * inv
    so4 = liquor.sulfate * inv

    def f(ph: float) -> float:
        h: float = 10.0**-ph
        return h + fixed + nh * h / (h + ka) - kw / h - so4 * (1.0 + k2 / (h + k2))

    if hint is None or not PH_MIN < hint < PH_MAX:
        lo, hi = PH_MIN, PH_MAX
    else:
        lo, hi = _bracket(f, hint)
    # f falls with pH: positive below the root, negative above.
    while hi - lo > 2.0 * PH_TOLERANCE:
        mid = 0.5 * (lo + hi)
        if f(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def speciation(liquor: Liquor, *, volume_l: float, t_c: float, ph: float) -> Speciation:
    """Hydroxide, bisulfate and ammonium (mol) and free NH3 (mol/L) at `ph`."""
    kw, ka, k2 = _constants(t_c)
    if volume_l <= 0.0:
        return Speciation(ph=ph, hydroxide=0.0, bisulfate=0.0, ammonium=0.0, free_ammonia_mol_l=0.0)
    h: float = 10.0**-ph
    available = max(0.0, liquor.ammonia - liquor.ammonia_bound)
    return Speciation(
        ph=ph,
        hydroxide=kw / h * volume_l,
        bisulfate=liquor.sulfate * h / (h + k2),
        ammonium=available * h / (h + ka),
        free_ammonia_mol_l=available * ka / (h + ka) / volume_l,
        free_sulfate_mol_l=liquor.sulfate * k2 / (h + k2) / volume_l,
    )


def ammine_factor(
    metal: Metal, free_ammonia_mol_l: float, t_c: float = 25.0
) -> tuple[float, float]:
    """(α, n̄) at `t_c`: dissolved metal per free aquo ion, and mean NH3 per dissolved ion."""
    if not metal.ammine_log_beta or free_ammonia_mol_l <= 0.0:
        return 1.0, 0.0
    # van 't Hoff per bound NH3: each step's log K falls ≈ 0.28 from 25 to 58 °C for Ni.
    shift = metal.ammine_j_mol / (_R * _LN10) * (1.0 / (t_c + _K0) - 1.0 / (_K0 + 25.0))
    total = 1.0
    ligands = 0.0
    term_l = 1.0
    for n, log_beta in enumerate(metal.ammine_log_beta, start=1):
        term_l *= free_ammonia_mol_l
        term = 10.0 ** (log_beta + n * shift) * term_l
        total += term
        ligands += n * term
    return total, ligands / total


def log_acid_solubility(metal: Metal, t_c: float) -> float:
    """log10 *Ks of M(OH)z + z H⁺ ⇌ M^z+ + z H2O at `t_c` °C.

    From Ksp/Kw^z at 25 °C and van 't Hoff with the reaction's enthalpy (z·55.8 kJ minus the
    heat of precipitation): hydroxides grow less soluble at a given pH as the liquor warms,
    about 60× for Ni(OH)2 from 25 to 60 °C, not the 4000× a constant Ksp with Kw(T) would say.
    """
    assert metal.ksp is not None
    z = metal.charge
    log_ks_25 = math.log10(metal.ksp) + z * pkw(25.0)
    dh = metal.precipitation_j_mol - z * NEUTRALISATION_J_MOL  # J/mol, < 0: exothermic
    return log_ks_25 - dh / (_R * _LN10) * (1.0 / (t_c + _K0) - 1.0 / (_K0 + 25.0))


def sulfate_factor(metal: Metal, free_sulfate_mol_l: float) -> float:
    """Dissolved metal per free aquo ion from its sulfate complexes."""
    total = 1.0
    power = 1.0
    for log_beta in metal.sulfate_log_beta:
        power *= free_sulfate_mol_l
        total += 10.0**log_beta * power
    return total


def equilibrium_dissolved(
    metal: Metal,
    *,
    volume_l: float,
    t_c: float,
    ph: float,
    free_ammonia_mol_l: float,
    free_sulfate_mol_l: float = 0.0,
) -> float:
    """Moles of `metal` the liquor holds dissolved at equilibrium with its hydroxide."""
    if metal.ksp is None:
        return math.inf
    alpha, _ = ammine_factor(metal, free_ammonia_mol_l, t_c)
    if metal.sulfate_log_beta:
        alpha *= sulfate_factor(metal, free_sulfate_mol_l)
    return float(10.0 ** (log_acid_solubility(metal, t_c) - metal.charge * ph)) * alpha * volume_l


def dissolved(liquor: Liquor, *, volume_l: float, t_c: float, ph: float) -> dict[str, float]:
    """Dissolved moles of each metal at equilibrium at `ph` (the rest would precipitate)."""
    spec = speciation(liquor, volume_l=volume_l, t_c=t_c, ph=ph)
    out: dict[str, float] = {}
    for metal in METALS:
        total = liquor.metal_total(metal.name)
        limit = equilibrium_dissolved(
            metal,
            volume_l=volume_l,
            t_c=t_c,
            ph=ph,
            free_ammonia_mol_l=spec.free_ammonia_mol_l,
            free_sulfate_mol_l=spec.free_sulfate_mol_l,
        )
        out[metal.name] = min(total, limit)
    return out


def _bracket(f: Callable[[float], float], hint: float) -> tuple[float, float]:
    """Grow a bracket around `hint` until the root is inside (or the hard limits are reached)."""
    width = HINT_HALF_WIDTH
    lo = max(PH_MIN, hint - width)
    hi = min(PH_MAX, hint + width)
    while lo > PH_MIN and f(lo) <= 0.0:
        hi = lo
        width *= 2.0
        lo = max(PH_MIN, lo - width)
    while hi < PH_MAX and f(hi) > 0.0:
        lo = hi
        width *= 2.0
        hi = min(PH_MAX, hi + width)
    return lo, hi
