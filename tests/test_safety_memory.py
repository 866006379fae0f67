"""What a restart must not forget (DESIGN §5): latched trips not reset, and a reactor that may
hold acid, kept in the journal by one run and taken over by the next as the daemon does."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hal.wiring import LevelPoint
from tests.rig import Rig
from unit_controller.alarms import AlarmManager
from unit_controller.config import load_config
from unit_controller.controller import UnitController
from unit_controller.errors import CommandRefused
from unit_controller.interlocks import table as row
from unit_controller.interlocks.trip import Force
from unit_controller.journal import Journal, JournalRecorder
from unit_controller.journal.store import JOURNAL_FILE
from unit_controller.machine import State
from unit_controller.safety_memory import (
    UNREADABLE,
    LatchedTrip,
    SafetyMemory,
    charge_assumed,
    charged_at_start,
)
from unit_controller.sim.runner import SimOptions, SimulationRun

EPOCH_MS = 1_700_000_000_000


async def _journaled(rig: Rig, path: Path) -> Journal:
    journal = Journal(path=path, wall=lambda: EPOCH_MS / 1000)
    await journal.open()
    JournalRecorder(
        controller=rig.controller, journal=journal, epoch_ms=lambda at: EPOCH_MS + round(at * 1e3)
    ).attach()
    return journal


async def _restart(rig: Rig, path: Path) -> Journal:
    """A new controller on the same unit, built from what the journal kept (as the daemon)."""
    journal = Journal(path=path, wall=lambda: EPOCH_MS / 1000)
    opening = await journal.open()
    memory = SafetyMemory.from_json(opening.safety)
    rig.controller = UnitController(
        config=rig.config,
        board=rig.unit.board,
        clock=rig.clock,
        initial_state=State.ABORTED,
        charged=charged_at_start(memory, batch_interrupted=bool(opening.unreset_interrupted)),
    )
    if memory is not None:
        await rig.controller.restore_latched(memory.latched)
    return journal


async def test_a_restart_keeps_the_purge_open_on_an_aborted_leach(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    rig = Rig()
    journal = await _journaled(rig, path)
    await rig.start("leach")
    await rig.run_for(20 * 60)  # acid is in: the N2 blanket is on
    rig.inject("estop")
    snap = await rig.run_until(lambda s: s.state is State.ABORTED, limit_s=10)
    assert snap.outputs.purge_valve
    await journal.close()
    journal = await _restart(rig, path)
    try:
        snap = await rig.run_for(10.0)
        assert snap.image.wet(LevelPoint.LOW) is True
        assert snap.outputs.purge_valve is True
        assert rig.unit.held_outputs()["purge"] is True
    finally:
        await journal.close()


async def test_a_latched_trip_outlives_a_restart_until_acknowledged_and_reset(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    rig = Rig()
    journal = await _journaled(rig, path)
    await rig.start("smoke")
    await rig.run_for(300)  # heating
    rig.inject("ssr_welded")
    await rig.run_until(lambda s: s.state is State.ABORTED, limit_s=3600)
    await rig.run_until(
        lambda s: "heater_stuck_on" not in {t.cause for t in rig.controller._trips}, limit_s=3600
    )
    assert "heater_stuck_on" in {a.alarm_id for a in rig.controller.alarms.active()}
    await journal.close()
    rig.unit.plant.preload("empty")
    journal = await _restart(rig, path)
    try:
        snap = await rig.scan()
        alarms = {a.alarm_id: a for a in rig.controller.alarms.active()}
        assert str(alarms["heater_stuck_on"].state) == "latched"
        assert alarms["heater_stuck_on"].acked_at is None
        assert not snap.outputs.contactor
        assert snap.outputs.heater_on_s == 0
        await rig.controller.command("clear", source="console")
        await rig.run_for(1)
        await rig.controller.command("reset", source="console")
        await rig.run_for(1)
        with pytest.raises(CommandRefused, match="heater_stuck_on"):
            await rig.controller.command("start", source="console", recipe="smoke")
        await rig.controller.acknowledge(None, source="console")
        assert await rig.controller.reset_alarms(source="console") >= 1
        await rig.scan()
        assert "heater_stuck_on" not in {a.alarm_id for a in rig.controller.alarms.active()}
    finally:
        await journal.close()


def test_the_memory_reads_back_what_it_wrote_and_refuses_what_it_cannot_read() -> None:
    trip = row.HEATER_STUCK_ON.trip("TY-101", "heater on while commanded off")
    memory = SafetyMemory(reactor_charged=True, latched=(LatchedTrip(trip=trip, acked=True),))
    assert SafetyMemory.from_json(memory.to_json()) == memory
    # The devices a latch is judged on come back with it; an earlier release kept none: its
    # own tag, as that release judged it.
    weld = row.HEATER_STUCK_ON.trip("E-101", "heater on", also_reads=("TT-101",))
    kept = SafetyMemory(reactor_charged=True, latched=(LatchedTrip(trip=weld, acked=False),))
    (back,) = SafetyMemory.from_json(kept.to_json()).latched  # type: ignore[union-attr]
    assert back.trip.judged_on == ("E-101", "TT-101")
    older = kept.to_json().replace(', "inputs": ["E-101", "TT-101"]', "")
    assert "inputs" not in older
    (old,) = SafetyMemory.from_json(older).latched  # type: ignore[union-attr]
    assert old.trip.judged_on == ("E-101",)
    aborted = SafetyMemory(reactor_charged=False, aborted=True)
    assert SafetyMemory.from_json(aborted.to_json()) == aborted
    # What an earlier release kept (no `aborted`) reads as not aborted: Stopped, as it was.
    assert SafetyMemory.from_json('{"reactor_charged": false, "latched": []}') == SafetyMemory(
        reactor_charged=False
    )
    assert SafetyMemory.from_json(None) is None
    # What cannot be read is taken the worst way: charged, and a latched trip forcing all.
    for text in ("{", "[]", '{"reactor_charged": false}', "[" * 100_000):
        unreadable = SafetyMemory.from_json(text)
        assert unreadable is not None
        assert unreadable.reactor_charged is True
        assert [e.trip.alarm_id for e in unreadable.latched] == [UNREADABLE]
        assert unreadable.latched[0].trip.forces == frozenset({Force.ALL})
    # One trip of a later release (an action this one lacks): that trip alone, the worst way.
    later = memory.to_json().replace('"abort"', '"shutdown"')
    taken = SafetyMemory.from_json(later.replace('"reactor_charged": true', '"reactor_charged": 1'))
    assert taken is not None
    assert taken.reactor_charged is True
    assert [(e.trip.alarm_id, e.trip.tag) for e in taken.latched] == [
        (UNREADABLE, "heater_stuck_on:TY-101")
    ]
    assert charged_at_start(None, batch_interrupted=False) is True  # nothing known: assume acid
    empty = SafetyMemory(reactor_charged=False)
    assert charged_at_start(empty, batch_interrupted=False) is False
    assert charged_at_start(empty, batch_interrupted=True) is True
    # A crash after a "no": a full disk may have kept the newer "yes" in memory only.
    assert charged_at_start(empty, batch_interrupted=False, previous_run_clean=False) is True
    assert charge_assumed(empty, batch_interrupted=False, previous_run_clean=False) is True
    assert charge_assumed(empty, batch_interrupted=False) is False
    assert charge_assumed(None, batch_interrupted=False) is True
    assert charge_assumed(None, batch_interrupted=True) is False
    charged = SafetyMemory(reactor_charged=True)
    assert charge_assumed(charged, batch_interrupted=False, previous_run_clean=False) is False


def test_a_restored_trip_is_raised_once_in_the_state_the_first_scan_finds() -> None:
    estop = row.ESTOP_PRESSED.trip("HS-100", "E-stop pressed")
    welded = row.HEATER_STUCK_ON.trip("E-101", "heater on while commanded off")
    alarms = AlarmManager()
    alarms.restore_latched([(estop, False), (welded, True)], now=0.0)
    assert {t.alarm_id for t in alarms.in_effect()} == {"estop", "heater_stuck_on"}
    events = alarms.update([estop], now=0.1)  # the E-stop is still pressed
    assert sorted((e.alarm_id, str(e.kind), str(e.state)) for e in events) == [
        ("estop", "raised", "unack_active"),
        ("heater_stuck_on", "raised", "latched"),
    ]
    assert alarms.update([estop], now=0.2) == []


async def test_a_simulation_on_a_units_state_dir_keeps_its_crash_and_its_safety_memory(
    tmp_path: Path,
) -> None:
    # A daemon crashed there with a latched weld and acid in the reactor; a sim run on the same
    # state directory (allowed, not at once) must not make its next start a clean one.
    state = tmp_path / "state"
    crashed = Journal(path=state / JOURNAL_FILE)
    await crashed.open()
    memory = '{"reactor_charged": true, "latched": [], "aborted": true}'
    crashed.mark_safety(memory)
    await crashed.close(clean=False)
    run = SimulationRun(
        config=load_config(),
        options=SimOptions(recipe="smoke", seed=1, state_dir=state),
        out=io.StringIO(),
    )
    assert (await run.run()).final_state is State.COMPLETE
    journal = Journal(path=state / JOURNAL_FILE)
    opening = await journal.open()
    await journal.close()
    assert opening.previous_run_clean is False
    assert opening.safety == memory
