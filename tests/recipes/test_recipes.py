"""Recipes: shipped ones fit the simulated unit; bad ones are refused with every problem located.

Pure file and model tests; nothing here runs a batch.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from hal.schema import ValidationError
from unit_controller.config import UnitConfig, load_config
from unit_controller.errors import RecipeError
from unit_controller.recipes import (
    RECIPES_DIR,
    Dose,
    Recipe,
    StartsWith,
    check_recipe_for_unit,
    list_recipes,
    load_recipe,
    offered_recipes,
    resolve_recipe,
)

SHIPPED = ["coprecipitation", "leach", "purify", "smoke"]

GOOD = """
name = "mini"
[[phases]]
name = "fill"
timeout_min = 10.0
fill = true
until = { level = "low" }
"""


@pytest.fixture(scope="module")
def config() -> UnitConfig:
    return load_config()


def _write(tmp_path: Path, text: str, name: str = "mini.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path, config: UnitConfig) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path), config=config)
    assert info.value.source == str(path)
    return info.value.problems


def _phase(body: str) -> str:
    # A phase that doses runs the agitator: its permissive (tested on its own below).
    doses = any(key in body for key in ("ph = ", "feeds = ", "doses = "))
    stir = "agitator = true\n" if doses and "agitator" not in body else ""
    # On water already in the reactor: level checks of an empty start are tested on their own.
    return 'name = "mini"\nstarts_with = "water"\n[[phases]]\nname = "p"\n' + stir + body


def test_a_phase_that_doses_without_the_agitator_is_refused(
    tmp_path: Path, config: UnitConfig
) -> None:
    text = (
        'name = "mini"\n[[phases]]\nname = "p"\ntimeout_min = 30.0\n'
        'ph = { setpoint = 11.0, pump = "P-203" }\n'
        'doses = [{ pump = "P-204", ml = 10.0, over_min = 1.0 }]\n'
        "until = { at_setpoint_min = 5.0, doses_done = true }\n"
    )
    assert _problems(_write(tmp_path, text), config) == [
        "phases[0].agitator: the phase doses (P-203, P-204): it needs agitator = true (got False)"
    ]


def test_a_drain_past_low_low_that_holds_a_temperature_is_refused(
    tmp_path: Path, config: UnitConfig
) -> None:
    # It held on the very scan the drain was done: heat wanted on a dry low-low switch.
    body = (
        'name = "mini"\nstarts_with = "water"\n[[phases]]\nname = "p"\ntimeout_min = 30.0\n'
        "drain = true\n"
    )
    text = body + 'temperature_c = 60.0\nuntil = { level_below = "low_low" }\n'
    refused = [
        "phases[0].temperature_c: a drain that can go on past the low-low switch cannot hold a "
        "temperature (the heater must stop on a dry element, and the batch holds); end the "
        "drain at until.level_below 'low' alone, or drain in a phase of its own (got 60.0)"
    ]
    assert _problems(_write(tmp_path, text), config) == refused
    # Past the low switch for as long as a duration (or a confirm) keeps the phase: the same.
    text = body + 'temperature_c = 60.0\nuntil = { level_below = "low", duration_min = 10.0 }\n'
    assert _problems(_write(tmp_path, text), config) == refused
    # Down to the low switch only, the element stays covered.
    text = body + 'temperature_c = 60.0\nuntil = { level_below = "low" }\n'
    load_recipe(str(_write(tmp_path, text)), config=config)


def test_a_drain_that_doses_below_the_low_switch_is_refused(
    tmp_path: Path, config: UnitConfig
) -> None:
    # It held on dosing_not_permitted as soon as LSL went dry.
    body = (
        'name = "mini"\nstarts_with = "water"\n[[phases]]\nname = "p"\ntimeout_min = 30.0\n'
        "drain = true\n"
    )
    dose = 'agitator = true\ndoses = [{ pump = "P-204", ml = 100.0, over_min = 5.0 }]\n'
    text = body + dose + 'until = { level_below = "low_low", doses_done = true }\n'
    assert _problems(_write(tmp_path, text), config) == [
        "phases[0].drain: the phase doses (P-204) while a drain takes the liquor below the low "
        "switch, where no reagent may go in; dose in a phase of its own (or end the drain at "
        "until.level_below 'high' alone) (got True)"
    ]


def test_a_dose_the_phase_may_end_before_is_refused(tmp_path: Path, config: UnitConfig) -> None:
    # The phase ended at its duration with 0 of 500 mL in, and the batch said COMPLETE.
    text = _phase(
        "timeout_min = 60.0\ntemperature_c = 30.0\n"
        'doses = [{ pump = "P-203", ml = 500.0, over_min = 10.0, after_min = 30.0 }]\n'
        "until = { duration_min = 10.0 }\n"
    )
    assert _problems(_write(tmp_path, text), config) == [
        "phases[0].doses[0]: ends 40 min into the phase, but the phase may end at 10 min "
        "without it: add until.doses_done = true"
    ]
    load_recipe(str(_write(tmp_path, text.replace("10.0 }\n", "40.0 }\n"))), config=config)


def test_ending_a_phase_on_high_high_is_refused_for_any_inflow(
    tmp_path: Path, config: UnitConfig
) -> None:
    text = _phase(
        'timeout_min = 60.0\nfeeds = [{ pump = "P-205", ml_min = 100.0 }]\n'
        'until = { level = "high_high" }\n'
    )
    assert _problems(_write(tmp_path, text), config) == [
        "phases[0].until.level: high_high wet trips the overflow interlock (all inflows off, "
        "hold); use 'high' (got 'high_high')"
    ]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_fits_the_simulated_unit(name: str, config: UnitConfig) -> None:
    loaded = load_recipe(name, config=config)
    assert loaded.recipe.name == name
    assert loaded.path == RECIPES_DIR / f"{name}.toml"
    assert check_recipe_for_unit(loaded.recipe, config) == []


def test_recipe_list_is_the_shipped_recipes() -> None:
    assert list_recipes() == SHIPPED


def test_smoke_recipe_is_short_and_ends_drained(config: UnitConfig) -> None:
    recipe = load_recipe("smoke", config=config).recipe
    assert recipe.starts_with is StartsWith.EMPTY
    assert recipe.phase_names == ["fill", "heat", "ph", "drain", "drain_heel"]
    assert recipe.phase("ph").controls_ph
    assert all(p.drain for p in recipe.phases[-2:])
    assert recipe.phases[-1].until.duration_min is not None


def test_leach_purges_through_every_wet_phase_and_adds_peroxide_progressively(
    config: UnitConfig,
) -> None:
    recipe = load_recipe("leach", config=config).recipe
    assert all(p.purge for p in recipe.phases)
    acid = recipe.phase("acid_heat").doses[0]
    assert acid.pump == "P-201"
    assert acid.rate_ml_min <= 100.0
    peroxide = recipe.phase("peroxide")
    assert peroxide.doses[0].over_min >= 30.0
    assert peroxide.max_heater_duty < 1.0
    assert recipe.phase("charge").until.confirm == "Black mass charged (4 kg, 100 g/L)"
    charge = recipe.phase("charge").charge
    assert charge is not None
    assert charge.kg == 4.0
    # the jacket takes the exotherms in every heated phase
    assert all(p.cooling for p in recipe.phases if p.temperature_c is not None)


def test_the_recipes_chain_leach_purify_coprecipitation(config: UnitConfig) -> None:
    purify = load_recipe("purify", config=config).recipe
    assert purify.starts_with == "leach_liquor"
    raise_ph = purify.phase("raise_ph").ph
    assert raise_ph is not None
    assert raise_ph.counter_pump == "P-201"  # an overshoot toward Ni precipitation comes back
    copre = load_recipe("coprecipitation", config=config).recipe
    assert copre.phase("fill").until.level == "low"  # room for a campaign's whole liquor
    adjust = copre.phase("ph_adjust").ph
    assert adjust is not None
    assert adjust.on_overshoot == "next_phase"


def test_a_charge_needs_a_confirmation_to_wait_for(tmp_path: Path, config: UnitConfig) -> None:
    path = _write(
        tmp_path,
        _phase("timeout_min = 10.0\ncharge = { kg = 1.0 }\nuntil = { duration_min = 1.0 }\n"),
    )
    assert any("until.confirm" in p for p in _problems(path, config))


def test_a_counter_reagent_must_push_the_other_way(tmp_path: Path, config: UnitConfig) -> None:
    body = (
        "timeout_min = 10.0\n"
        'ph = { setpoint = 9.5, pump = "P-201", counter_pump = "P-202" }\n'
        "until = { duration_min = 1.0 }\n"
    )
    path = _write(tmp_path, _phase(body))
    assert any("counter_pump" in p and "other way" in p for p in _problems(path, config))


def test_cooling_needs_a_jacket_on_the_unit(tmp_path: Path, config: UnitConfig) -> None:
    document = config.model_dump(exclude_unset=True)
    del document["devices"]["XV-103"]
    bare = UnitConfig.model_validate(document)
    body = (
        "timeout_min = 10.0\ntemperature_c = 30.0\ncooling = true\nuntil = { duration_min = 1.0 }\n"
    )
    path = _write(tmp_path, _phase(body))
    load_recipe(str(path), config=config)  # the sim unit has XV-103
    assert any("cooling_valve" in p for p in _problems(path, bare))


def test_coprecipitation_holds_ph_with_feed_forward_from_the_metal_feed(config: UnitConfig) -> None:
    phase = load_recipe("coprecipitation", config=config).recipe.phase("co_precipitate")
    assert phase.ph is not None
    assert (phase.ph.setpoint, phase.ph.tolerance, phase.ph.pump) == (11.0, 0.05, "P-203")
    assert phase.ph.feed_forward is not None
    assert phase.ph.feed_forward.pump == "P-205"
    assert phase.ph.feed_forward.equivalents == 2.0
    assert {f.pump for f in phase.feeds} == {"P-205", "P-204"}
    assert phase.purge
    assert phase.agitator
    assert phase.until.duration_min == 120.0
    assert phase.cooling


def test_sha256_is_stable_and_follows_the_file_bytes(tmp_path: Path, config: UnitConfig) -> None:
    path = _write(tmp_path, GOOD)
    first = load_recipe(str(path), config=config).sha256
    assert load_recipe(str(path), config=config).sha256 == first
    path.write_text(GOOD + "\n# a comment\n", encoding="utf-8")
    assert load_recipe(str(path), config=config).sha256 != first


def test_unknown_recipe_name_lists_the_available_ones(tmp_path: Path) -> None:
    shutil.copy(RECIPES_DIR / "smoke.toml", tmp_path / "smoke.toml")
    _write(tmp_path, GOOD)
    with pytest.raises(RecipeError) as info:
        resolve_recipe("nope", recipes_dir=tmp_path)
    assert "available: mini, smoke" in info.value.problems[0]


def test_reference_ending_in_toml_is_a_path_not_a_name(tmp_path: Path) -> None:
    assert resolve_recipe("elsewhere/x.toml", recipes_dir=tmp_path) == Path("elsewhere/x.toml")
    _write(tmp_path, GOOD)
    assert resolve_recipe("mini", recipes_dir=tmp_path) == tmp_path / "mini.toml"


def test_recipe_in_the_recipes_dir_must_carry_its_file_name(
    tmp_path: Path, config: UnitConfig
) -> None:
    _write(tmp_path, GOOD, name="other.toml")
    with pytest.raises(RecipeError) as info:
        load_recipe("other", config=config, recipes_dir=tmp_path)
    assert info.value.problems == ["name: 'mini' differs from the file name 'other.toml'"]
    # Listed beside the recipe's own problems too, not only once those are mended.
    _write(tmp_path, GOOD.replace("timeout_min = 10.0", "timeout_min = nan"), name="other.toml")
    with pytest.raises(RecipeError) as info:
        load_recipe("other", config=config, recipes_dir=tmp_path)
    assert info.value.problems[0] == "name: 'mini' differs from the file name 'other.toml'"
    assert any("timeout_min" in p for p in info.value.problems[1:]), info.value.problems


def test_a_link_in_the_recipes_dir_carries_the_link_name_too(
    tmp_path: Path, config: UnitConfig
) -> None:
    # Offered as "other", it would run and be journaled as "mini" (found by a recipe author).
    recipes, elsewhere = tmp_path / "recipes", tmp_path / "elsewhere"
    recipes.mkdir()
    elsewhere.mkdir()
    _write(elsewhere, GOOD, name="mini.toml")
    (recipes / "other.toml").symlink_to(elsewhere / "mini.toml")
    with pytest.raises(RecipeError) as info:
        load_recipe("other", config=config, recipes_dir=recipes)
    assert info.value.problems == ["name: 'mini' differs from the file name 'other.toml'"]
    (recipes / "mini.toml").symlink_to(elsewhere / "mini.toml")
    assert load_recipe("mini", config=config, recipes_dir=recipes).recipe.name == "mini"


def test_missing_file_is_refused(tmp_path: Path, config: UnitConfig) -> None:
    problems = _problems(tmp_path / "absent.toml", config)
    assert "no such file" in problems[0]


def test_bad_toml_is_refused_with_the_syntax_error(tmp_path: Path, config: UnitConfig) -> None:
    problems = _problems(_write(tmp_path, 'name = "mini"\n[[phases]\n'), config)
    assert len(problems) == 1
    assert "not valid TOML" in problems[0]


def test_unknown_keys_and_bad_types_are_refused_at_their_location(
    tmp_path: Path, config: UnitConfig
) -> None:
    text = _phase('timeout_min = "10"\nstirrer = true\nuntil = { level = "middle" }\n')
    problems = _problems(_write(tmp_path, "colour = 1\n" + text), config)
    joined = "\n".join(problems)
    assert "colour: Extra inputs are not permitted" in joined
    assert "phases[0].stirrer: Extra inputs are not permitted" in joined
    assert "phases[0].timeout_min: Input should be a valid number" in joined
    assert (
        "phases[0].until.level: Input should be 'low_low', 'low', 'high' or 'high_high'" in joined
    )


def test_fill_and_drain_together_are_refused(tmp_path: Path, config: UnitConfig) -> None:
    text = _phase("timeout_min = 5.0\nfill = true\ndrain = true\nuntil = { duration_min = 1.0 }\n")
    assert _problems(_write(tmp_path, text), config) == [
        "phases[0].drain: fill and drain cannot both be on in one phase (got True)"
    ]


def test_empty_until_is_refused(tmp_path: Path, config: UnitConfig) -> None:
    text = _phase("timeout_min = 5.0\nagitator = true\nuntil = {}\n")
    problems = _problems(_write(tmp_path, text), config)
    assert len(problems) == 1
    assert problems[0].startswith("phases[0].until: needs at least one condition")


def test_missing_until_and_timeout_are_refused(tmp_path: Path, config: UnitConfig) -> None:
    problems = _problems(_write(tmp_path, _phase("agitator = true\n")), config)
    assert problems == ["phases[0].timeout_min: Field required", "phases[0].until: Field required"]


def test_conditions_that_cannot_hold_are_refused(tmp_path: Path, config: UnitConfig) -> None:
    text = _phase(
        "timeout_min = 30.0\n"
        'doses = [{ pump = "P-202", ml = 100.0, over_min = 20.0, after_min = 15.0 }]\n'
        "until = { temperature_reached = true, at_setpoint_min = 5.0, duration_min = 30.0 }\n"
    )
    problems = _problems(_write(tmp_path, text), config)
    assert sorted(p.split(":")[0] for p in problems) == [
        "phases[0].doses[0]",
        "phases[0].until.at_setpoint_min",
        "phases[0].until.duration_min",
        "phases[0].until.temperature_reached",
    ]
    assert any("ends 35 min into the phase" in p for p in problems)


def test_an_overshoot_nothing_can_bring_back_is_refused(tmp_path: Path, config: UnitConfig) -> None:
    # next_phase in the last phase ended the batch COMPLETE with the pH 0.2 past its setpoint;
    # wait with no feed waited for nothing until the phase timed out.
    ph = 'ph = {{ setpoint = 9.5, pump = "P-201", tolerance = 0.1, on_overshoot = "{}" }}\n'
    until = "timeout_min = 30.0\nuntil = { at_setpoint_min = 2.0 }\n"
    last = _phase(ph.format("next_phase") + until)
    assert _problems(_write(tmp_path, last), config) == [
        "phases[0].ph.on_overshoot: the last phase has no next phase to bring the pH back: "
        "use 'hold' (got 'next_phase')"
    ]
    no_feed = _phase(ph.format("wait") + until)
    assert _problems(_write(tmp_path, no_feed), config) == [
        "phases[0].ph.on_overshoot: 'wait' needs a feed in this phase to consume the excess, "
        "and it has none: use 'hold' (or 'next_phase') (got 'wait')"
    ]


def test_next_phase_into_a_phase_that_doses_no_ph_is_refused(
    tmp_path: Path, config: UnitConfig
) -> None:
    # The batch drained at pH 11.6 against a setpoint of 8 and ended COMPLETE.
    text = _phase(
        'timeout_min = 30.0\nph = { setpoint = 8.0, pump = "P-203", on_overshoot = "next_phase" }\n'
        "until = { at_setpoint_min = 2.0 }\n"
        '[[phases]]\nname = "drain"\ntimeout_min = 8.0\ndrain = true\n'
        'until = { level_below = "low_low" }\n'
    )
    assert _problems(_write(tmp_path, text), config) == [
        "phases[0].ph.on_overshoot: the next phase ('drain') doses nothing to bring it back: use "
        "'hold', or give that phase a ph (or a feed or dose that brings it back) (got "
        "'next_phase')"
    ]
    # A metal feed with no pH of its own brings a base back: judged on the unit's pumps, not
    # refused by the recipe's shape (found by a recipe author).
    fed = _phase(
        "timeout_min = 30.0\nagitator = true\ntemperature_c = 40.0\n"
        'ph = { setpoint = 10.0, pump = "P-203", on_overshoot = "next_phase" }\n'
        "until = { at_setpoint_min = 2.0 }\n"
        '[[phases]]\nname = "feed_metal"\ntimeout_min = 30.0\ntemperature_c = 40.0\n'
        'agitator = true\nfeeds = [{ pump = "P-205", ml_min = 10.0 }]\n'
        "until = { duration_min = 10.0 }\n"
    )
    load_recipe(str(_write(tmp_path, fed)), config=config)


def test_next_phase_into_a_phase_that_cannot_bring_the_ph_back_is_refused(
    tmp_path: Path, config: UnitConfig
) -> None:
    # A next phase raising to 12 with NaOH and no feed passed: past 11, nothing brought it back.
    first = (
        "agitator = true\ntimeout_min = 30.0\ntemperature_c = 30.0\n"
        'ph = { setpoint = 11.0, pump = "P-203", on_overshoot = "next_phase" }\n'
        "until = { at_setpoint_min = 2.0 }\n"
    )
    trim = (
        '[[phases]]\nname = "trim"\ntimeout_min = 5.0\ntemperature_c = 30.0\nagitator = true\n'
        'ph = {{ setpoint = 12.0, pump = "P-203" }}\n{feeds}until = {{ duration_min = 0.5 }}\n'
    )
    text = _phase(first + trim.format(feeds=""))
    assert _problems(_write(tmp_path, text), config) == [
        "phases[0].ph.on_overshoot: 'next_phase', but the next phase ('trim') doses nothing that "
        "brings the pH back the other way from naoh: use 'hold'"
    ]
    # A metal feed takes hydroxide up: the shipped co-precipitation's case.
    fed = _phase(first + trim.format(feeds='feeds = [{ pump = "P-205", ml_min = 10.0 }]\n'))
    load_recipe(str(_write(tmp_path, fed)), config=config)


def test_an_exothermic_dose_in_a_phase_with_no_setpoint_is_refused(
    tmp_path: Path, config: UnitConfig
) -> None:
    # Peroxide at full rate with nothing slowing it ran the leach away to the 90 °C trip.
    body = (
        "timeout_min = 40.0\n{t}"
        'doses = [{{ pump = "P-202", ml = 600.0, over_min = 20.0 }}]\n'
        "until = {{ doses_done = true }}\n"
    )
    assert _problems(_write(tmp_path, _phase(body.format(t=""))), config) == [
        "phases[0].temperature_c: the phase doses P-202 (h2o2), whose heat the controller slows "
        "only to hold a temperature setpoint; with none it would go in at full rate: give the "
        "phase a temperature_c"
    ]
    load_recipe(
        str(_write(tmp_path, _phase(body.format(t="temperature_c = 60.0\n")))), config=config
    )
    # A counter-reagent is dosed too.
    counter = _phase(
        "timeout_min = 30.0\n"
        'ph = { setpoint = 9.5, pump = "P-204", counter_pump = "P-201" }\n'
        "until = { at_setpoint_min = 2.0 }\n"
    )
    assert _problems(_write(tmp_path, counter), config) == [
        "phases[0].temperature_c: the phase doses P-201 (h2so4), whose heat the controller slows "
        "only to hold a temperature setpoint; with none it would go in at full rate: give the "
        "phase a temperature_c"
    ]
    # Ammonia and the metal feed release no heat the controller counts: no setpoint needed.
    ammonia = body.format(t="").replace("P-202", "P-204")
    load_recipe(str(_write(tmp_path, _phase(ammonia))), config=config)


def test_every_phase_from_a_black_mass_charge_on_must_purge(
    tmp_path: Path, config: UnitConfig
) -> None:
    # A leach without purge ran with XV-102 shut while aluminium made H2 in the acid.
    charge = (
        "timeout_min = 30.0\ntemperature_c = 60.0\n{purge}"
        'charge = {{ kg = 4.0 }}\nuntil = {{ confirm = "Black mass charged" }}\n'
        '[[phases]]\nname = "hold"\ntimeout_min = 30.0\ntemperature_c = 60.0\n'
        "agitator = true\n{purge}until = {{ duration_min = 10.0 }}\n"
    )
    problems = _problems(_write(tmp_path, _phase(charge.format(purge=""))), config)
    assert problems == [
        f"phases[{i}].purge: black mass is charged in phase 'p' (aluminium in it gives H2 with "
        "the acid): every phase from there on needs purge = true (got False)"
        for i in (0, 1)
    ]
    load_recipe(str(_write(tmp_path, _phase(charge.format(purge="purge = true\n")))), config=config)


def test_a_recipe_saved_with_a_byte_order_mark_reads_as_any_other(
    tmp_path: Path, config: UnitConfig
) -> None:
    # Windows editors write one: it was "not valid TOML (Invalid statement (at line 1, column 1))".
    path = tmp_path / "mini.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode("utf-8"))
    assert load_recipe(str(path), config=config).recipe.name == "mini"


def test_a_ph_gain_of_zero_is_refused(tmp_path: Path, config: UnitConfig) -> None:
    # It passed check-recipe and crashed the scan on the phase's first pH dose.
    text = _phase(
        "timeout_min = 30.0\n"
        'ph = { setpoint = 9.5, pump = "P-201", tolerance = 0.1, kp_ml = 0.0 }\n'
        "until = { at_setpoint_min = 2.0 }\n"
    )
    assert _problems(_write(tmp_path, text), config) == [
        "phases[0].ph.kp_ml: Input should be greater than 0 (got 0.0)"
    ]


def test_a_dose_ending_at_the_timeout_is_refused(tmp_path: Path, config: UnitConfig) -> None:
    # It could only end on the scan the phase times out: the phase never finishes by its doses.
    text = _phase(
        "agitator = true\ntimeout_min = 30.0\n"
        'doses = [{ pump = "P-202", ml = 100.0, over_min = 20.0, after_min = 10.0 }]\n'
        "until = { doses_done = true }\n"
    )
    problems = _problems(_write(tmp_path, text), config)
    assert problems == [
        "phases[0].doses[0]: ends 30 min into the phase (after_min + over_min), not before "
        "timeout_min 30"
    ]


def test_duplicate_phase_names_are_refused(tmp_path: Path, config: UnitConfig) -> None:
    text = GOOD + '[[phases]]\nname = "fill"\ntimeout_min = 1.0\nuntil = { duration_min = 0.5 }\n'
    assert _problems(_write(tmp_path, text), config) == [
        "phases[1].name: duplicate phase name (first at phases[0]) (got 'fill')"
    ]


def test_a_pump_doing_two_jobs_in_one_phase_is_refused(tmp_path: Path, config: UnitConfig) -> None:
    text = _phase(
        "timeout_min = 30.0\n"
        'ph = { setpoint = 11.0, pump = "P-203", feed_forward = { pump = "P-201", '
        "equivalents = 2.0 } }\n"
        'feeds = [{ pump = "P-203", ml_min = 1.0 }]\n'
        "until = { at_setpoint_min = 5.0 }\n"
    )
    problems = _problems(_write(tmp_path, text), config)
    assert [p.split(":")[0] for p in problems] == [
        "phases[0].ph.pump",
        "phases[0].ph.feed_forward.pump",
    ]


def test_unknown_pump_is_refused_naming_the_pumps_the_unit_has(
    tmp_path: Path, config: UnitConfig
) -> None:
    text = _phase(
        'timeout_min = 30.0\nph = { setpoint = 11.0, pump = "P-299" }\n'
        'feeds = [{ pump = "P-298", ml_min = 1.0 }]\n'
        "until = { at_setpoint_min = 5.0 }\n"
    )
    assert _problems(_write(tmp_path, text), config) == [
        "phases[0].ph.pump: pump 'P-299' is not on this unit "
        "(it has P-201, P-202, P-203, P-204, P-205)",
        "phases[0].feeds[0].pump: pump 'P-298' is not on this unit "
        "(it has P-201, P-202, P-203, P-204, P-205)",
    ]


def test_temperature_above_the_unit_limit_is_refused(tmp_path: Path, config: UnitConfig) -> None:
    text = GOOD + (
        '[[phases]]\nname = "hot"\ntimeout_min = 60.0\ntemperature_c = 95.0\n'
        "until = { temperature_reached = true }\n"
    )
    assert _problems(_write(tmp_path, text), config) == [
        "phases[1].temperature_c: 95 °C is above the unit's max temperature setpoint 85 °C"
    ]


def test_every_unit_problem_is_listed_at_once(tmp_path: Path, config: UnitConfig) -> None:
    text = _phase(
        "timeout_min = 60.0\ntemperature_c = 2.0\n"
        'ph = { setpoint = 13.5, pump = "P-202", cap_ml = 50000.0 }\n'
        'feeds = [{ pump = "P-205", ml_min = 200.0 }]\n'
        'doses = [{ pump = "P-201", ml = 5.0, over_min = 50.0 }]\n'
        "until = { duration_min = 30.0, doses_done = true }\n"
    )
    problems = _problems(_write(tmp_path, text), config)
    assert problems == [
        "phases[0].temperature_c: 2 °C is below 5 °C (the unit only heats)",
        "phases[0].ph.setpoint: pH 13.5 is outside the unit's setpoint limits 0–13",
        "phases[0].ph.pump: P-202 delivers h2o2, which is not a pH reagent "
        "(use one delivering h2so4, naoh, nh4oh)",
        "phases[0].ph.cap_ml: 50000 mL is above the unit's cap for P-202 (20000 mL per phase)",
        "phases[0].feeds[0].ml_min: 200 mL/min is outside P-205's range 0.5–105 mL/min",
        "phases[0].doses[0]: 5 mL over 50 min is 0.1 mL/min, outside P-201's range 0.5–105 mL/min",
    ]


def test_a_feed_sure_to_pass_the_reagent_cap_is_refused(config: UnitConfig) -> None:
    # 20 mL/min of P-204 for at least 200 min is 4,000 mL: a batch would hold partway through.
    cap = config.model_copy(
        update={
            "interlocks": config.interlocks.model_copy(update={"reagent_cap_ml": {"P-204": 2000.0}})
        }
    )
    phase = {
        "name": "feed",
        "timeout_min": 600.0,
        "agitator": True,
        "feeds": [{"pump": "P-204", "ml_min": 20.0}],
        "until": {"duration_min": 200.0},
    }
    recipe = Recipe.model_validate({"name": "x", "starts_with": "water", "phases": [phase]})
    assert check_recipe_for_unit(recipe, cap) == [
        "phases[0].feeds: P-204 feeds at least 4000 mL (its rate for the 200 min "
        "until.duration_min), above the unit's cap (2000 mL per phase)"
    ]
    phase["until"] = {"duration_min": 90.0}  # 1,800 mL: within the cap
    recipe = Recipe.model_validate({"name": "x", "starts_with": "water", "phases": [phase]})
    assert check_recipe_for_unit(recipe, cap) == []


def test_ph_setpoint_below_the_unit_limit_is_refused(config: UnitConfig) -> None:
    recipe = Recipe.model_validate(
        {
            "name": "x",
            "starts_with": "water",
            "phases": [
                {
                    "name": "acid",
                    "timeout_min": 10.0,
                    "temperature_c": 30.0,
                    "agitator": True,
                    "ph": {"setpoint": -0.5, "pump": "P-201"},
                    "until": {"at_setpoint_min": 1.0},
                }
            ],
        }
    )
    assert check_recipe_for_unit(recipe, config) == [
        "phases[0].ph.setpoint: pH -0.5 is outside the unit's setpoint limits 0–13"
    ]


def test_dose_spreads_its_volume_evenly_over_its_window() -> None:
    dose = Dose(pump="P-202", ml=600.0, over_min=30.0, after_min=10.0)
    assert dose.rate_ml_min == 20.0
    assert dose.ends_after_min == 40.0
    due = [dose.ml_due(t) for t in (0.0, 10.0, 25.0, 40.0, 90.0)]
    assert due == [0.0, 0.0, 300.0, 600.0, 600.0]


def test_phase_helpers_describe_what_the_executor_controls(config: UnitConfig) -> None:
    recipe = load_recipe("leach", config=config).recipe
    acid = recipe.phase("acid_heat")
    assert acid.controls_temperature
    assert not acid.controls_ph
    assert acid.temperature_in_band(74.5)
    assert not acid.temperature_in_band(73.0)
    assert acid.pumps == frozenset({"P-201"})
    assert acid.until.describe() == ["temperature reached", "doses delivered"]
    assert not recipe.phase("fill").controls_temperature
    assert recipe.pumps == frozenset({"P-201", "P-202"})
    assert recipe.index_of("hold") == 4


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("description", "a\x1b[31mRED", "holds a control character (U+001B) at position 1"),
        ("confirm", "ok\x07go", "holds a control character (U+0007) at position 2"),
        # a right-to-left override shows what follows it reversed on the tech's terminal
        ("confirm", "Do \u202eNOT open", "holds a control character (U+202E) at position 3"),
        ("confirm", "a\u2067b", "holds a control character (U+2067) at position 1"),
        ("confirm", "two\nlines", "must be one line"),
        ("confirm", "", "must say what to confirm, not be empty"),
        ("confirm", "   ", "must say what to confirm, not be empty"),
        ("confirm", "x" * 201, "must be at most 200 characters, not 201"),
    ],
)
def test_text_that_reaches_terminals_holds_no_control_characters(
    field: str, value: str, says: str
) -> None:
    phase: dict[str, Any] = {"name": "w", "timeout_min": 5.0, "until": {"confirm": "ok"}}
    recipe: dict[str, Any] = {"name": "x", "phases": [phase]}
    if field == "description":
        recipe["description"] = value
    else:
        phase["until"] = {"confirm": value}
    with pytest.raises(ValidationError, match=re.escape(says)):
        Recipe.model_validate(recipe)
    # A description may run over lines.
    Recipe.model_validate(
        {
            **recipe,
            "description": "line one\n\tline two",
            "phases": [{"name": "w", "timeout_min": 5.0, "until": {"confirm": "ok"}}],
        }
    )


def test_a_dose_that_reaches_the_reagent_cap_is_refused_not_held_as_it_ends(
    config: UnitConfig,
) -> None:
    # The cap trips once reached: a 300 mL dose under a 300 mL cap passed the check, then held
    # the batch as it ended, with no way on but stop or abort.
    def capped(cap_ml: float) -> UnitConfig:
        limits = config.interlocks.model_copy(update={"reagent_cap_ml": {"P-204": cap_ml}})
        return config.model_copy(update={"interlocks": limits})

    phase = {
        "name": "buffer",
        "timeout_min": 30.0,
        "agitator": True,
        "doses": [{"pump": "P-204", "ml": 300.0, "over_min": 4.0}],
        "until": {"doses_done": True},
    }
    recipe = Recipe.model_validate({"name": "x", "starts_with": "water", "phases": [phase]})
    assert check_recipe_for_unit(recipe, capped(300.0)) == [
        "phases[0].doses: 300 mL through P-204 reaches the unit's cap (300 mL per phase), which "
        "trips when reached: raise the cap above the dose"
    ]
    assert check_recipe_for_unit(recipe, capped(301.0)) == []


def test_only_what_the_unit_would_run_is_offered(tmp_path: Path, config: UnitConfig) -> None:
    # A FIFO, a directory and a dangling link named *.toml were listed, then "no recipe named".
    (tmp_path / "good.toml").write_text(GOOD.replace('name = "mini"', 'name = "good"'))
    (tmp_path / "bad.toml").write_text(GOOD.replace('name = "mini"', 'name = "bad"') + "x = 1\n")
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "dir.toml").mkdir()
    (tmp_path / "gone.toml").symlink_to(tmp_path / "nowhere.toml")
    assert list_recipes(tmp_path) == ["bad", "good"]
    assert offered_recipes(config, tmp_path) == ["good"]


@pytest.mark.parametrize("ref", ["", "  "])
def test_an_empty_recipe_reference_is_called_empty_not_a_directory(ref: str) -> None:
    with pytest.raises(RecipeError) as info:
        resolve_recipe(ref)
    assert info.value.problems == ["recipe: empty: give a recipe's name or its file"]


@pytest.mark.parametrize(("below", "refused"), [(-20.0, True), (5.0, True), (25.0, False)])
def test_a_phase_waiting_to_cool_below_what_anything_cools_to_is_refused(
    tmp_path: Path, config: UnitConfig, below: float, refused: bool
) -> None:
    # Found by a recipe author: until.temperature_below_c = -20 passed, to wait out its timeout.
    text = _phase(f"timeout_min = 60.0\nuntil = {{ temperature_below_c = {below} }}\n")
    path = _write(tmp_path, text)
    if not refused:
        load_recipe(str(path), config=config)
        return
    said = f"phases[0].until.temperature_below_c: {below:g} °C is not above 5 °C"
    assert any(p.startswith(said) for p in _problems(path, config))
