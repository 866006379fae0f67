"""The charge-balance pH: water, titration, buffers, co-precipitation demand and leach liquor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.sim.chemistry import (
    Composition,
    charge_imbalance,
    dissolved,
    pka_ammonium,
    pkw,
    solve_ph,
)


def test_water_constants_match_the_literature() -> None:
    assert pkw(25.0) == pytest.approx(13.995, abs=0.001)
    assert pkw(60.0) == pytest.approx(13.02, abs=0.01)
    assert pka_ammonium(25.0) == pytest.approx(9.25, abs=1e-9)
    assert pka_ammonium(60.0) == pytest.approx(8.29, abs=0.02)


def test_pure_water_is_neutral_at_25_c() -> None:
    assert solve_ph(Composition(), 1.0, 25.0) == pytest.approx(7.00, abs=0.01)


def test_empty_vessel_reports_seven() -> None:
    assert solve_ph(Composition(sulfate=1.0), 0.0, 25.0) == 7.0


def test_sulfuric_acid_titrated_with_naoh_crosses_seven_at_two_naoh_per_acid() -> None:
    acid_mol, naoh_m = 0.01, 0.1  # 1 L of 0.01 M H2SO4, titrant 0.1 M NaOH

    def ph_after(titrant_l: float) -> float:
        comp = Composition(sulfate=acid_mol, sodium=naoh_m * titrant_l)
        return solve_ph(comp, 1.0 + titrant_l, 25.0)

    assert ph_after(0.0) < 2.2
    lo, hi = 0.0, 0.5
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ph_after(mid) < 7.0 else (lo, mid)
    assert lo == pytest.approx(2 * acid_mol / naoh_m, rel=0.01)
    # the steep part of the curve: ±1 % of titrant spans several pH units
    assert ph_after(0.198) < 5.0 < 9.0 < ph_after(0.202)


@pytest.mark.parametrize("t_c", [25.0, 60.0])
def test_half_neutralised_ammonia_buffers_at_its_pka(t_c: float) -> None:
    # 0.1 mol NH3 with 0.025 mol H2SO4 (0.05 mol H⁺) protonates half of it.
    comp = Composition(ammonia=0.1, sulfate=0.025)
    assert solve_ph(comp, 1.0, t_c) == pytest.approx(pka_ammonium(t_c), abs=0.02)


def naoh_to_reach(
    comp: Composition, *, volume_l: float, t_c: float, ph: float, naoh_m: float
) -> float:
    """Moles of NaOH (at `naoh_m`, so it dilutes too) that bring the liquor to `ph`."""
    added = 0.0
    for _ in range(6):  # fixed point on the dilution by the titrant itself
        trial = comp.copy()
        trial.sodium += added
        v = volume_l + added / naoh_m
        added -= charge_imbalance(trial, volume_l=v, t_c=t_c, ph=ph) * v
    return added


def test_holding_ph_11_at_60_c_takes_two_naoh_per_metal_fed() -> None:
    t_c, v = 60.0, 50.0
    comp = Composition(ammonia=1.0)
    comp.sodium = naoh_to_reach(comp, volume_l=v, t_c=t_c, ph=11.0, naoh_m=4.0)
    v += comp.sodium / 4.0
    metal_fed = naoh_fed = 0.0
    for _ in range(100):  # 0.1 mol M as 2 M sulfate, NH3/M = 0.8 as 6 M ammonia
        comp.m += 0.1
        comp.sulfate += 0.1
        comp.ammonia += 0.08
        v += 0.1 / 2.0 + 0.08 / 6.0
        naoh = naoh_to_reach(comp, volume_l=v, t_c=t_c, ph=11.0, naoh_m=4.0)
        comp.sodium += naoh
        v += naoh / 4.0
        metal_fed += 0.1
        naoh_fed += naoh
    assert solve_ph(comp, v, t_c) == pytest.approx(11.0, abs=1e-5)
    assert naoh_fed / metal_fed == pytest.approx(2.0, rel=0.02)
    assert dissolved(comp, volume_l=v, t_c=t_c, ph=11.0)["m"] < 1e-6 * comp.m


def test_leach_liquor_is_below_ph_1() -> None:
    # 100 L of 2 M H2SO4 after leaching 4 kg of black mass.
    comp = Composition(sulfate=200.0, m=40.0, li=4.0, fe=0.4, al=0.6)
    ph = solve_ph(comp, 100.0, 75.0)
    assert ph < 1.0
    assert dissolved(comp, volume_l=100.0, t_c=75.0, ph=ph) == {
        "m": 40.0,
        "fe": 0.4,
        "al": 0.6,
        "li": 4.0,
    }


def test_iron_and_aluminium_precipitate_by_ph_4_but_nickel_does_not() -> None:
    comp = Composition(sulfate=50.0, m=40.0, fe=0.4, al=0.6)
    left = dissolved(comp, volume_l=100.0, t_c=60.0, ph=4.5)
    assert left["fe"] < 1e-9
    assert left["al"] < 1e-3 * 0.6
    assert left["m"] == 40.0


compositions = st.builds(
    Composition,
    sulfate=st.floats(0.0, 5.0),
    sodium=st.floats(0.0, 10.0),
    ammonia=st.floats(0.0, 3.0),
    m=st.floats(0.0, 2.0),
    fe=st.floats(0.0, 0.2),
    al=st.floats(0.0, 0.2),
    li=st.floats(0.0, 0.5),
)


@given(comp=compositions, t_c=st.floats(5.0, 95.0), hint=st.floats(-1.0, 15.0))
def test_solution_balances_charge_and_does_not_depend_on_the_hint(
    comp: Composition, t_c: float, hint: float
) -> None:
    cold = solve_ph(comp, 1.0, t_c)
    warm = solve_ph(comp, 1.0, t_c, hint)
    assert warm == pytest.approx(cold, abs=2e-6)
    # the root lies within the tolerance: the balance changes sign across ±1e-6 pH
    assert charge_imbalance(comp, volume_l=1.0, t_c=t_c, ph=cold - 1.01e-6) >= 0.0
    assert charge_imbalance(comp, volume_l=1.0, t_c=t_c, ph=cold + 1.01e-6) <= 0.0
