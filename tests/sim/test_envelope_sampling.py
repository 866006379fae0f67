"""The design envelope: plants drawn by seed across every parameter's range, and the checks that
keep an envelope honest."""

from __future__ import annotations

import itertools

import pytest

from hal.sim.envelope import (
    DEFAULT_RANGES,
    MAX_CORNERS,
    TooManyCorners,
    corner_plants,
    corners,
    draw,
    range_problems,
    with_plant_values,
)
from hal.sim.params import PlantParams, plant_figures

BASE = PlantParams()


def _values(plants: list[tuple[int, PlantParams]], name: str) -> list[float]:
    return [plant_figures(plant)[name] for _, plant in plants]


# --- drawing by seed ------------------------------------------------------------------------


def test_the_same_seed_draws_the_same_plants() -> None:
    first = draw(BASE, DEFAULT_RANGES, runs=8, seed=42)
    second = draw(BASE, DEFAULT_RANGES, runs=8, seed=42)
    assert first == second


def test_another_seed_draws_other_plants_and_noise_seeds() -> None:
    first = draw(BASE, DEFAULT_RANGES, runs=8, seed=42)
    other = draw(BASE, DEFAULT_RANGES, runs=8, seed=43)
    assert [plant for _, plant in first] != [plant for _, plant in other]
    assert [seed for seed, _ in first] != [seed for seed, _ in other]
    for name in DEFAULT_RANGES:
        assert _values(first, name) != _values(other, name)


def test_the_order_the_ranges_are_listed_in_does_not_change_the_draw() -> None:
    reversed_ranges = dict(reversed(list(DEFAULT_RANGES.items())))
    assert draw(BASE, reversed_ranges, runs=6, seed=7) == draw(BASE, DEFAULT_RANGES, runs=6, seed=7)


def test_each_plant_gets_its_own_noise_seed() -> None:
    plants = draw(BASE, DEFAULT_RANGES, runs=32, seed=1)
    seeds = [seed for seed, _ in plants]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= seed < 2**31 for seed in seeds)


@pytest.mark.parametrize("runs", [1, 2, 5, 17, 64])
def test_latin_hypercube_puts_one_value_in_each_stratum_of_every_range(runs: int) -> None:
    plants = draw(BASE, DEFAULT_RANGES, runs=runs, seed=runs)
    assert len(plants) == runs
    for name, (low, high) in DEFAULT_RANGES.items():
        width = (high - low) / runs
        eps = 1e-9 * (high - low)
        # sorted, the k-th value must sit in the k-th of `runs` equal strata
        for k, value in enumerate(sorted(_values(plants, name))):
            assert low + k * width - eps <= value <= low + (k + 1) * width + eps, (name, k, value)


def test_the_strata_are_not_drawn_in_the_same_order_for_every_parameter() -> None:
    # a hypercube, not a diagonal: the parameters are paired at random
    plants = draw(BASE, DEFAULT_RANGES, runs=20, seed=3)
    orders = set()
    for name in DEFAULT_RANGES:
        values = _values(plants, name)
        orders.add(tuple(sorted(range(20), key=values.__getitem__)))
    assert len(orders) == len(DEFAULT_RANGES)


@pytest.mark.parametrize("seed", [0, 1, 2, 99])
def test_every_drawn_plant_is_valid_and_within_its_ranges(seed: int) -> None:
    base = plant_figures(BASE)
    for _, plant in draw(BASE, DEFAULT_RANGES, runs=10, seed=seed):
        assert isinstance(plant, PlantParams)
        # it validates again as it is: no value slipped past a bound
        assert PlantParams.model_validate(plant.model_dump()) == plant
        figures = plant_figures(plant)
        for name, value in figures.items():
            if name in DEFAULT_RANGES:
                low, high = DEFAULT_RANGES[name]
                assert low <= value <= high, name
            else:
                assert value == base[name], f"{name} changed though it has no range"


def test_a_black_mass_range_draws_its_composition() -> None:
    ranges = {"black_mass.cu_pct": (0.2, 3.0), "ph_noise": (0.01, 0.03)}
    plants = draw(BASE, ranges, runs=7, seed=5)
    copper = sorted(plant.black_mass.cu_pct for _, plant in plants)
    for k, value in enumerate(copper):
        assert 0.2 + k * 0.4 <= value <= 0.2 + (k + 1) * 0.4 + 1e-12
    for _, plant in plants:
        # the rest of the black mass is the base's
        assert plant.black_mass.ni_pct == BASE.black_mass.ni_pct
        assert plant.black_mass.graphite_pct == BASE.black_mass.graphite_pct


def test_a_range_of_one_value_draws_that_value() -> None:
    plants = draw(BASE, {"ph_tau_s": (20.0, 20.0)}, runs=4, seed=1)
    assert [plant.ph_tau_s for _, plant in plants] == [20.0] * 4


def test_drawing_without_ranges_gives_the_base_plant_with_noise_seeds() -> None:
    plants = draw(BASE, {}, runs=3, seed=1)
    assert [plant for _, plant in plants] == [BASE] * 3


@pytest.mark.parametrize("runs", [0, -1])
def test_drawing_fewer_than_one_run_is_refused(runs: int) -> None:
    with pytest.raises(ValueError, match="runs must be >= 1"):
        draw(BASE, DEFAULT_RANGES, runs=runs, seed=1)


def test_a_draw_that_breaks_the_black_mass_balance_is_refused() -> None:
    # graphite up to 80 % with the default metals (36 %) makes more than 100 %
    with pytest.raises(ValueError, match="more than 100"):
        draw(BASE, {"black_mass.graphite_pct": (70.0, 80.0)}, runs=3, seed=1)


# --- corners --------------------------------------------------------------------------------


def test_corners_are_every_combination_of_the_ends() -> None:
    found = corners(BASE, DEFAULT_RANGES)
    k = len(DEFAULT_RANGES)
    assert len(found) == 2**k
    as_tuples = {tuple(sorted(corner.items())) for corner in found}
    assert len(as_tuples) == 2**k
    expected = {
        tuple(sorted(zip(sorted(DEFAULT_RANGES), ends, strict=True)))
        for ends in itertools.product(*(DEFAULT_RANGES[n] for n in sorted(DEFAULT_RANGES)))
    }
    assert as_tuples == expected


def test_each_end_of_each_range_is_in_half_the_corners() -> None:
    found = corners(BASE, DEFAULT_RANGES)
    for name, (low, high) in DEFAULT_RANGES.items():
        assert sum(corner[name] == low for corner in found) == len(found) // 2
        assert sum(corner[name] == high for corner in found) == len(found) // 2


def test_the_corners_of_two_ranges() -> None:
    ranges = {"ph_noise": (0.01, 0.03), "black_mass.cu_pct": (0.5, 2.0)}
    assert corners(BASE, ranges) == [
        {"black_mass.cu_pct": 0.5, "ph_noise": 0.01},
        {"black_mass.cu_pct": 0.5, "ph_noise": 0.03},
        {"black_mass.cu_pct": 2.0, "ph_noise": 0.01},
        {"black_mass.cu_pct": 2.0, "ph_noise": 0.03},
    ]


def test_every_corner_of_the_default_envelope_is_a_valid_plant() -> None:
    for corner in corners(BASE, DEFAULT_RANGES):
        plant = with_plant_values(BASE, corner)
        figures = plant_figures(plant)
        assert all(figures[name] == value for name, value in corner.items())


def test_no_ranges_have_one_corner_the_base_itself() -> None:
    assert corners(BASE, {}) == [{}]


def test_corner_plants_are_the_corners_with_a_noise_seed_each_from_the_seed() -> None:
    plants = corner_plants(BASE, DEFAULT_RANGES, seed=5)
    assert [
        {name: plant_figures(plant)[name] for name in DEFAULT_RANGES} for _, plant in plants
    ] == corners(BASE, DEFAULT_RANGES)
    assert plants == corner_plants(BASE, DEFAULT_RANGES, seed=5)
    assert [s for s, _ in plants] != [s for s, _ in corner_plants(BASE, DEFAULT_RANGES, seed=6)]


def test_too_many_corners_are_refused_naming_the_count() -> None:
    names = [
        "ph_tau_s",
        "mixing_dead_time_s",
        "ph_noise",
        "ph_offset",
        "feed_scale",
        "hydroxide_per_metal",
        "ph_spikes_per_h",
        "ph_spike_size",
        "ph_drift_per_h",
        "pump_error",
        "precipitation_tau_s",
    ]
    ranges = {name: (plant_figures(BASE)[name],) * 2 for name in names}
    assert 2 ** len(ranges) > MAX_CORNERS
    with pytest.raises(TooManyCorners, match="11 ranged parameters make 2048 corners"):
        corner_plants(BASE, ranges, seed=1)


# --- range problems -------------------------------------------------------------------------


def test_the_default_envelope_has_no_problems() -> None:
    assert range_problems(DEFAULT_RANGES) == []


def test_range_problems_names_an_unknown_parameter() -> None:
    problems = range_problems({"ph_tua_s": (5.0, 30.0)})
    assert len(problems) == 1
    assert problems[0].startswith("ph_tua_s: not a plant parameter (known: ")
    assert "ph_tau_s" in problems[0]  # the known names are listed


def test_range_problems_reports_low_above_high() -> None:
    assert range_problems({"ph_tau_s": (30.0, 5.0)}) == ["ph_tau_s: low 30 is above high 5"]


def test_range_problems_reports_an_end_out_of_bounds() -> None:
    problems = range_problems({"ph_noise": (0.0, 0.6)})
    assert len(problems) == 1
    assert problems[0].startswith("ph_noise: ")
    assert "0.5" in problems[0]
    assert "(got 0.6)" in problems[0]


def test_range_problems_reports_a_low_end_out_of_bounds() -> None:
    problems = range_problems({"feed_scale": (0.0, 5.0)})
    assert len(problems) == 1
    assert problems[0].startswith("feed_scale: ")
    assert "(got 0.0)" in problems[0]


def test_range_problems_reports_a_black_mass_end_out_of_bounds() -> None:
    problems = range_problems({"black_mass.cu_pct": (0.0, 20.0)})
    assert len(problems) == 1
    assert problems[0].startswith("black_mass.cu_pct: ")


def test_range_problems_lists_every_bad_range_once_in_name_order() -> None:
    problems = range_problems(
        {
            "ph_noise": (0.0, 0.6),
            "bogus": (0.0, 1.0),
            "ph_tau_s": (30.0, 5.0),
            "feed_scale": (1.0, 5.0),  # fine
            "hydroxide_per_metal": (1.0, 3.0),  # both ends out: reported once
        }
    )
    assert len(problems) == 4
    assert "bogus" in problems[0]
    assert problems[1].startswith("hydroxide_per_metal: ")
    assert problems[2].startswith("ph_noise: ")
    assert problems[3] == "ph_tau_s: low 30 is above high 5"


# --- with_plant_values ----------------------------------------------------------------------


def test_with_plant_values_sets_flat_and_black_mass_values() -> None:
    plant = with_plant_values(BASE, {"ph_noise": 0.02, "black_mass.cu_pct": 2.5})
    assert plant.ph_noise == 0.02
    assert plant.black_mass.cu_pct == 2.5
    assert plant.black_mass.ni_pct == BASE.black_mass.ni_pct
    assert BASE.ph_noise == PlantParams().ph_noise  # the base is untouched


def test_with_plant_values_names_an_unknown_parameter() -> None:
    with pytest.raises(ValueError, match=r"^ph_nosie: not a plant parameter \(known: ") as err:
        with_plant_values(BASE, {"ph_nosie": 0.02, "ph_noise": 0.02})
    assert "black_mass.cu_pct" in str(err.value)


def test_with_plant_values_names_every_unknown_parameter_sorted() -> None:
    with pytest.raises(
        ValueError,
        match=r"^black_mass.tin_pct: not a plant parameter; zeta: not a plant parameter \(known: ",
    ):
        with_plant_values(BASE, {"zeta": 1.0, "black_mass.tin_pct": 1.0})


def test_with_plant_values_names_an_out_of_bounds_value() -> None:
    with pytest.raises(ValueError, match=r"^ph_noise: .* \(got 0\.6\)$"):
        with_plant_values(BASE, {"ph_noise": 0.6})


def test_with_plant_values_names_every_out_of_bounds_value() -> None:
    with pytest.raises(ValueError, match=r"ph_noise: .*; black_mass\.cu_pct: ") as err:
        with_plant_values(BASE, {"ph_noise": 0.6, "black_mass.cu_pct": 20.0})
    assert "(got 20.0)" in str(err.value)


def test_no_iae_ratio_is_claimed_against_a_batch_that_did_not_complete() -> None:
    # The on/off baseline held partway: its IAE stops short, and ours over it read 2.1x worse.
    from unit_controller.sim.envelope_runner import _ratio

    iae = {"ph_true": 219.0}
    done = {"final_state": "COMPLETE", "iae": {"ph_true": 106.0}}
    held = {"final_state": "HELD", "iae": {"ph_true": 106.0}}
    ours = {"final_state": "COMPLETE", "iae": iae}
    assert _ratio(ours, held, "ph_true") is None
    assert _ratio({**ours, "final_state": "HELD"}, done, "ph_true") is None
    assert _ratio(ours, done, "ph_true") == round(219.0 / 106.0, 3)
