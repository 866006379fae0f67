"""What the gas through the headspace carries away: water vapour (and its latent heat) and NH3.

Pure functions of temperature, gas flow and free ammonia; never touch plant state.
"""

from __future__ import annotations

import math

_K0 = 273.15
_P_ATM_PA = 101_325.0
_NL_PER_MOL = 22.414
# Antoine constants for water, 1–100 °C (p in mmHg).
_ANTOINE = (8.07131, 1730.63, 233.426)
_MMHG_PA = 133.322
# Henry's law solubility of NH3 (Sander 2023): 59 mol/(kg·atm) at 25 °C, d ln H / d(1/T) = 4200 K.
_NH3_H_25C = 59.0
_NH3_H_SLOPE_K = 4200.0
# A purge over an agitated surface leaves short of equilibrium with the liquor.
HEADSPACE_APPROACH = 0.8
WATER_MOLAR_KG = 0.018015


def water_vapour_pa(t_c: float) -> float:
    """Saturated vapour pressure of water (Pa) at `t_c` °C (Antoine)."""
    a, b, c = _ANTOINE
    return float(10.0 ** (a - b / (c + t_c))) * _MMHG_PA


def latent_heat_j_kg(t_c: float) -> float:
    """Latent heat of vaporisation of water (J/kg): 2.44 MJ at 25 °C, 2.26 MJ at 100 °C."""
    return 2.501e6 - 2370.0 * t_c


def gas_mol_s(nl_min: float) -> float:
    """Normal litres per minute as mol/s."""
    return nl_min / _NL_PER_MOL / 60.0


def evaporation_kg_s(t_c: float, *, gas_nl_min: float) -> float:
    """Water (kg/s) the gas carries away, leaving near saturation at the liquor's temperature."""
    if gas_nl_min <= 0.0:
        return 0.0
    p = min(water_vapour_pa(t_c), 0.9 * _P_ATM_PA)
    return gas_mol_s(gas_nl_min) * HEADSPACE_APPROACH * p / (_P_ATM_PA - p) * WATER_MOLAR_KG


def ammonia_stripping_mol_s(t_c: float, *, free_nh3_mol_l: float, gas_nl_min: float) -> float:
    """NH3 (mol/s) the gas carries away from a liquor with `free_nh3_mol_l` of free ammonia."""
    if gas_nl_min <= 0.0 or free_nh3_mol_l <= 0.0:
        return 0.0
    henry = _NH3_H_25C * math.exp(_NH3_H_SLOPE_K * (1.0 / (t_c + _K0) - 1.0 / (25.0 + _K0)))
    p_atm = free_nh3_mol_l / henry
    return gas_mol_s(gas_nl_min) * HEADSPACE_APPROACH * p_atm
