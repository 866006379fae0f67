"""Aqueous chemistry of the reactor liquor: a charge balance solved for pH by bisection.

Pure Python and allocation-light (it runs every half second of simulated time); never touches
plant state beyond the `Composition` it is handed, and never uses activity coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

# Kelvin offset, gas constant (J/mol·K) and ln 10 for van 't Hoff.
_K0 = 273.15
_R = 8.314462618
_LN10 = math.log(10.0)

# HSO4⁻ ⇌ H⁺ + SO4²⁻; the temperature dependence is small next to the model's other errors.
PK2_BISULFATE = 1.99
PKA_AMMONIUM_25C = 9.25
# Enthalpy of NH4⁺ ⇌ NH3 + H⁺ (J/mol): pKa falls about 0.03 per K.
DH_AMMONIUM_J_MOL = 52_000.0

# (charge, Ksp of the hydroxide) per metal field of `Composition`; Ksp None never precipitates.
# "m" is the lumped Ni/Mn/Co that co-precipitation makes into pCAM.
METALS: dict[str, tuple[int, float | None]] = {
    "m": (2, 1e-15),
    "fe": (3, 2.8e-39),
    "al": (3, 1.3e-33),
    "li": (1, None),
}

_PRECIPITATING: tuple[tuple[str, int, float], ...] = tuple(
    (name, z, ksp) for name, (z, ksp) in METALS.items() if ksp is not None
)

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
class Composition:
    """Total moles of each conserved species in the liquor (dissolved plus precipitated).

    Acid is implicit: H2SO4 adds `sulfate` only and the balance finds the protons.
    """

    sulfate: float = 0.0  # SO4 total (H2SO4, HSO4⁻, SO4²⁻)
    sodium: float = 0.0
    ammonia: float = 0.0  # NH3 + NH4⁺
    m: float = 0.0  # lumped Ni/Mn/Co, 2+
    fe: float = 0.0  # 3+
    al: float = 0.0  # 3+
    li: float = 0.0  # 1+

    def scale(self, factor: float) -> None:
        """Keep `factor` of everything (drained or spilled liquor takes its share along)."""
        self.sulfate *= factor
        self.sodium *= factor
        self.ammonia *= factor
        self.m *= factor
        self.fe *= factor
        self.al *= factor
        self.li *= factor

    def copy(self) -> Composition:
        """An independent copy."""
        return Composition(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class _Constants:
    kw: float
    ka: float
    k2: float


def _constants(t_c: float) -> _Constants:
    return _Constants(kw=10.0 ** -pkw(t_c), ka=10.0 ** -pka_ammonium(t_c), k2=10.0**-PK2_BISULFATE)


def charge_imbalance(comp: Composition, *, volume_l: float, t_c: float, ph: float) -> float:
    """Cations minus anions (eq/L) at `ph`: zero at the true pH, falling as pH rises.

    Handy in closed form: the NaOH (mol) that brings the liquor to `ph` is −imbalance·volume.
    """
    c = _constants(t_c)
    inv = 1.0 / volume_l
    h: float = 10.0**-ph
    oh = c.kw / h
    pos = h + comp.sodium * inv + comp.ammonia * inv * h / (h + c.ka)
    for name, (z, ksp) in METALS.items():
        conc = getattr(comp, name) * inv
        if ksp is not None:
            conc = min(conc, ksp / oh**z)
        pos += z * conc
    neg = oh + comp.sulfate * inv * (1.0 + c.k2 / (h + c.k2))
    return pos - neg


def dissolved(comp: Composition, *, volume_l: float, t_c: float, ph: float) -> dict[str, float]:
    """Dissolved moles of each metal at `ph` (the rest has precipitated as hydroxide)."""
    oh: float = 10.0 ** (ph - pkw(t_c))
    out: dict[str, float] = {}
    for name, (z, ksp) in METALS.items():
        total = getattr(comp, name)
        out[name] = total if ksp is None else min(total, ksp / oh**z * volume_l)
    return out


def solve_ph(comp: Composition, volume_l: float, t_c: float, hint: float | None = None) -> float:
    """pH of the liquor to within 1e-6, by bisection on the charge balance.

    Warm-starts from `hint` (the last pH) with a ±0.5 bracket widened as needed. An empty vessel
    (`volume_l` <= 0) has no pH: returns 7.0, which a caller should not show as a measurement.
    """
    if volume_l <= 0.0:
        return EMPTY_PH
    t = t_c + _K0
    kw: float = 10.0 ** -(4470.99 / t - 6.0875 + 0.01706 * t)
    ka: float = 10.0 ** -pka_ammonium(t_c)
    k2: float = 10.0**-PK2_BISULFATE
    inv = 1.0 / volume_l
    na = comp.sodium * inv
    nh = comp.ammonia * inv
    so4 = comp.sulfate * inv
    li = comp.li * inv  # Li never precipitates: a fixed cation like Na
    # Only metals present cost time in the loop; a tuple of (charge, conc, ksp) is fastest.
    metals: tuple[tuple[int, float, float], ...] = tuple(
        (z, getattr(comp, name) * inv, ksp)
        for name, z, ksp in _PRECIPITATING
        if getattr(comp, name) > 0.0
    )
    fixed = na + li

    def f(ph: float) -> float:
        h: float = 10.0**-ph
        oh = kw / h
        pos = h + fixed + nh * h / (h + ka)
        for z, conc, ksp in metals:
            limit = ksp / oh**z
            pos += z * (conc if conc < limit else limit)
        return pos - oh - so4 * (1.0 + k2 / (h + k2))

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
