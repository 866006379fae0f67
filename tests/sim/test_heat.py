"""Plant behaviour an operator would check: heating, cooling, level, overflow, dry running, and
each of the effects that make a real reactor hard to control.

Also the contents presets a recipe starts from.
"""

from __future__ import annotations

import pytest

from hal.sim.chemistry import pkw
from hal.sim.params import PlantParams
from hal.sim.plant import Plant
from hal.wiring import BoardWiring, LevelPoint

DT = 0.1
# A vessel with none of the side effects, so the classic balances are checked alone.
BARE = {
    "vessel_heat_capacity_j_k": 0.0,
    "agitator_w": 0.0,
    "purge_nl_min": 0.0,
    "vent_nl_min": 0.0,
    "mixing_dead_time_s": 0.0,
}


def sim_wiring(*, cooling: bool = True) -> BoardWiring:
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
    if cooling:
        devices["XV-103"] = {
            "kind": "coil",
            "function": "cooling_valve",
            "flow_l_min": 4.0,
            "ua_w_k": 400.0,
        }
    return BoardWiring.model_validate({"devices": devices})


def make_plant(*, bare: bool = True, cooling: bool = True, **params: float) -> Plant:
    """A plant on the sim wiring with `params` overriding the defaults (side effects off)."""
    values: dict[str, float] = (dict(BARE) if bare else {}) | params
    return Plant(params=PlantParams.model_validate(values), wiring=sim_wiring(cooling=cooling))


def run(plant: Plant, seconds: float) -> None:
    """Step the plant for `seconds` at the scan period."""
    for _ in range(round(seconds / DT)):
        plant.step(DT)


def heat_on(plant: Plant) -> None:
    """Energise the heater the normal way: contactor closed and SSR conducting."""
    plant.contactor_closed = True
    plant.ssr_on = True


def test_six_kw_heats_110_kg_at_0_86_k_per_min() -> None:
    plant = make_plant(initial_volume_l=100.0, ua_w_k=0.0, initial_temperature_c=20.0)
    heat_on(plant)
    run(plant, 1200.0)  # ten element time constants: the lag has settled
    start = plant.temperature_c
    run(plant, 600.0)
    assert (plant.temperature_c - start) / 10.0 == pytest.approx(0.86, rel=0.05)
    assert plant.heater_power_w == pytest.approx(6000.0, rel=1e-3)


def test_the_vessel_itself_takes_heat_too() -> None:
    bare = make_plant(initial_volume_l=100.0, ua_w_k=0.0)
    steel = make_plant(initial_volume_l=100.0, ua_w_k=0.0, vessel_heat_capacity_j_k=30_000.0)
    for plant in (bare, steel):
        heat_on(plant)
        run(plant, 1800.0)
    rise_bare, rise_steel = bare.temperature_c - 20.0, steel.temperature_c - 20.0
    assert rise_steel == pytest.approx(rise_bare * 418_000 / 448_000, rel=0.01)


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
    assert plant.max_temperature_c == pytest.approx(80.0)


def test_the_agitator_warms_the_batch() -> None:
    plant = make_plant(initial_volume_l=100.0, ua_w_k=0.0, agitator_w=200.0)
    plant.agitator_on = True
    run(plant, 3600.0)
    assert plant.temperature_c - 20.0 == pytest.approx(200.0 * 3600 / 418_000, rel=0.02)


def test_a_purge_over_a_hot_batch_evaporates_water_and_takes_its_heat() -> None:
    still = make_plant(initial_volume_l=50.0, initial_temperature_c=75.0, ua_w_k=0.0)
    purged = make_plant(
        initial_volume_l=50.0, initial_temperature_c=75.0, ua_w_k=0.0, purge_nl_min=10.0
    )
    purged.purge_on = True
    run(still, 3600.0)
    run(purged, 3600.0)
    # ≈ 0.3 kg/h of water leaves with 10 NL/min of N2 at 75 °C, ≈ 200 W of latent heat
    assert 0.15 < purged.evaporated_l < 0.5
    assert purged.temperature_c < still.temperature_c - 2.0


def test_the_jacket_cools_when_its_valve_opens() -> None:
    plant = make_plant(initial_volume_l=50.0, initial_temperature_c=75.0, ua_w_k=0.0)
    plant.cooling_open = True
    run(plant, 300.0)
    assert plant.temperature_c < 62.0  # ≈ 12 kW at 75 °C with 15 °C water


def test_no_jacket_means_no_cooling() -> None:
    plant = make_plant(cooling=False, initial_volume_l=50.0, initial_temperature_c=75.0, ua_w_k=0.0)
    plant.cooling_open = True
    run(plant, 300.0)
    assert plant.temperature_c == pytest.approx(75.0)


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


def test_drain_empties_the_reactor_into_its_receiver() -> None:
    plant = make_plant()
    plant.preload("leach_liquor")
    before = plant.volume_l
    ni = plant.liquor.ni
    plant.drain_open = True
    run(plant, 150.0)
    assert plant.volume_l == 0.0
    assert plant.liquor.sulfate == 0.0
    assert plant.ph == 7.0
    assert not plant.wet(LevelPoint.LOW_LOW)
    assert plant.drained.volume_l == pytest.approx(before, rel=1e-6)
    assert plant.drained.liquor.ni == pytest.approx(ni)


def test_overflow_counts_spilled_litres() -> None:
    plant = make_plant(initial_volume_l=115.0, capacity_l=120.0)
    plant.fill_pump_on = True
    run(plant, 60.0)  # 12 L in, room for 5
    assert plant.volume_l == pytest.approx(120.0)
    assert plant.overflow_l == pytest.approx(7.0, rel=1e-6)
    assert plant.spilled.volume_l == pytest.approx(7.0, rel=1e-6)


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
    assert plant.liquor.sodium == pytest.approx(0.48, rel=1e-6)


def test_a_dose_reaches_the_bulk_one_mixing_dead_time_after_its_pump() -> None:
    plant = make_plant(initial_volume_l=50.0, mixing_dead_time_s=10.0)
    plant.agitator_on = True
    plant.pump_ml_min["P-203"] = 60.0
    run(plant, 5.0)
    plant.pump_ml_min["P-203"] = 0.0
    assert plant.dosed_ml["P-203"] == pytest.approx(5.0, rel=1e-6)
    assert plant.liquor.sodium == 0.0  # still in the line
    run(plant, 10.0)
    assert plant.liquor.sodium == pytest.approx(0.02, rel=1e-6)


def test_mixing_takes_four_times_as_long_without_the_agitator() -> None:
    plant = make_plant(initial_volume_l=50.0, mixing_dead_time_s=10.0)
    plant.pump_ml_min["P-203"] = 60.0
    run(plant, 1.0)
    plant.pump_ml_min["P-203"] = 0.0
    run(plant, 30.0)
    assert plant.liquor.sodium == 0.0
    run(plant, 15.0)
    assert plant.liquor.sodium > 0.0


def test_peroxide_decomposes_and_warms_a_hot_batch() -> None:
    plant = make_plant(
        initial_volume_l=100.0,
        initial_temperature_c=75.0,
        ua_w_k=0.0,
        water_c=20.0,
        peroxide_tau_s=600.0,
    )
    plant.pump_ml_min["P-202"] = 100.0
    run(plant, 600.0)  # 1 L, 9.8 mol in
    plant.pump_ml_min["P-202"] = 0.0
    run(plant, 6000.0)  # ten time constants at 75 °C (faster still as it warms)
    assert plant.h2o2_mol < 0.01
    mixed = (100.0 * 75.0 + 1.0 * 20.0) / 101.0  # the litre of peroxide came in at 20 °C
    rise = 9.8 * 94_700.0 / (101.0 * 1.1 * 3800.0)
    assert plant.temperature_c == pytest.approx(mixed + rise, abs=0.05)


def test_peroxide_keeps_in_a_cold_batch() -> None:
    plant = make_plant(initial_volume_l=100.0, ua_w_k=0.0, water_c=20.0)
    plant.pump_ml_min["P-202"] = 100.0
    run(plant, 600.0)
    plant.pump_ml_min["P-202"] = 0.0
    run(plant, 3600.0)
    assert plant.h2o2_mol > 0.8 * 9.8  # Arrhenius: ≈50× slower at 20 °C than at 75 °C


def test_naoh_into_acid_releases_the_heat_of_neutralisation() -> None:
    plant = make_plant(initial_volume_l=50.0, ua_w_k=0.0, water_c=20.0)
    plant.load(plant.liquor.copy(), volume_l=50.0, temperature_c=20.0)
    plant.liquor.sulfate = 1.0  # 0.02 M H2SO4
    plant.load(plant.liquor, volume_l=50.0, temperature_c=20.0)
    plant.pump_ml_min["P-203"] = 100.0
    run(plant, 150.0)  # 250 mL, 1.0 mol NaOH: half the acid neutralised
    plant.pump_ml_min["P-203"] = 0.0
    run(plant, 5.0)
    rise = 1.0 * 55_840.0 / (50.25 * 1.1 * 3800.0)
    assert plant.temperature_c - 20.0 == pytest.approx(rise, rel=0.1)


def test_boiling_caps_temperature_and_evaporates() -> None:
    plant = make_plant(initial_volume_l=30.0, initial_temperature_c=95.0, ua_w_k=0.0)
    heat_on(plant)
    run(plant, 1800.0)
    assert plant.temperature_c <= 102.0 + 1e-6
    assert plant.evaporated_l > 1.0


def test_water_preset_sits_between_low_and_high() -> None:
    plant = make_plant(initial_temperature_c=18.0)
    plant.preload("water")
    assert plant.volume_l == pytest.approx(70.0)
    assert plant.temperature_c == 18.0
    assert plant.wet(LevelPoint.LOW)
    assert not plant.wet(LevelPoint.HIGH)
    assert plant.ph == pytest.approx(pkw(18.0) / 2, abs=1e-4)


def test_leach_liquor_reaches_purify_ph_with_about_five_litres_of_naoh() -> None:
    plant = make_plant()
    plant.preload("leach_liquor")
    assert plant.volume_l == pytest.approx(44.0)
    assert plant.ph < 3.0
    plant.agitator_on = True
    plant.pump_ml_min["P-203"] = 100.0
    while plant.ph < 5.5 and plant.time_s < 7200.0:
        plant.step(DT)
    assert plant.ph >= 5.5
    assert 3000.0 < plant.dosed_ml["P-203"] < 7000.0
    assert plant.liquor.al_s > 0.9 * 2.0  # aluminium came down on the way


def test_purified_liquor_preset_is_at_ph_5_5_with_no_iron_or_aluminium() -> None:
    plant = make_plant()
    plant.preload("purified_liquor")
    assert plant.ph == pytest.approx(5.5, abs=1e-3)
    assert plant.liquor.fe < 1e-6
    assert plant.liquor.al < 1e-3
    assert plant.liquor.ni > 10.0


def test_unknown_preset_names_the_valid_ones() -> None:
    plant = make_plant()
    with pytest.raises(ValueError, match="leach_liquor"):
        plant.preload("slurry")


def test_black_mass_leaches_in_hot_acid_with_peroxide() -> None:
    plant = make_plant(bare=False)
    plant.load(plant.liquor, volume_l=42.0, temperature_c=75.0)
    plant.liquor.sulfate = 40.5  # 2.25 L of 18 M in 42 L
    plant.load(plant.liquor, volume_l=42.0, temperature_c=75.0)
    plant.agitator_on = True
    plant.charge_black_mass(4.0)
    charged_ni = plant.charged.metal("ni")
    assert charged_ni == pytest.approx(4.0 * 175.0 / 58.693, rel=1e-6)
    # acid alone leaches the share that needs no reductant (and the aluminium foil)
    run(plant, 1800.0)
    without = plant.liquor.ni
    assert 0.1 * charged_ni < without < 0.6 * charged_ni
    assert plant.residue.al < 0.2 * plant.charged.al
    plant.pump_ml_min["P-202"] = 40.0  # H2O2 as the recipe doses it
    run(plant, 3600.0)
    plant.pump_ml_min["P-202"] = 0.0
    run(plant, 3600.0)
    leached = plant.liquor.metal_total("ni") / charged_ni
    assert 0.93 < leached <= 0.98  # 2 % is refractory
    assert plant.reaction_heat_j > 3e6  # dissolution, aluminium, peroxide: MJ, not kJ


def test_precipitation_takes_its_time() -> None:
    plant = make_plant(initial_volume_l=40.0, precipitation_tau_s=30.0)
    plant.load(plant.liquor, volume_l=40.0, temperature_c=58.0)
    plant.liquor.sodium = 0.4
    plant.load(plant.liquor, volume_l=40.0, temperature_c=58.0)
    plant.pump_ml_min["P-205"] = 100.0  # 2 M metal sulfate
    run(plant, 6.0)
    plant.pump_ml_min["P-205"] = 0.0
    fed = plant.liquor.ni + plant.liquor.ni_s
    run(plant, 1.0)
    assert plant.liquor.ni > 0.8 * fed  # still dissolved a second later
    run(plant, 150.0)
    assert plant.liquor.ni < 0.01 * fed  # five time constants later, precipitated


def test_a_basic_sulfate_precipitate_takes_less_hydroxide() -> None:
    # The same NaOH and metal: the basic sulfate (1.9 OH per metal) leaves the pH higher.
    phs = []
    for per_metal in (2.0, 1.9):
        plant = make_plant(initial_volume_l=40.0, hydroxide_per_metal=per_metal)
        plant.load(plant.liquor, volume_l=40.0, temperature_c=58.0)
        plant.liquor.sodium = 0.5
        plant.load(plant.liquor, volume_l=40.0, temperature_c=58.0)
        plant.pump_ml_min["P-205"] = 50.0
        run(plant, 120.0)  # 0.2 mol metal
        plant.pump_ml_min["P-205"] = 0.0
        run(plant, 300.0)
        phs.append(plant.ph)
    assert phs[1] > phs[0] + 0.02
