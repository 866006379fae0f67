"""The filter between recipes, and the campaign's mass balance: nothing lost, recovery and purity
as an assay would report them.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from hal.sim.chemistry import METALS, Liquor
from hal.sim.filtration import CAKE_MOISTURE_L_PER_KG, Cake, filter_slurry
from hal.sim.residue import Residue
from hal.sim.streams import Receiver
from unit_controller.sim.mass_balance import METAL_NAMES, MassBalance, Stream

# Every conserved species a Liquor carries; `bound_charge` is charge, not a species: the
# filter turns it into the sulfate a basic sulfate takes along into the cake.
SPECIES = tuple(f.name for f in dataclasses.fields(Liquor) if f.name != "bound_charge")
RESIDUE_FIELDS = tuple(f.name for f in dataclasses.fields(Residue))


def _slurry() -> Liquor:
    """A co-precipitation slurry: hydroxides in suspension, the rest dissolved."""
    return Liquor(
        sulfate=1.30,
        sodium=2.10,
        ammonia=0.90,
        ammonia_bound=0.05,
        li=0.02,
        ni=0.004,
        co=0.001,
        mn=0.0005,
        cu=0.0001,
        fe=0.00002,
        al=0.00003,
        bound_charge=0.06,  # a basic sulfate: 0.03 mol of sulfate goes with the solids
        ni_s=0.80,
        co_s=0.25,
        mn_s=0.24,
        cu_s=0.002,
        fe_s=0.001,
        al_s=0.003,
    )


def _residue() -> Residue:
    return Residue(
        ni=0.01, co=0.004, mn=0.003, li=0.002, ni_r=0.02, cu=0.001, fe=0.0005, graphite_kg=0.4
    )


def _receiver(
    *, liquor: Liquor | None = None, residue: Residue | None = None, volume_l: float = 45.0
) -> Receiver:
    receiver = Receiver()
    receiver.take(
        volume_l=volume_l,
        liquor=_slurry() if liquor is None else liquor,
        residue=Residue() if residue is None else residue,
        h2o2_mol=0.0,
        t_c=58.0,
    )
    return receiver


def _sum(*liquors: Liquor) -> Liquor:
    total = Liquor()
    for liquor in liquors:
        total.add(liquor)
    return total


# --- the filter keeps every mole ------------------------------------------------------------


@pytest.mark.parametrize("wash", [0.0, 0.3, 0.9, 1.0])
@pytest.mark.parametrize("species", SPECIES)
def test_every_mole_of_each_species_leaves_in_the_cake_or_the_filtrate(
    wash: float, species: str
) -> None:
    receiver = _receiver(residue=_residue())
    before = getattr(receiver.liquor, species)
    cake, filtrate = filter_slurry(receiver, wash_efficiency=wash)
    out = _sum(cake.solids, cake.entrained, filtrate.liquor)
    assert getattr(out, species) == pytest.approx(before, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("wash", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("metal", METAL_NAMES)
def test_every_mole_of_each_metal_leaves_in_the_cake_or_the_filtrate(
    wash: float, metal: str
) -> None:
    receiver = _receiver(residue=_residue())
    before = receiver.liquor.metal_total(metal) + receiver.residue.metal(metal)
    cake, filtrate = filter_slurry(receiver, wash_efficiency=wash)
    after = (
        cake.solids.metal_total(metal)
        + cake.residue.metal(metal)
        + cake.entrained.metal_total(metal)
        + filtrate.liquor.metal_total(metal)
    )
    assert after == pytest.approx(before, rel=1e-12)
    # and the balance's own view of the two streams agrees
    streams = (
        Stream.of("cake", cake=cake).mol[metal]
        + Stream.of("filtrate", liquor=filtrate.liquor).mol[metal]
    )
    assert streams == pytest.approx(before, rel=1e-12)


def test_the_filter_leaves_the_receiver_as_it_was() -> None:
    receiver = _receiver(residue=_residue())
    liquor, residue = receiver.liquor.copy(), receiver.residue.copy()
    filter_slurry(receiver, wash_efficiency=0.5)
    assert receiver.liquor == liquor
    assert receiver.residue == residue
    assert receiver.volume_l == 45.0


def test_solids_and_undissolved_black_mass_all_stay_on_the_filter() -> None:
    receiver = _receiver(residue=_residue())
    cake, filtrate = filter_slurry(receiver, wash_efficiency=0.8)
    for solid in ("ni_s", "co_s", "mn_s", "cu_s", "fe_s", "al_s"):
        assert getattr(cake.solids, solid) == getattr(receiver.liquor, solid)
        assert getattr(filtrate.liquor, solid) == 0.0
        assert getattr(cake.entrained, solid) == 0.0
    assert cake.residue == receiver.residue
    assert cake.residue is not receiver.residue


def test_a_basic_sulfate_takes_half_its_bound_charge_of_sulfate_into_the_cake() -> None:
    cake, filtrate = filter_slurry(_receiver(), wash_efficiency=1.0)
    assert cake.solids.sulfate == pytest.approx(0.5 * 0.06)
    assert filtrate.liquor.sulfate == pytest.approx(1.30 - 0.03)
    # no charge is left bound in any liquor the filter hands on
    assert filtrate.liquor.bound_charge == 0.0
    assert cake.entrained.bound_charge == 0.0


# --- washing --------------------------------------------------------------------------------


def test_unwashed_cake_keeps_its_moisture_of_liquor() -> None:
    receiver = _receiver(residue=_residue())
    cake, filtrate = filter_slurry(receiver, wash_efficiency=0.0)
    # the solids and graphite, by hand: hydroxides at their molar masses, residue as the plant
    # counts it; the cake holds 0.5 L of the filtrate's liquor per kg
    hydroxides_kg = {m.name: m.hydroxide_molar_mass_g / 1000.0 for m in METALS if m.ksp}
    dry_kg = sum(getattr(receiver.liquor, f"{n}_s") * kg for n, kg in hydroxides_kg.items())
    dry_kg += receiver.residue.mass_kg()
    dry_kg += 0.5 * 0.06 * 0.09606  # the basic sulfate's SO4 stays in the solids
    moisture_l = CAKE_MOISTURE_L_PER_KG * dry_kg
    share = moisture_l / 45.0
    assert 0.0 < share < 0.1
    for species in ("sodium", "ammonia", "li", "ni"):
        dissolved = getattr(receiver.liquor, species)
        assert getattr(cake.entrained, species) == pytest.approx(dissolved * share, rel=1e-9)
        assert getattr(filtrate.liquor, species) == pytest.approx(dissolved * (1 - share), rel=1e-9)
    assert cake.entrained.sulfate == pytest.approx((1.30 - 0.03) * share, rel=1e-9)


def test_a_perfect_wash_leaves_no_liquor_in_the_cake() -> None:
    cake, filtrate = filter_slurry(_receiver(residue=_residue()), wash_efficiency=1.0)
    assert all(value == 0.0 for value in cake.entrained.as_dict().values())
    assert filtrate.liquor.sodium == pytest.approx(2.10)


def test_a_better_wash_leaves_less_sodium_in_the_cake() -> None:
    entrained = [
        filter_slurry(_receiver(), wash_efficiency=wash)[0].entrained.sodium
        for wash in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert entrained == sorted(entrained, reverse=True)
    assert entrained[2] == pytest.approx(entrained[0] / 2)


def test_a_thick_slurry_keeps_at_most_all_its_liquor() -> None:
    # 2 kg of graphite in 0.5 L: the moisture a cake could hold (1 L) exceeds the liquor
    receiver = _receiver(
        liquor=Liquor(sodium=0.1, sulfate=0.05), residue=Residue(graphite_kg=2.0), volume_l=0.5
    )
    cake, filtrate = filter_slurry(receiver, wash_efficiency=0.0)
    assert cake.entrained.sodium == pytest.approx(0.1)
    assert filtrate.liquor.sodium == pytest.approx(0.0)


def test_the_filtrate_carries_the_slurry_volume_at_its_temperature() -> None:
    receiver = Receiver()
    receiver.take(volume_l=30.0, liquor=_slurry(), residue=Residue(), h2o2_mol=0.0, t_c=60.0)
    receiver.take(volume_l=10.0, liquor=Liquor(), residue=Residue(), h2o2_mol=0.0, t_c=20.0)
    _, filtrate = filter_slurry(receiver, wash_efficiency=0.6)
    # the wash water goes through with the displaced moisture: as much water out as in
    assert filtrate.volume_l == 40.0
    assert filtrate.temperature_c == pytest.approx(50.0)


@pytest.mark.parametrize("wash", [-0.01, 1.01, -1.0, 2.0, math.nan])
def test_a_wash_efficiency_outside_zero_to_one_is_refused(wash: float) -> None:
    with pytest.raises(ValueError, match=r"wash efficiency must be within 0\.\.1"):
        filter_slurry(_receiver(), wash_efficiency=wash)


# --- liquor only, or nothing ----------------------------------------------------------------


def test_a_receiver_with_only_liquor_gives_an_empty_cake() -> None:
    liquor = Liquor(sulfate=0.8, sodium=0.4, li=0.2, ni=0.3, co=0.1, mn=0.1, ammonia=0.02)
    receiver = _receiver(liquor=liquor, volume_l=50.0)
    cake, filtrate = filter_slurry(receiver, wash_efficiency=0.0)
    assert cake.dry_kg() == 0.0
    assert all(value == 0.0 for value in cake.solids.as_dict().values())
    assert all(value == 0.0 for value in cake.entrained.as_dict().values())
    assert cake.residue == Residue()
    assert filtrate.liquor == liquor
    assert filtrate.volume_l == 50.0


def test_an_empty_receiver_gives_an_empty_cake_and_filtrate_at_20_c() -> None:
    cake, filtrate = filter_slurry(Receiver(), wash_efficiency=0.5)
    assert cake.dry_kg() == 0.0
    assert filtrate.volume_l == 0.0
    assert filtrate.liquor == Liquor()
    assert filtrate.temperature_c == 20.0


def test_dry_cake_mass_counts_hydroxides_residue_and_what_the_moisture_left() -> None:
    cake = Cake(
        solids=Liquor(ni_s=1.0, al_s=0.5),
        residue=Residue(graphite_kg=0.25, cu=1.0),
        entrained=Liquor(co=0.5, sodium=1.0, sulfate=1.0),
    )
    expected = (
        1.0 * 0.092708  # Ni(OH)2
        + 0.5 * 0.078004  # Al(OH)3
        + 0.25  # graphite
        + 1.0 * 0.0635  # metallic copper
        + 0.5 * 0.058933  # Co left dissolved in the moisture
        + 1.0 * 0.02299  # Na
        + 1.0 * 0.09606  # SO4
    )
    assert cake.dry_kg() == pytest.approx(expected, rel=1e-9)


# --- the mass balance -----------------------------------------------------------------------


def _metals_of(receiver: Receiver) -> dict[str, float]:
    return {
        name: receiver.liquor.metal_total(name) + receiver.residue.metal(name)
        for name in METAL_NAMES
    }


def test_closure_is_100_pct_when_the_streams_hold_everything_that_came_in() -> None:
    receiver = _receiver(residue=_residue())
    cake, filtrate = filter_slurry(receiver, wash_efficiency=0.7)
    balance = MassBalance(metals_in=_metals_of(receiver))
    balance.add(Stream.of("cake", cake=cake))
    balance.add(Stream.of("filtrate", liquor=filtrate.liquor))
    summary = balance.summary()
    assert summary["closure_pct"] == 100.0
    assert set(summary["closure_pct_by_metal"]) == set(METAL_NAMES)
    assert all(value == 100.0 for value in summary["closure_pct_by_metal"].values())
    assert set(summary["streams_mol"]) == {"cake", "filtrate"}


def test_closure_shows_what_a_lost_stream_took() -> None:
    balance = MassBalance(metals_in={"ni": 1.0, "co": 1.0})
    balance.add(Stream.of("product", liquor=Liquor(ni_s=0.9, co_s=0.5)))
    summary = balance.summary()
    assert summary["closure_pct"] == 70.0
    assert summary["closure_pct_by_metal"] == {"ni": 90.0, "co": 50.0}


def test_stream_of_a_residue_and_a_liquor_adds_both() -> None:
    stream = Stream.of(
        "in_reactor", liquor=Liquor(ni=0.1, ni_s=0.2, li=0.05), residue=Residue(ni=0.3, ni_r=0.4)
    )
    assert stream.mol["ni"] == pytest.approx(1.0)
    assert stream.mol["li"] == pytest.approx(0.05)
    assert set(stream.mol) == set(METAL_NAMES)


def _product() -> Cake:
    """A hand-built pCAM cake: 1 mol Ni, 0.2 Co, 0.2 Mn hydroxide, traces, a little liquor."""
    return Cake(
        solids=Liquor(ni_s=1.0, co_s=0.2, mn_s=0.2, fe_s=0.001, sulfate=0.001),
        residue=Residue(),
        entrained=Liquor(sodium=0.01, sulfate=0.002, li=0.0005),
    )


def test_recovery_is_the_share_of_each_pcam_metal_in_the_product() -> None:
    balance = MassBalance(
        metals_in={"ni": 1.25, "co": 0.2, "mn": 0.4, "li": 0.5, "fe": 0.002}, product=_product()
    )
    summary = balance.summary()
    # only Ni, Co and Mn make pCAM; Li and Fe are not "recovered" into it
    assert summary["recovery_pct"] == {"ni": 80.0, "co": 100.0, "mn": 50.0}
    assert summary["metals_in_product_mol"]["ni"] == 1.0
    assert summary["metals_in_product_mol"]["li"] == 0.0005


def test_recovery_skips_a_metal_that_never_came_in() -> None:
    balance = MassBalance(metals_in={"ni": 1.0, "co": 0.0}, product=_product())
    assert balance.summary()["recovery_pct"] == {"ni": 100.0}


def test_impurities_in_ppm_of_the_dry_product_match_a_hand_calculation() -> None:
    balance = MassBalance(metals_in={"ni": 1.0, "co": 0.2, "mn": 0.2}, product=_product())
    summary = balance.summary()
    # dry mass: hydroxides 92.708 + 0.2·92.948 + 0.2·88.953 + 0.001·106.867 g, the basic
    # sulfate's SO4 (96.06 g/mol) and the entrained Li (6.94), Na (22.99) and SO4
    dry_g = (
        92.708
        + 0.2 * 92.948
        + 0.2 * 88.953
        + 0.001 * 106.867
        + 0.001 * 96.06
        + 0.0005 * 6.94
        + 0.01 * 22.99
        + 0.002 * 96.06
    )
    assert dry_g == pytest.approx(129.7166, abs=1e-4)
    assert summary["product_kg"] == round(dry_g / 1000.0, 4) == 0.1297
    impurities = summary["impurities_ppm"]
    # Fe: 0.001 mol × 55.845 g/mol = 55.845 mg in 129.72 g → 430.5 ppm
    assert impurities["fe"] == pytest.approx(430.5, abs=0.05)
    assert impurities["li"] == pytest.approx(0.0005 * 6.94 / dry_g * 1e6, abs=0.05)  # 26.8
    assert impurities["al"] == 0.0
    assert impurities["cu"] == 0.0
    assert impurities["na"] == pytest.approx(0.01 * 22.99 / dry_g * 1e6, abs=0.05)  # 1772.3
    # S from the entrained liquor and the basic sulfate: 0.003 mol × 32.06 g/mol
    assert impurities["s"] == pytest.approx(0.003 * 32.06 / dry_g * 1e6, abs=0.05)  # 741.5


def test_without_a_product_there_is_no_recovery_or_impurity() -> None:
    summary = MassBalance(metals_in={"ni": 1.0}).summary()
    assert summary["metals_in_product_mol"] == {}
    assert summary["recovery_pct"] == {"ni": 0.0}
    assert summary["product_kg"] == 0.0
    assert summary["impurities_ppm"] == {}


def test_an_empty_product_has_no_impurity_figures() -> None:
    summary = MassBalance(metals_in={"ni": 1.0}, product=Cake()).summary()
    assert summary["impurities_ppm"] == {}
    assert summary["product_kg"] == 0.0


@pytest.mark.parametrize(
    "metals_in", [{}, dict.fromkeys(METAL_NAMES, 0.0)], ids=["no_metals", "all_zero"]
)
def test_closure_is_none_when_nothing_came_in(metals_in: dict[str, float]) -> None:
    balance = MassBalance(metals_in=metals_in)
    balance.add(Stream.of("filtrate", liquor=Liquor(ni=0.1)))
    summary = balance.summary()
    assert summary["closure_pct"] is None
    assert summary["closure_pct_by_metal"] == {}
    assert summary["recovery_pct"] == {}


# --- known bug: a precipitate that took more than 2 OH⁻ per metal ---------------------------


def _over_hydroxide_slurry() -> Receiver:
    # 2.35 mol of Ni/Co/Mn precipitated at 2.05 OH⁻ per metal: bound_charge = -0.05 × 2.35
    return _receiver(
        liquor=Liquor(sulfate=2.4, sodium=4.9, ammonia=1.0, ni_s=2.35, bound_charge=-0.1175)
    )


def test_a_precipitate_that_took_extra_hydroxide_leaves_no_negative_sulfate_in_the_cake() -> None:
    cake, filtrate = filter_slurry(_over_hydroxide_slurry(), wash_efficiency=0.99)
    assert cake.solids.sulfate >= 0.0
    assert filtrate.liquor.sulfate <= 2.4
    # the surplus hydroxide's charge is balanced by sodium held in the cake instead
    assert cake.solids.sodium > 0.0
    assert cake.solids.sodium + cake.entrained.sodium + filtrate.liquor.sodium == pytest.approx(4.9)


def test_the_product_of_an_over_hydroxide_precipitation_has_no_negative_sulfur() -> None:
    cake, _ = filter_slurry(_over_hydroxide_slurry(), wash_efficiency=0.99)
    summary = MassBalance(metals_in={"ni": 2.35}, product=cake).summary()
    assert summary["impurities_ppm"]["s"] >= 0.0
