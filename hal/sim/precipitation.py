"""Hydroxide precipitation toward equilibrium, and the ammonia the dissolved ammines hold.

Pure functions of the liquor the plant hands them (DESIGN §8): they change the liquor's metals
and bound charge, and return what the plant must account for (heat, hydroxide taken up).
"""

from __future__ import annotations

import math

from hal.sim.chemistry import (
    PCAM_METALS,
    PRECIPITATING,
    Liquor,
    Metal,
    Speciation,
    ammine_factor,
    equilibrium_dissolved,
    solve_ph,
)

# A precipitation step that would cross equilibrium is cut back to it to 2^-this of the step.
EQUILIBRIUM_BISECTIONS = 24
# Each precipitating metal with the name of its hydroxide's field (the loop runs every 0.5 s).
_WITH_SOLID = tuple((metal, f"{metal.name}_s") for metal in PRECIPITATING)


def precipitate(
    liquor: Liquor,
    spec: Speciation,
    *,
    ph: float,
    dt: float,
    t_c: float,
    volume_l: float,
    tau_s: float,
    hydroxide_per_metal: float,
) -> tuple[float, float]:
    """Each metal's hydroxide forms (or redissolves) over `dt`: returns (heat J, OH⁻ mol taken)."""
    a = 1.0 - math.exp(-dt / tau_s)
    q = 0.0
    hydroxide = 0.0
    for metal, solid_name in _WITH_SOLID:
        name = metal.name
        dissolved = getattr(liquor, name)
        solid = getattr(liquor, solid_name)
        if dissolved <= 0.0 and solid <= 0.0:
            continue
        limit = equilibrium_dissolved(
            metal,
            volume_l=volume_l,
            t_c=t_c,
            ph=ph,
            free_ammonia_mol_l=spec.free_ammonia_mol_l,
            free_sulfate_mol_l=spec.free_sulfate_mol_l,
        )
        if dissolved > limit:
            formed = (dissolved - limit) * a
        elif solid > 0.0:
            formed = -min(solid, (limit - dissolved) * a)
        else:
            continue
        y = hydroxide_per_metal if name in PCAM_METALS else float(metal.charge)
        formed = _within_equilibrium(
            liquor, spec, metal, formed, ph=ph, volume_l=volume_l, t_c=t_c, hydroxide=y
        )
        setattr(liquor, name, dissolved - formed)
        setattr(liquor, solid_name, solid + formed)
        hydroxide += y * formed
        liquor.bound_charge += (metal.charge - y) * formed
        q += metal.precipitation_j_mol * formed
    return q, hydroxide


def _within_equilibrium(
    liquor: Liquor,
    spec: Speciation,
    metal: Metal,
    formed: float,
    *,
    ph: float,
    volume_l: float,
    t_c: float,
    hydroxide: float,
) -> float:
    """`formed`, cut back so it stops where it would reach equilibrium with the pH it makes.

    Precipitation acidifies the liquor (dissolution the reverse): in a weak buffer one
    explicit step could carry it far past equilibrium and the next step back again.
    """
    if abs(formed) < 1e-6:
        return formed
    name = metal.name
    dissolved = float(getattr(liquor, name))

    def excess(extent: float) -> float:
        # > 0: still supersaturated after precipitating `extent` (the sign flips past it)
        trial = liquor.copy()
        setattr(trial, name, dissolved - extent)
        trial.bound_charge += (metal.charge - hydroxide) * extent
        trial_ph = solve_ph(trial, volume_l, t_c, ph)
        limit = equilibrium_dissolved(
            metal,
            volume_l=volume_l,
            t_c=t_c,
            ph=trial_ph,
            free_ammonia_mol_l=spec.free_ammonia_mol_l,
            free_sulfate_mol_l=spec.free_sulfate_mol_l,
        )
        return dissolved - extent - limit

    whole = excess(formed)
    if (formed > 0.0 and whole >= 0.0) or (formed < 0.0 and whole <= 0.0):
        return formed  # the step stays on its side of equilibrium
    low, high = 0.0, formed
    for _ in range(EQUILIBRIUM_BISECTIONS):
        mid = 0.5 * (low + high)
        if (excess(mid) > 0.0) == (formed > 0.0):
            low = mid
        else:
            high = mid
    return low


def bound_ammonia(liquor: Liquor, free_nh3_mol_l: float, t_c: float) -> float:
    """NH3 (mol) the dissolved Ni, Co, Cu and Mn ammines hold at this free NH3."""
    bound = 0.0
    if free_nh3_mol_l > 0.0:
        for metal in PRECIPITATING:
            dissolved = getattr(liquor, metal.name)
            if dissolved > 0.0 and metal.ammine_log_beta:
                _, per_ion = ammine_factor(metal, free_nh3_mol_l, t_c)
                bound += dissolved * per_ion
    return bound
