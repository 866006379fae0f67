"""Every row of the cause-and-effect table, caused on the simulated unit and checked on what the
mock devices hold in the scan the row holds; and the rendered page matches the code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hal.wiring import CoilFunction
from tests.rig import Rig
from tests.scenarios.harness import held_as_outputs
from unit_controller.config import UnitConfig, load_config
from unit_controller.interlocks import Force, Trip, TripAction
from unit_controller.interlocks import table as row
from unit_controller.interlocks.effects import Output, forced_outputs, violations
from unit_controller.interlocks.render import render_markdown
from unit_controller.machine import State

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cause-and-effect.md"

# A batch that energises nearly everything: heater, agitator, purge, cooling, a dose.
_WORK = """
name = "{name}"
starts_with = "water"

[[phases]]
name = "work"
timeout_min = 120.0
temperature_c = {temperature_c}
agitator = true
purge = true
cooling = true
doses = [{{ pump = "P-204", ml = 300.0, over_min = 4.0 }}]
{ph}
until = {until}
"""
# pH 7 water held "at" 8 with acid only: past the setpoint the way acid cannot undo.
_PH_PAST = 'ph = {{ setpoint = 8.0, pump = "P-201", cap_ml = 60.0, on_overshoot = "{how}" }}'
_PH_ACID = 'ph = { setpoint = 6.0, pump = "P-201", cap_ml = 400.0 }'
# The smoke recipe's loop: its P-204 dose buffers the water near pH 10.9.
_PH_BUFFER = (
    'ph = { setpoint = 9.5, pump = "P-201", tolerance = 0.1, cap_ml = 200.0, kp_ml = 4.0, '
    "ki_ml = 0.4, max_dose_ml = 3.0 }"
)


@dataclass(frozen=True)
class Provoke:
    """How to make one row hold: a batch, then a fault or a change to the plant."""

    act: Callable[[Rig], None]
    after_s: float = 30.0
    limit_s: float = 600.0
    temperature_c: float = 30.0
    ph: str = ""  # more of the phase: a pH loop, a feed
    caps: dict[str, float] = field(default_factory=dict)
    # A silent device takes no command: its own bound ends what it was doing this much later.
    settle_s: float = 0.0
    until: str = "{ duration_min = 100.0 }"


def _fault(name: str, tag: str | None = None) -> Callable[[Rig], None]:
    return lambda rig: rig.inject(name, tag)


def _hot(rig: Rig) -> None:
    rig.unit.plant.temperature_c = 96.0


def _nothing(rig: Rig) -> None:
    pass


def _chilled(rig: Rig) -> None:
    # Cold water poured in, as it were: the heater needs many minutes to bring it back.
    rig.unit.plant.temperature_c = 15.0


PROVOKE: dict[str, Provoke] = {
    row.ESTOP_PRESSED.name: Provoke(_fault("estop")),
    row.ESTOP_UNREADABLE.name: Provoke(_fault("device_silent", "HS-100")),
    row.TEMPERATURE_HIGH_HIGH.name: Provoke(_hot),
    row.HEATER_STUCK_ON.name: Provoke(
        _fault("ssr_welded"), after_s=1500.0, temperature_c=25.0, limit_s=1800.0
    ),
    row.HEATER_NOT_HEATING.name: Provoke(_fault("heater_open"), after_s=5.0, limit_s=1800.0),
    row.COOLING_NOT_COOLING.name: Provoke(
        _fault("cooling_valve_stuck"), temperature_c=15.0, after_s=5.0, limit_s=3600.0
    ),
    row.TEMPERATURE_UNREADABLE.name: Provoke(_fault("rtd_dead")),
    row.LOW_LOW_UNREADABLE.name: Provoke(_fault("device_silent", "LSLL-101")),
    row.LOW_LOW_SUSPECT.name: Provoke(_fault("level_low_low_stuck")),
    row.LEVEL_LOW_LOW.name: Provoke(_fault("level_low_low_stuck")),
    row.HIGH_HIGH_UNREADABLE.name: Provoke(_fault("device_silent", "LSHH-101")),
    row.LEVEL_HIGH_HIGH.name: Provoke(_fault("level_high_high")),
    row.PH_UNREADABLE.name: Provoke(_fault("ph_probe_dead")),
    row.DOSING_NOT_PERMITTED.name: Provoke(_fault("device_silent", "LSL-101")),
    # A phase sure to feed past the cap is refused at start (check-recipe): this one ends on a
    # condition, not a time, so only the run shows the cap reached.
    row.REAGENT_CAP.name: Provoke(
        _nothing,
        after_s=1.0,
        ph='feeds = [{ pump = "P-205", ml_min = 10.0 }]',
        caps={"P-205": 5.0},
        until='{ confirm = "Feed checked", doses_done = true }',
    ),
    # The wait comes first (dosing stopped at the limit), the fault 90 s later.
    row.PH_RESPONSE_WAIT.name: Provoke(
        _fault("dosing_pump_stall", "P-201"), after_s=1.0, ph=_PH_ACID, limit_s=3600.0
    ),
    row.PH_NOT_RESPONDING.name: Provoke(
        _fault("dosing_pump_stall", "P-201"), after_s=1.0, ph=_PH_ACID, limit_s=3600.0
    ),
    row.PH_OVERSHOOT_HOLDS.name: Provoke(_nothing, after_s=1.0, ph=_PH_PAST.format(how="hold")),
    # "wait" lets a feed of the phase's own consume the excess: it needs one.
    row.PH_OVERSHOOT_GOES_ON.name: Provoke(
        _nothing,
        after_s=1.0,
        ph=_PH_PAST.format(how="wait") + '\nfeeds = [{ pump = "P-205", ml_min = 1.0 }]',
    ),
    # The ammonia buffer held at pH 9.5 against a base feed, then the acid pump stalls: the
    # feed carries the pH off.
    row.PH_DEVIATION.name: Provoke(
        _fault("dosing_pump_stall", "P-201"),
        after_s=1500.0,
        ph=_PH_BUFFER + '\nfeeds = [{ pump = "P-203", ml_min = 5.0 }]',
        limit_s=1800.0,
    ),
    row.TEMPERATURE_DEVIATION.name: Provoke(_chilled, after_s=1200.0, limit_s=1800.0),
    # The contactor's coil drops out when the lease its last landed write gave ends.
    row.CONTACTOR_FAULT.name: Provoke(_fault("relay_refused", "K-101"), settle_s=10.0),
    # A pulse under way when its drive stops obeying ends by itself; K-101 cuts its power.
    row.HEATER_OUTPUT_FAULT.name: Provoke(_fault("relay_refused", "E-101"), settle_s=10.0),
    # The agitator's coil drops out when its lease ends; the heater stops at once.
    row.AGITATOR_OUTPUT_FAULT.name: Provoke(_fault("relay_refused", "M-101"), settle_s=10.0),
    row.OUTPUT_FAULT.name: Provoke(_fault("relay_refused", "XV-103")),
    row.PUMP_FAULT.name: Provoke(_fault("pump_motor_unpowered", "P-204")),
    row.ESTOP_LOST.name: Provoke(_fault("device_silent", "HS-100")),
    row.TEMPERATURE_LOST.name: Provoke(_fault("device_silent", "TT-101")),
    row.PH_LOST.name: Provoke(_fault("device_silent", "AT-101")),
    row.LOW_LOW_LOST.name: Provoke(_fault("device_silent", "LSLL-101")),
    row.HIGH_HIGH_LOST.name: Provoke(_fault("device_silent", "LSHH-101")),
    row.LEVEL_LOST.name: Provoke(_fault("device_silent", "LSL-101")),
    row.PUMP_LOST.name: Provoke(_fault("device_silent", "P-204"), settle_s=60.0),
}


def _config(caps: dict[str, float]) -> UnitConfig:
    base = load_config()
    if not caps:
        return base
    limits = base.interlocks.model_copy(update={"reagent_cap_ml": caps})
    return base.model_copy(update={"interlocks": limits})


def _holding(rig: Rig, name: str) -> Trip | None:
    return next((t for t in rig.controller.alarms.in_effect() if t.cause == name), None)


def test_every_row_is_caused_by_a_test_and_names_are_unique() -> None:
    assert [cause.name for cause in row.TABLE] == list(row.BY_NAME)
    assert set(PROVOKE) == set(row.BY_NAME)


def test_the_rendered_page_matches_the_table() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "docs/cause-and-effect.md is out of date: "
        "python -m unit_controller.interlocks.render > docs/cause-and-effect.md"
    )


@pytest.mark.parametrize("name", list(PROVOKE))
async def test_each_row_forces_what_the_table_says_on_the_devices(
    name: str, tmp_path: Path
) -> None:
    cause = row.BY_NAME[name]
    how = PROVOKE[name]
    recipe = tmp_path / "cause.toml"
    recipe.write_text(
        _WORK.format(name=name, temperature_c=how.temperature_c, ph=how.ph, until=how.until)
    )
    rig = Rig(config=_config(how.caps), preload="water")
    await rig.start(str(recipe))
    await rig.run_for(how.after_s)
    assert rig.controller.machine.state is State.EXECUTE
    how.act(rig)
    await rig.run_until(lambda _: _holding(rig, name) is not None, limit_s=how.limit_s)

    trip = _holding(rig, name)
    assert trip is not None
    assert (trip.alarm_id, trip.priority, trip.forces, trip.latch) == (
        cause.alarm_id,
        cause.priority,
        cause.forces,
        cause.latch,
    )
    assert trip.action in (cause.action, TripAction.NONE)
    # In the very scan the row holds, the devices (not only the commands) hold its effect.
    if how.settle_s:
        await rig.run_for(how.settle_s)
    in_effect = rig.controller.alarms.in_effect()
    forces: set[Force] = set()
    for other in in_effect:
        forces |= other.forces
    held = held_as_outputs(rig.unit.held_outputs())
    assert violations(held, forces, purge_open=True) == [], rig.unit.held_outputs()
    if Output.PURGE in forced_outputs(cause.forces):
        # the batch blanketed the reactor: its purge's safe state is open
        assert held.purge_valve
    if cause.forces and rig.config.wiring.has_coil(CoilFunction.COOLING_VALVE):
        assert held.cooling_valve == (Force.COOL in forces) or Output.COOLING not in (
            forced_outputs(forces)
        )
