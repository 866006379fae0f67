"""The charge-balance pH: water, titration, buffers, hydroxide solubility with complexes, and the
liquors the recipes make."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.sim.chemistry import (
    ALUMINIUM,
    COPPER,
    IRON,
    NICKEL,
    Liquor,
    charge_imbalance,
    dissolved,
    equilibrium_dissolved,
    pk2_bisulfate,
    pka_ammonium,
    pkw,
    solve_ph,
    speciation,
)
from hal.sim.params import PlantParams
from hal.sim.presets import leach_liquor, purified_liquor


def test_water_constants_match_the_literature() -> None:
    assert pkw(25.0) == pytest.approx(13.995, abs=0.001)
    assert pkw(60.0) == pytest.approx(13.02, abs=0.01)
    assert pka_ammonium(25.0) == pytest.approx(9.25, abs=1e-9)
    assert pka_ammonium(58.0) == pytest.approx(8.34, abs=0.02)  # phreeqc.dat
    assert pk2_bisulfate(25.0) == pytest.approx(1.99, abs=1e-9)
    assert pk2_bisulfate(58.0) == pytest.approx(2.35, abs=0.05)  # phreeqc.dat: 2.34


def test_pure_water_is_neutral_at_25_c() -> None:
    assert solve_ph(Liquor(), 1.0, 25.0) == pytest.approx(7.00, abs=0.01)


def test_empty_vessel_reports_seven() -> None:
    assert solve_ph(Liquor(sulfate=1.0), 0.0, 25.0) == 7.0


def test_sulfuric_acid_titrated_with_naoh_crosses_seven_at_two_naoh_per_acid() -> None:
    acid_mol, naoh_m = 0.01, 0.1  # 1 L of 0.01 M H2SO4, titrant 0.1 M NaOH

    def ph_after(titrant_l: float) -> float:
        return solve_ph(Liquor(sulfate=acid_mol, sodium=naoh_m * titrant_l), 1.0 + titrant_l, 25.0)

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
    liquor = Liquor(ammonia=0.1, sulfate=0.025)
    assert solve_ph(liquor, 1.0, t_c) == pytest.approx(pka_ammonium(t_c), abs=0.03)


def test_dissolved_metal_is_a_fixed_charge_and_its_hydroxide_takes_the_base() -> None:
    # 0.1 M NiSO4 (no hydrolysis modelled; sulfate is a very weak base: pH ≈ 7.5); precipitating
    # it as Ni(OH)2 takes two OH⁻ per Ni: the NaOH that did it leaves Na2SO4, at the same pH.
    solution = Liquor(ni=0.1, sulfate=0.1)
    precipitated = Liquor(ni_s=0.1, sulfate=0.1, sodium=0.2)
    assert solve_ph(solution, 1.0, 25.0) == pytest.approx(7.5, abs=0.05)
    assert solve_ph(precipitated, 1.0, 25.0) == pytest.approx(
        solve_ph(solution, 1.0, 25.0), abs=1e-5
    )


def test_hydroxides_come_down_in_the_order_a_purification_uses() -> None:
    # 44 L of leach liquor at 60 °C: Fe(III) by pH 3.5, Al by 5, Cu mostly by 5.5, Ni not yet.
    liquor = Liquor(sulfate=20.0, ni=11.7, fe=0.2, al=2.0, cu=0.57)

    def left(metal_name: str, ph: float) -> float:
        return dissolved(liquor, volume_l=44.0, t_c=60.0, ph=ph)[metal_name]

    assert left("fe", 3.5) < 0.01 * 0.2
    assert left("al", 3.0) > 0.5 * 2.0  # sulfate complexes keep it in a hot leach
    assert left("al", 5.0) < 0.01 * 2.0
    assert left("cu", 5.5) < 0.05 * 0.57
    assert left("ni", 5.5) == pytest.approx(11.7)
    assert left("ni", 7.5) < 0.1 * 11.7


def test_hydroxides_grow_less_soluble_at_a_given_ph_as_the_liquor_warms() -> None:
    for metal in (NICKEL, COPPER, IRON, ALUMINIUM):
        cold = equilibrium_dissolved(metal, volume_l=1.0, t_c=25.0, ph=5.0, free_ammonia_mol_l=0.0)
        hot = equilibrium_dissolved(metal, volume_l=1.0, t_c=60.0, ph=5.0, free_ammonia_mol_l=0.0)
        assert hot < cold


def test_ammonia_keeps_nickel_in_solution_as_ammines() -> None:
    bare = equilibrium_dissolved(NICKEL, volume_l=1.0, t_c=58.0, ph=11.0, free_ammonia_mol_l=0.0)
    with_nh3 = equilibrium_dissolved(
        NICKEL, volume_l=1.0, t_c=58.0, ph=11.0, free_ammonia_mol_l=0.2
    )
    assert with_nh3 > 1000 * bare
    assert with_nh3 < 1e-4  # still a small loss to the mother liquor at 0.2 M NH3


def test_leach_liquor_preset_is_acid_and_purifies_at_ph_5_5() -> None:
    params = PlantParams()
    leach = leach_liquor(params)
    assert solve_ph(leach.liquor, leach.volume_l, leach.temperature_c) < 3.0
    purified = purified_liquor(params)
    assert solve_ph(purified.liquor, purified.volume_l, purified.temperature_c) == pytest.approx(
        5.5, abs=1e-4
    )
    assert purified.liquor.fe < 1e-6
    assert purified.liquor.al < 1e-3
    assert purified.liquor.ni == pytest.approx(leach.liquor.ni)
    # ≈5 L of 4 M NaOH, not the 30 L a 1.3 M free-acid liquor would need
    assert 3.0 < purified.volume_l - leach.volume_l < 7.0


def test_speciation_splits_sulfate_and_ammonia_by_ph() -> None:
    liquor = Liquor(sulfate=1.0, ammonia=1.0, sodium=1.0)
    acid = speciation(liquor, volume_l=1.0, t_c=25.0, ph=1.0)
    base = speciation(liquor, volume_l=1.0, t_c=25.0, ph=11.0)
    assert acid.bisulfate > 0.8
    assert base.bisulfate < 1e-6
    assert acid.ammonium > 0.99
    assert base.free_ammonia_mol_l > 0.9


liquors = st.builds(
    Liquor,
    sulfate=st.floats(0.0, 5.0),
    sodium=st.floats(0.0, 10.0),
    ammonia=st.floats(0.0, 3.0),
    ni=st.floats(0.0, 2.0),
    fe=st.floats(0.0, 0.2),
    al=st.floats(0.0, 0.2),
    li=st.floats(0.0, 0.5),
    ni_s=st.floats(0.0, 1.0),
)


@given(liquor=liquors, t_c=st.floats(5.0, 95.0), hint=st.floats(-1.0, 15.0))
def test_solution_balances_charge_and_does_not_depend_on_the_hint(
    liquor: Liquor, t_c: float, hint: float
) -> None:
    cold = solve_ph(liquor, 1.0, t_c)
    warm = solve_ph(liquor, 1.0, t_c, hint)
    assert warm == pytest.approx(cold, abs=2e-6)
    # the root lies within the tolerance: the balance changes sign across ±1e-6 pH
    assert charge_imbalance(liquor, volume_l=1.0, t_c=t_c, ph=cold - 1.01e-6) >= 0.0
    assert charge_imbalance(liquor, volume_l=1.0, t_c=t_c, ph=cold + 1.01e-6) <= 0.0
