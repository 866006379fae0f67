"""Plant behaviour an operator would check: heating, cooling, level, overflow, dry running.

Also the contents presets a recipe starts from.
"""

from __future__ import annotations

import pytest

from hal.sim.chemistry import pkw
from hal.sim.params import PlantParams
from hal.sim.plant import Plant
from hal.wiring import BoardWiring, LevelPoint

DT = 0.1


def sim_wiring() -> BoardWiring:
    """The sim unit's wiring (as in deploy/examples/sim.toml), spelled out so tests own it."""
    devices: dict[str, dict[str, object]] = {
        "TT-101": {"kind": "rtd"},
        "AT-101": {"kind": "ph_probe"},
        "E-101": {"kind": "heater", "power_w": 6000.0},
        "K-101": {"kind": "coil", "function": "contactor"},
        "M-101": {"kind": "coil", "function": "agitator"},
        "P-101": {"kind": "coil", "function": "fill_pump", "flow_l_min": 12.0},
        "XV-101": {"kind": "coil", "function": "drain_valve", "flow_l_min": 20.0},
        "XV-102": {"kind": "coil", "function": "purge_valve"},
        "LSLL-101": {"kind": "level_switch", "point": "low_low", "at_l": 15.0},
        "LSL-101": {"kind": "level_switch", "point": "low", "at_l": 40.0},
        "LSH-101": {"kind": "level_switch", "point": "high", "at_l": 100.0},
        "LSHH-101": {"kind": "level_switch", "point": "high_high", "at_l": 112.0},
        "HS-100": {"kind": "estop"},
        "P-201": {"kind": "dosing_pump", "reagent": "h2so4", "concentration_mol_l": 18.0},
        "P-202": {"kind": "dosing_pump", "reagent": "h2o2", "concentration_mol_l": 9.8},
        "P-203": {"kind": "dosing_pump", "reagent": "naoh", "concentration_mol_l": 4.0},
        "P-204": {"kind": "dosing_pump", "reagent": "nh4oh", "concentration_mol_l": 6.0},
        "P-205": {"kind": "dosing_pump", "reagent": "metal_sulfate", "concentration_mol_l": 2.0},
    }
    return BoardWiring.model_validate({"devices": devices})


def make_plant(**params: float) -> Plant:
    """A plant on the sim wiring with `params` overriding the defaults."""
    return Plant(params=PlantParams(**params), wiring=sim_wiring())


def run(plant: Plant, seconds: float) -> None:
    """Step the plant for `seconds` at the scan period."""
    for _ in range(round(seconds / DT)):
        plant.step(DT)


def heat_on(plant: Plant) -> None:
    """Energise the heater the normal way: contactor closed and SSR conducting."""
    plant.contactor_closed = True
    plant.ssr_on = True


def test_six_kw_heats_110_kg_at_0_86_k_per_min() -> None:
    plant = make_plant(
        initial_volume_l=100.0,
        density_kg_l=1.1,
        cp_j_kg_k=3800.0,
        ua_w_k=0.0,
        ambient_c=20.0,
        initial_temperature_c=20.0,
        heater_tau_s=120.0,
    )
    heat_on(plant)
    run(plant, 1200.0)  # ten element time constants: the lag has settled
    start = plant.temperature_c
    run(plant, 600.0)
    slope_k_min = (plant.temperature_c - start) / 10.0
    assert slope_k_min == pytest.approx(0.86, rel=0.05)
    assert plant.heater_power_w == pytest.approx(6000.0, rel=1e-3)


def test_element_power_lags_with_heater_tau() -> None:
    plant = make_plant(initial_volume_l=100.0, heater_tau_s=120.0)
    heat_on(plant)
    run(plant, 120.0)
    assert plant.heater_power_w == pytest.approx(6000.0 * (1 - 0.36788), rel=0.01)


def test_losses_cool_toward_ambient() -> None:
    plant = make_plant(
        initial_volume_l=100.0, initial_temperature_c=80.0, ambient_c=20.0, ua_w_k=12.0
    )
    run(plant, 3600.0)
    tau_s = 110.0 * 3800.0 / 12.0
    expected = 20.0 + 60.0 * 2.718281828 ** (-3600.0 / tau_s)
    assert plant.temperature_c == pytest.approx(expected, abs=0.1)
    assert plant.temperature_c > 20.0
    assert plant.max_temperature_c == pytest.approx(80.0)


def test_filling_adds_volume_at_pump_flow_and_switches_go_wet_at_their_volumes() -> None:
    plant = make_plant()
    assert plant.volume_l == 0.0
    assert not any(plant.wet(p) for p in LevelPoint)
    plant.fill_pump_on = True
    run(plant, 60.0)
    assert plant.volume_l == pytest.approx(12.0, rel=1e-6)
    wet_at: dict[LevelPoint, float] = {}
    while plant.volume_l < 115.0:
        plant.step(DT)
        for point in LevelPoint:
            if plant.wet(point) and point not in wet_at:
                wet_at[point] = plant.volume_l
    wiring = sim_wiring()
    for point in LevelPoint:
        # It went wet within one step's inflow (0.02 L) of the switch's volume.
        assert wet_at[point] == pytest.approx(wiring.level_switch(point).at_l, abs=0.021)


def test_fill_water_cools_the_batch_toward_water_temperature() -> None:
    plant = make_plant(initial_volume_l=50.0, initial_temperature_c=60.0, water_c=15.0, ua_w_k=0)
    plant.fill_pump_on = True
    run(plant, 250.0)  # 50 L more
    assert plant.temperature_c == pytest.approx(37.5, abs=0.05)


def test_drain_empties_the_reactor() -> None:
    plant = make_plant()
    plant.preload("leach_liquor")
    plant.drain_open = True
    run(plant, 299.0)
    assert 0.0 < plant.volume_l < 1.0
    run(plant, 10.0)
    assert plant.volume_l == 0.0
    assert plant.composition.sulfate == 0.0
    assert plant.ph == 7.0
    assert not plant.wet(LevelPoint.LOW_LOW)


def test_overflow_counts_spilled_litres() -> None:
    plant = make_plant(initial_volume_l=115.0, capacity_l=120.0)
    plant.fill_pump_on = True
    run(plant, 60.0)  # 12 L in, room for 5
    assert plant.volume_l == pytest.approx(120.0)
    assert plant.overflow_l == pytest.approx(7.0, rel=1e-6)


def test_heater_on_dry_counts_only_when_energised_below_low_low() -> None:
    plant = make_plant()
    heat_on(plant)
    run(plant, 10.0)
    assert plant.heater_on_dry_s == pytest.approx(10.0)
    plant.ssr_on = False
    run(plant, 10.0)
    assert plant.heater_on_dry_s == pytest.approx(10.0)
    plant.fill_pump_on = True
    run(plant, 80.0)  # 16 L: the element is covered
    plant.fill_pump_on = False
    plant.ssr_on = True
    before = plant.heater_on_dry_s
    run(plant, 30.0)
    assert plant.heater_on_dry_s == pytest.approx(before)
    assert before < 20.0 + 80.0


def test_ssr_on_with_contactor_open_gives_no_power() -> None:
    plant = make_plant(initial_volume_l=100.0, ua_w_k=0.0)
    plant.ssr_on = True
    plant.contactor_closed = False
    run(plant, 300.0)
    assert plant.heater_power_w == 0.0
    assert plant.temperature_c == pytest.approx(20.0)


def test_open_heater_element_gives_no_power() -> None:
    plant = make_plant(initial_volume_l=100.0, ua_w_k=0.0)
    heat_on(plant)
    plant.heater_open = True
    run(plant, 300.0)
    assert plant.heater_power_w == 0.0
    assert plant.heater_on_dry_s == 0.0


def test_dosing_counts_true_millilitres_and_adds_volume() -> None:
    plant = make_plant(initial_volume_l=50.0)
    plant.pump_ml_min["P-203"] = 60.0
    run(plant, 120.0)
    assert plant.dosed_ml["P-203"] == pytest.approx(120.0, rel=1e-6)
    assert plant.dosed_ml["P-201"] == 0.0
    assert plant.volume_l == pytest.approx(50.12, rel=1e-6)
    assert plant.composition.sodium == pytest.approx(0.48, rel=1e-6)


def test_peroxide_decomposes_and_warms_the_batch() -> None:
    plant = make_plant(initial_volume_l=100.0, ua_w_k=0.0, water_c=20.0)
    plant.pump_ml_min["P-202"] = 100.0
    run(plant, 600.0)  # 1 L, 9.8 mol in
    plant.pump_ml_min["P-202"] = 0.0
    run(plant, 6000.0)  # ten time constants
    assert plant.h2o2_mol < 0.01
    rise = 9.8 * 98_000.0 / (101.0 * 1.1 * 3800.0)
    assert plant.temperature_c == pytest.approx(20.0 + rise, abs=0.05)


def test_boiling_caps_temperature_and_evaporates() -> None:
    plant = make_plant(initial_volume_l=30.0, initial_temperature_c=95.0, ua_w_k=0.0)
    heat_on(plant)
    run(plant, 1800.0)
    assert plant.temperature_c <= 102.0
    assert plant.evaporated_l > 1.0


def test_water_preset_sits_between_low_and_high() -> None:
    plant = make_plant(initial_temperature_c=18.0)
    plant.preload("water")
    assert plant.volume_l == pytest.approx(70.0)
    assert plant.temperature_c == 18.0
    assert plant.wet(LevelPoint.LOW)
    assert not plant.wet(LevelPoint.HIGH)
    assert plant.ph == pytest.approx(pkw(18.0) / 2, abs=1e-4)


def test_leach_liquor_reaches_purify_ph_with_under_three_litres_of_naoh() -> None:
    plant = make_plant()
    plant.preload("leach_liquor")
    assert plant.volume_l == pytest.approx(100.0)
    assert plant.temperature_c == pytest.approx(40.0)
    assert plant.ph < 3.0
    plant.pump_ml_min["P-203"] = 105.0
    while plant.ph < 4.25 and plant.time_s < 3600.0:
        plant.step(DT)
    assert plant.ph >= 4.25
    assert 1500.0 < plant.dosed_ml["P-203"] < 3000.0


def test_purified_liquor_preset_is_at_ph_4_3() -> None:
    plant = make_plant()
    plant.preload("purified_liquor")
    assert plant.ph == pytest.approx(4.3, abs=1e-4)
    assert plant.composition.m == pytest.approx(40.0)
    assert plant.composition.fe == 0.0


def test_unknown_preset_names_the_valid_ones() -> None:
    plant = make_plant()
    with pytest.raises(ValueError, match="leach_liquor"):
        plant.preload("slurry")


def test_black_mass_in_acid_dissolves_and_consumes_acid() -> None:
    plant = make_plant()
    plant.preload("water")
    plant.pump_ml_min["P-201"] = 100.0
    run(plant, 60.0)  # 1.8 mol H2SO4 in 70 L
    plant.pump_ml_min["P-201"] = 0.0
    run(plant, 1.0)
    acid_ph = plant.ph
    assert acid_ph < 2.0
    plant.charge_black_mass(0.1)  # 1 mol of M takes 2 of the 3.6 mol H+
    assert acid_ph + 0.1 < plant.ph < 3.0
    plant.charge_black_mass(1.0)  # far more oxide than acid: the slurry turns alkaline
    assert plant.ph > 7.0
