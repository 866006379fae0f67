"""Behaviour of the PackML state machine against an expectation written independently of it.

These tests never sleep and never depend on wall-clock time.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from unit_controller.errors import CommandRefused
from unit_controller.machine import STATE_NUMBER, Command, PackMLMachine, State

S = State
C = Command

# Written by hand from DESIGN §3 / ISA-TR88.00.02, not derived from the module's table.
_STOPPABLE = set(S) - {S.STOPPED, S.STOPPING, S.CLEARING, S.ABORTING, S.ABORTED}
_ABORTABLE = set(S) - {S.ABORTING, S.ABORTED}
EXPECTED: dict[tuple[State, Command], State] = {
    (S.STOPPED, C.RESET): S.RESETTING,
    (S.COMPLETE, C.RESET): S.RESETTING,
    (S.IDLE, C.START): S.STARTING,
    (S.EXECUTE, C.HOLD): S.HOLDING,
    # OPC 30050: hold also while getting under way or resuming
    (S.STARTING, C.HOLD): S.HOLDING,
    (S.UNHOLDING, C.HOLD): S.HOLDING,
    (S.SUSPENDING, C.HOLD): S.HOLDING,
    (S.SUSPENDED, C.HOLD): S.HOLDING,
    (S.UNSUSPENDING, C.HOLD): S.HOLDING,
    (S.HELD, C.UNHOLD): S.UNHOLDING,
    (S.EXECUTE, C.SUSPEND): S.SUSPENDING,
    (S.SUSPENDED, C.UNSUSPEND): S.UNSUSPENDING,
    (S.ABORTED, C.CLEAR): S.CLEARING,
    (S.EXECUTE, C.COMPLETE): S.COMPLETING,
    (S.SUSPENDED, C.COMPLETE): S.COMPLETING,
    (S.HELD, C.COMPLETE): S.COMPLETING,
    **{(s, C.STOP): S.STOPPING for s in _STOPPABLE},
    **{(s, C.ABORT): S.ABORTING for s in _ABORTABLE},
}
EXPECTED_SC: dict[State, State] = {
    S.RESETTING: S.IDLE,
    S.STARTING: S.EXECUTE,
    S.COMPLETING: S.COMPLETE,
    S.HOLDING: S.HELD,
    S.UNHOLDING: S.EXECUTE,
    S.SUSPENDING: S.SUSPENDED,
    S.UNSUSPENDING: S.EXECUTE,
    S.STOPPING: S.STOPPED,
    S.ABORTING: S.ABORTED,
    S.CLEARING: S.STOPPED,
}
ALL_PAIRS = list(itertools.product(State, Command))
REFUSED = [pair for pair in ALL_PAIRS if pair not in EXPECTED]
ACCEPTED = [pair for pair in ALL_PAIRS if pair in EXPECTED]


class Recorder:
    """Collects on_change calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[State, State, str]] = []

    def __call__(self, old: State, new: State, cause: str) -> None:
        self.calls.append((old, new, cause))


def _id(pair: tuple[State, Command]) -> str:
    return f"{pair[0]}-{pair[1]}"


async def test_power_up_state_is_stopped_with_packtags_number_2() -> None:
    machine = PackMLMachine()
    assert machine.state is S.STOPPED
    assert machine.number == 2


async def test_happy_path_runs_a_batch_and_resets_for_the_next() -> None:
    rec = Recorder()
    machine = PackMLMachine(on_change=rec)

    assert await machine.command(C.RESET) is S.RESETTING
    assert await machine.state_complete() is S.IDLE
    assert await machine.command(C.START) is S.STARTING
    assert await machine.state_complete() is S.EXECUTE
    assert await machine.finish() is S.COMPLETING
    assert await machine.state_complete() is S.COMPLETE
    assert await machine.command(C.RESET) is S.RESETTING
    assert await machine.state_complete() is S.IDLE

    assert rec.calls == [
        (S.STOPPED, S.RESETTING, "reset"),
        (S.RESETTING, S.IDLE, "state_complete"),
        (S.IDLE, S.STARTING, "start"),
        (S.STARTING, S.EXECUTE, "state_complete"),
        (S.EXECUTE, S.COMPLETING, "finish"),
        (S.COMPLETING, S.COMPLETE, "state_complete"),
        (S.COMPLETE, S.RESETTING, "reset"),
        (S.RESETTING, S.IDLE, "state_complete"),
    ]


async def test_hold_then_unhold_returns_to_execute() -> None:
    machine = PackMLMachine(initial=S.EXECUTE)
    assert await machine.command(C.HOLD, reason="pH probe bad") is S.HOLDING
    assert await machine.state_complete() is S.HELD
    assert await machine.command(C.UNHOLD) is S.UNHOLDING
    assert await machine.state_complete() is S.EXECUTE


async def test_suspend_then_unsuspend_returns_to_execute() -> None:
    machine = PackMLMachine(initial=S.EXECUTE)
    assert await machine.command(C.SUSPEND, reason="no feed") is S.SUSPENDING
    assert await machine.state_complete() is S.SUSPENDED
    assert await machine.command(C.UNSUSPEND) is S.UNSUSPENDING
    assert await machine.state_complete() is S.EXECUTE


async def test_hold_while_suspended_reaches_held() -> None:
    machine = PackMLMachine(initial=S.SUSPENDED)
    assert await machine.command(C.HOLD) is S.HOLDING
    assert await machine.state_complete() is S.HELD


@pytest.mark.parametrize("start", [S.EXECUTE, S.HELD])
async def test_stop_goes_through_stopping_to_stopped(start: State) -> None:
    machine = PackMLMachine(initial=start)
    assert await machine.command(C.STOP) is S.STOPPING
    assert await machine.state_complete() is S.STOPPED


@pytest.mark.parametrize("start", sorted(_ABORTABLE))
async def test_abort_from_every_non_aborting_state_ends_aborted(start: State) -> None:
    machine = PackMLMachine(initial=start)
    assert await machine.command(C.ABORT) is S.ABORTING
    assert await machine.state_complete() is S.ABORTED


@pytest.mark.parametrize("start", list(State))
async def test_clear_is_accepted_only_from_aborted(start: State) -> None:
    machine = PackMLMachine(initial=start)
    if start is S.ABORTED:
        assert await machine.command(C.CLEAR) is S.CLEARING
        assert await machine.state_complete() is S.STOPPED
    else:
        with pytest.raises(CommandRefused):
            await machine.command(C.CLEAR)
        assert machine.state is start


@pytest.mark.parametrize(("start", "command"), REFUSED, ids=[_id(p) for p in REFUSED])
async def test_refused_command_names_the_state_and_leaves_it_unchanged(
    start: State, command: Command
) -> None:
    rec = Recorder()
    machine = PackMLMachine(initial=start, on_change=rec)
    with pytest.raises(CommandRefused, match=f"cannot {command} in {start}: ") as info:
        await machine.command(command)
    allowed_from = [s for s in State if (s, command) in EXPECTED]
    assert str(info.value).endswith("allowed from " + ", ".join(allowed_from))
    assert machine.state is start
    assert not machine.allowed(command)
    assert rec.calls == []


@pytest.mark.parametrize(("start", "command"), ACCEPTED, ids=[_id(p) for p in ACCEPTED])
async def test_accepted_command_moves_to_the_expected_state(start: State, command: Command) -> None:
    rec = Recorder()
    machine = PackMLMachine(initial=start, on_change=rec)
    assert machine.allowed(command)
    assert await machine.command(command) is EXPECTED[start, command]
    assert machine.state is EXPECTED[start, command]
    assert rec.calls == [(start, EXPECTED[start, command], str(command))]


@pytest.mark.parametrize("start", list(State))
async def test_allowed_commands_match_the_expectation(start: State) -> None:
    machine = PackMLMachine(initial=start)
    assert machine.allowed_commands() == [c for c in Command if (start, c) in EXPECTED]
    assert machine.state is start  # asking changes nothing


@pytest.mark.parametrize("start", list(State))
async def test_state_complete_ends_acting_states_and_is_a_no_op_elsewhere(start: State) -> None:
    rec = Recorder()
    machine = PackMLMachine(initial=start, on_change=rec)
    assert machine.is_acting is (start in EXPECTED_SC)
    result = await machine.state_complete()
    assert result is EXPECTED_SC.get(start, start)
    assert len(rec.calls) == (1 if start in EXPECTED_SC else 0)


@pytest.mark.parametrize("start", list(State))
async def test_finish_only_moves_execute_to_completing(start: State) -> None:
    machine = PackMLMachine(initial=start)
    expected = S.COMPLETING if start is S.EXECUTE else start
    assert await machine.finish() is expected


def test_state_numbers_are_the_packtags_numbers() -> None:
    assert dict(STATE_NUMBER) == {
        S.CLEARING: 1, S.STOPPED: 2, S.STARTING: 3, S.IDLE: 4, S.SUSPENDED: 5,
        S.EXECUTE: 6, S.STOPPING: 7, S.ABORTING: 8, S.ABORTED: 9, S.HOLDING: 10,
        S.HELD: 11, S.UNHOLDING: 12, S.SUSPENDING: 13, S.UNSUSPENDING: 14,
        S.RESETTING: 15, S.COMPLETING: 16, S.COMPLETE: 17,
    }  # fmt: skip


@pytest.mark.parametrize("state", list(State))
def test_number_reports_the_current_state_number(state: State) -> None:
    assert PackMLMachine(initial=state).number == STATE_NUMBER[state]


def test_names_and_values_are_the_documented_spelling() -> None:
    assert [s.value for s in State] == [s.name for s in State]
    assert len(State) == 17
    assert [c.value for c in Command] == [c.name.lower() for c in Command]


async def test_on_change_cause_carries_the_reason() -> None:
    rec = Recorder()
    machine = PackMLMachine(initial=S.EXECUTE, on_change=rec)
    await machine.command(C.HOLD, reason="reagent low")
    await machine.state_complete(reason="outputs safe")
    assert rec.calls == [
        (S.EXECUTE, S.HOLDING, "hold: reagent low"),
        (S.HOLDING, S.HELD, "state_complete: outputs safe"),
    ]


async def test_command_accepts_its_string_name() -> None:
    machine = PackMLMachine()
    assert await machine.command("reset") is S.RESETTING
    assert await machine.command(" ABORT ") is S.ABORTING


@pytest.mark.parametrize("name", ["jump", "state_complete", "finish", ""])
async def test_unknown_command_is_refused_naming_the_valid_ones(name: str) -> None:
    machine = PackMLMachine(initial=S.EXECUTE)
    with pytest.raises(CommandRefused, match="valid commands are reset, start, stop, hold"):
        await machine.command(name)
    assert machine.state is S.EXECUTE


async def test_each_change_is_logged_with_old_new_and_cause() -> None:
    machine = PackMLMachine()
    with capture_logs() as logs:
        await machine.command(C.RESET, reason="operator")
        with pytest.raises(CommandRefused):
            await machine.command(C.START)  # refused: nothing logged
    assert logs == [
        {
            "event": "machine.state_changed",
            "log_level": "info",
            "old": "STOPPED",
            "new": "RESETTING",
            "cause": "reset: operator",
        }
    ]


async def test_failing_observer_does_not_undo_or_refuse_the_change() -> None:
    def broken(old: State, new: State, cause: str) -> None:
        raise RuntimeError("journal down")

    machine = PackMLMachine(on_change=broken)
    with capture_logs() as logs:
        assert await machine.command(C.RESET) is S.RESETTING
    assert machine.state is S.RESETTING
    assert [e["event"] for e in logs] == ["machine.state_changed", "machine.on_change_failed"]


async def test_command_takes_effect_without_yielding_to_other_tasks() -> None:
    # The scan relies on this: a command is applied whole before anything else runs.
    machine = PackMLMachine()
    ran: list[State] = []

    async def observer() -> None:
        ran.append(machine.state)

    task = asyncio.create_task(observer())
    await machine.command(C.RESET)
    await machine.state_complete()
    assert ran == []
    await task
    assert ran == [S.IDLE]


async def test_concurrent_commands_are_applied_one_at_a_time() -> None:
    machine = PackMLMachine(initial=S.EXECUTE)
    results = await asyncio.gather(
        machine.command(C.HOLD), machine.command(C.HOLD), return_exceptions=True
    )
    assert results[0] is S.HOLDING
    assert isinstance(results[1], CommandRefused)
    assert machine.state is S.HOLDING


_STEPS = st.sampled_from([*Command, "state_complete", "finish"])


@settings(max_examples=300, deadline=None)
@given(start=st.sampled_from(list(State)), steps=st.lists(_STEPS, max_size=40))
def test_random_walk_follows_the_expected_table(start: State, steps: list[str]) -> None:
    async def walk() -> None:
        changes = Recorder()
        machine = PackMLMachine(initial=start, on_change=changes)
        expected = start
        for step in steps:
            before = machine.state
            n_changes = len(changes.calls)
            if step == "state_complete":
                await machine.state_complete()
                expected = EXPECTED_SC.get(expected, expected)
            elif step == "finish":
                await machine.finish()
                expected = S.COMPLETING if expected is S.EXECUTE else expected
            elif (expected, Command(step)) in EXPECTED:
                await machine.command(step)
                expected = EXPECTED[expected, Command(step)]
            else:
                with pytest.raises(CommandRefused):
                    await machine.command(step)
                assert machine.state is before  # a refusal never changes state
            assert machine.state is expected
            assert isinstance(machine.state, State)
            assert len(changes.calls) == n_changes + (machine.state is not before)

    asyncio.run(walk())


def test_each_command_has_its_packtags_number() -> None:
    # ISA-TR88.00.02 CntrlCmd, written by hand: 0 is "undefined", never a command.
    expected = {
        C.RESET: 1, C.START: 2, C.STOP: 3, C.HOLD: 4, C.UNHOLD: 5, C.SUSPEND: 6,
        C.UNSUSPEND: 7, C.ABORT: 8, C.CLEAR: 9, C.COMPLETE: 10,
    }  # fmt: skip
    assert {c: c.code for c in Command} == expected
