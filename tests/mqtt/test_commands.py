"""Remote (MQTT) commands as the fleet sends them: what a unit accepts, refuses and answers."""

from __future__ import annotations

import json
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from hal.outputs import Outputs
from tests.rig import Rig
from unit_controller.alarms import AlarmState
from unit_controller.authority import Authority
from unit_controller.events import EventKind
from unit_controller.interlocks import Priority
from unit_controller.machine import State, UnitMode
from unit_controller.mqtt import outbox_db
from unit_controller.mqtt.commands import (
    CONSOLE_ONLY,
    REMOTE_COMMANDS,
    CommandGate,
    CommandResult,
    RemoteCommand,
    StartArgs,
)
from unit_controller.mqtt.dispatch import CommandDispatcher, handle_command
from unit_controller.mqtt.outbox import Outbox
from unit_controller.mqtt.replay import MemoryReplayStore

NOW_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the fleet's wall clock, frozen for the test
NOW_MS = int(NOW_S * 1000)

_PROMPT_RECIPE = """
name = "prompt"
description = "One phase that waits for the operator."
starts_with = "empty"

[[phases]]
name = "charge"
timeout_min = 10.0
until = { confirm = "Black mass charged" }
"""


class Remote:
    """A fleet operator's view of one simulated unit: send a command, get its result."""

    def __init__(self, rig: Rig | None = None) -> None:
        self.rig = rig or Rig(authority=Authority.REMOTE)
        self.now_s = NOW_S
        self.rebirths = 0
        self.replay = MemoryReplayStore()
        self.gate = CommandGate(replay=self.replay, wall=self.wall)
        self.dispatcher = CommandDispatcher(
            controller=self.rig.controller, on_rebirth=self._rebirth, wall=self.wall
        )
        self._ids = count(1)

    def wall(self) -> float:
        return self.now_s

    def _rebirth(self) -> None:
        self.rebirths += 1

    @property
    def state(self) -> State:
        return self.rig.controller.machine.state

    def payload(self, **fields: Any) -> dict[str, Any]:
        """A valid payload (fresh id, 60 s to live), with `fields` replacing or adding keys."""
        now_ms = int(self.now_s * 1000)
        doc: dict[str, Any] = {
            "id": f"cmd-{next(self._ids)}",
            "ts": now_ms,
            "exp": now_ms + 60_000,
            "by": "alice@fleet",
        }
        doc.update(fields)
        return doc

    async def send(
        self, name: str, *, retained: bool = False, payload: bytes | None = None, **fields: Any
    ) -> CommandResult:
        """Publish `cmd/<name>` with a valid payload changed by `fields` (or raw `payload`)."""
        raw = json.dumps(self.payload(**fields)).encode() if payload is None else payload
        return await handle_command(
            gate=self.gate, dispatcher=self.dispatcher, name=name, payload=raw, retained=retained
        )


async def idle_remote() -> Remote:
    """A unit reset to IDLE by the fleet, ready to start."""
    remote = Remote()
    await remote.rig.scan()
    assert (await remote.send("reset")).ok
    await remote.rig.scan()
    assert remote.state is State.IDLE
    return remote


async def executing_remote() -> Remote:
    """A unit a minute into the smoke recipe (filling)."""
    remote = Remote()
    await remote.rig.start("smoke")
    await remote.rig.run_for(60)
    assert remote.state is State.EXECUTE
    return remote


# --- operating a batch ---------------------------------------------------------------------


async def test_hold_mid_batch_is_accepted_and_the_unit_is_held_after_a_few_scans() -> None:
    remote = await executing_remote()
    assert remote.rig.controller.snapshot is not None
    assert remote.rig.controller.snapshot.outputs.fill_pump
    result = await remote.send("hold")
    assert result.ok, result.error
    assert result.error is None
    assert result.state == "HOLDING"
    snap = await remote.rig.run_until(lambda s: s.state is State.HELD, limit_s=5)
    # Holding stops the fill: an operator checks the pump is off.
    assert not snap.outputs.fill_pump


async def test_unhold_resumes_the_batch_in_the_same_phase() -> None:
    remote = await executing_remote()
    assert (await remote.send("hold")).ok
    held = await remote.rig.run_until(lambda s: s.state is State.HELD, limit_s=5)
    result = await remote.send("unhold")
    assert result.ok, result.error
    snap = await remote.rig.run_until(lambda s: s.state is State.EXECUTE, limit_s=5)
    assert snap.phase == held.phase == "fill"


async def test_start_with_a_recipe_name_runs_that_recipe() -> None:
    remote = await idle_remote()
    result = await remote.send("start", args={"recipe": "smoke"})
    assert result.ok, result.error
    assert result.state == "STARTING"
    snap = await remote.rig.run_until(lambda s: s.state is State.EXECUTE, limit_s=5)
    assert snap.recipe == "smoke"
    started = [e for e in remote.rig.events if e.kind is EventKind.COMMAND]
    assert started[-1].data["source"] == "mqtt:alice@fleet (unauthenticated)"
    # Its event names the command, so the fleet matches it to the cmd_result.
    assert started[-1].data["id"] == result.id
    # A command from the console afterwards carries no fleet id.
    await remote.rig.controller.command("hold", source="console:tech")
    held = [e for e in remote.rig.events if e.kind is EventKind.COMMAND][-1]
    assert (held.data["command"], "id" in held.data) == ("hold", False)


async def test_start_without_a_recipe_is_refused_naming_args_recipe() -> None:
    remote = await idle_remote()
    result = await remote.send("start")
    assert not result.ok
    assert result.error == "args.recipe: Field required"
    assert remote.state is State.IDLE


@pytest.mark.parametrize(
    "recipe", ["../recipes/smoke", "/etc/passwd", "smoke.toml", "recipes/smoke", "", "a" * 65]
)
async def test_start_with_a_path_or_odd_recipe_name_is_refused_naming_args_recipe(
    recipe: str,
) -> None:
    remote = await idle_remote()
    result = await remote.send("start", args={"recipe": recipe})
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("args.recipe: must be a recipe name")
    assert "never a path" in result.error
    assert remote.state is State.IDLE
    assert remote.rig.controller.recipe is None


async def test_start_of_a_recipe_the_unit_does_not_have_is_refused_by_the_controller() -> None:
    remote = await idle_remote()
    result = await remote.send("start", args={"recipe": "nosuch"})
    assert not result.ok
    assert result.error is not None
    assert "no recipe named 'nosuch'" in result.error
    assert result.state == "IDLE"


async def test_a_command_the_state_does_not_allow_is_refused_with_the_machines_reason() -> None:
    remote = await idle_remote()
    result = await remote.send("hold")
    assert not result.ok
    assert result.error == (
        "cannot hold in IDLE: hold is allowed from STARTING, EXECUTE, UNHOLDING, SUSPENDING, "
        "SUSPENDED, UNSUSPENDING"
    )
    assert result.state == "IDLE"


async def test_a_command_to_a_unit_that_is_stopping_is_refused_at_once_saying_so() -> None:
    remote = await executing_remote()
    remote.dispatcher.refusing = "the unit is stopping: send it again once it is back online"
    result = await remote.send("hold")
    assert (result.ok, result.error) == (False, remote.dispatcher.refusing)
    assert result.state == "EXECUTE"
    await remote.rig.run_for(1)
    assert remote.state is State.EXECUTE  # nothing was queued for a scan to pick up
    # What the gate refuses is refused for its own reason still.
    assert "must be after ts" in ((await remote.send("hold", exp=1)).error or "")


async def test_stop_mid_batch_stops_the_unit_with_everything_off() -> None:
    remote = await executing_remote()
    assert (await remote.send("stop")).ok
    snap = await remote.rig.run_until(lambda s: s.state is State.STOPPED, limit_s=5)
    assert snap.outputs == Outputs.safe()


async def test_a_replayed_command_id_is_refused_and_changes_nothing() -> None:
    remote = await executing_remote()
    hold = remote.payload()
    assert (await remote.send("hold", payload=json.dumps(hold).encode())).ok
    await remote.rig.run_until(lambda s: s.state is State.HELD, limit_s=5)
    assert (await remote.send("unhold")).ok
    await remote.rig.run_until(lambda s: s.state is State.EXECUTE, limit_s=5)

    # The broker redelivers the old hold (QoS 1 after a reconnect): it must not hold again.
    result = await remote.send("hold", payload=json.dumps(hold).encode())
    assert not result.ok
    assert result.error == f"replayed: command id '{hold['id']}' was already received"
    assert result.id == hold["id"]
    snap = await remote.rig.run_for(2)
    assert snap.state is State.EXECUTE


async def test_a_command_issued_before_the_seen_ids_were_lost_is_refused() -> None:
    # The outbox holding the ids seen was damaged and set aside: a command issued before that
    # may be one carried out already, which nothing here can tell any more.
    remote = await executing_remote()
    old = remote.payload()  # issued now, say seen and carried out before the loss
    remote.now_s += 5.0
    remote.replay.forgot_before_ms = int(remote.now_s * 1000)
    remote.now_s += 1.0
    result = await remote.send("hold", payload=json.dumps(old).encode())
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("issued before this unit lost its record of the commands")
    snap = await remote.rig.run_for(2)
    assert snap.state is State.EXECUTE
    # One issued since is taken.
    assert (await remote.send("hold")).ok


# --- refusals that name the problem and change nothing -----------------------------------

_START = {"args": {"recipe": "smoke"}}
_TOO_BIG = json.dumps({**_START, "pad": "x" * 5000}).encode()

# (command name, payload fields or raw bytes, retained, text the error must contain)
REFUSED: list[tuple[str, dict[str, Any] | bytes, bool, str]] = [
    ("start", b'{"id": "x1", "ts": ', False, "payload is not JSON: Expecting value"),
    ("start", b"[]", False, "payload must be a JSON object, got an array"),
    ("start", b'"start"', False, "payload must be a JSON object, got a string"),
    ("start", b"", False, "payload is not JSON"),
    ("start", b'{"id": "\xff"}', False, "payload is not UTF-8"),
    ("start", _TOO_BIG, False, f"payload is {len(_TOO_BIG)} bytes; at most 4096 allowed"),
    ("start", b'{"id": "n1", "args": {"recipe": "smoke"}}', False, "ts: Field required"),
    ("start", b'{"id": "n1", "args": {"recipe": "smoke"}}', False, "by: Field required"),
    ("start", {**_START, "ts": str(NOW_MS)}, False, "ts: Input should be a valid integer"),
    ("start", {**_START, "ts": True}, False, "ts: Input should be a valid integer (got True)"),
    ("start", {**_START, "exp": float(NOW_MS + 1000)}, False, "exp: Input should be a valid"),
    ("start", {**_START, "id": 42}, False, "id: Input should be a valid string"),
    ("start", {**_START, "id": "  "}, False, "id: must not be only whitespace"),
    ("start", {**_START, "id": "a\nb"}, False, "id: must contain only printable characters"),
    ("start", {**_START, "id": "x" * 129}, False, "id: String should have at most 128"),
    ("start", {**_START, "by": ""}, False, "by: String should have at least 1 character"),
    ("start", {"args": ["smoke"]}, False, "args: Input should be a valid dictionary"),
    ("start", {**_START, "colour": "red"}, False, "colour: Extra inputs are not permitted"),
    (
        "start",
        {"args": {"recipe": "smoke", "speed": 9}},
        False,
        "args.speed: Extra inputs are not permitted",
    ),
    ("start", {**_START, "exp": NOW_MS}, False, f"exp ({NOW_MS}) must be after ts ({NOW_MS})"),
    (
        "start",
        {**_START, "exp": NOW_MS + 900_000},
        False,
        "exp is 900 s after ts; at most 600 s allowed",
    ),
    (
        "start",
        {**_START, "ts": NOW_MS + 120_000, "exp": NOW_MS + 180_000},
        False,
        "ts is 120.0 s in the future; at most 60 s of clock difference allowed",
    ),
    (
        "start",
        {**_START, "ts": NOW_MS - 65_000, "exp": NOW_MS - 5_000},
        False,
        "expired 5.0 s ago",
    ),
    ("start", b'{"id": "d1", "id": "d2"}', False, "payload has the key 'id' more than once"),
    ("start", b'{"id": "f1", "ts": NaN}', False, "payload contains NaN, which is not JSON"),
    (
        "start",
        b"[" * 2000 + b"]" * 2000,
        False,
        "payload is nested 2000 levels deep; at most 16 allowed",
    ),
    (
        "start",
        _START,
        True,
        "ignored: a retained command message (publish commands with retain=false)",
    ),
    ("launch", _START, False, "unknown command 'launch'; remote commands are: abort, ack,"),
    ("START", _START, False, "unknown command 'START'"),
    ("", _START, False, "unknown command ''"),
    (
        "jog",
        {},
        False,
        "'jog' is a console-only command (manual mode, jog, calibration",
    ),
    ("calibrate_ph", {}, False, "'calibrate_ph' is a console-only command"),
    ("output", {"args": {"tag": "E-101", "on": True}}, False, "'output' is a console-only"),
    ("ack", {"args": {"alarm": 7}}, False, "args.alarm: Input should be a valid string (got 7)"),
    ("ack", {"args": {"alarm": "a b"}}, False, "args.alarm: String should match pattern"),
    ("hold", {"args": {"recipe": "smoke"}}, False, "args.recipe: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(
    ("name", "message", "retained", "expected"),
    REFUSED,
    ids=[f"{i}-{case[0] or 'blank'}" for i, case in enumerate(REFUSED)],
)
async def test_a_bad_command_is_refused_naming_the_problem_and_changes_nothing(
    name: str, message: dict[str, Any] | bytes, retained: bool, expected: str
) -> None:
    # The unit sits in IDLE: a start of smoke that slipped through would change its state.
    remote = await idle_remote()
    controller = remote.rig.controller
    alarms_before = controller.alarms.active()
    outputs_before = remote.rig.controller.snapshot and remote.rig.controller.snapshot.outputs
    events_before = len(remote.rig.events)

    if isinstance(message, bytes):
        result = await remote.send(name, payload=message, retained=retained)
    else:
        result = await remote.send(name, retained=retained, **message)

    assert not result.ok
    assert result.error is not None
    assert expected in result.error
    assert "pydantic" not in result.error  # no documentation URLs in an operator's message
    assert result.command == name
    assert result.state == "IDLE"
    snap = await remote.rig.scan()
    assert snap.state is State.IDLE
    assert controller.recipe is None
    assert controller.alarms.active() == alarms_before
    assert snap.outputs == outputs_before
    assert not [e for e in remote.rig.events[events_before:] if e.kind is EventKind.COMMAND]
    assert remote.rebirths == 0


async def test_every_problem_with_the_fields_is_named_at_once() -> None:
    remote = await idle_remote()
    result = await remote.send("start", payload=b'{"id": "m1", "ts": true, "colour": 1}')
    assert result.error == (
        "ts: Input should be a valid integer (got True); exp: Field required; "
        "by: Field required; colour: Extra inputs are not permitted"
    )


async def test_a_refusal_echoes_the_id_when_the_payload_has_a_usable_one() -> None:
    remote = await idle_remote()
    bad_ts = await remote.send("start", payload=b'{"id": "op-17", "ts": "soon"}')
    assert bad_ts.id == "op-17"
    unknown = await remote.send("launch", id="op-18")
    assert unknown.id == "op-18"
    retained = await remote.send("start", retained=True, id="op-19")
    assert retained.id == "op-19"
    for payload in (b"{", b'{"id": 5}', b'{"id": "  "}', b'["op-20"]'):
        assert (await remote.send("start", payload=payload)).id is None


# --- alarms, confirmation, rebirth --------------------------------------------------------


async def abort_with_two_alarms() -> Remote:
    """An E-stop in IDLE, released since (alarm `estop`, latched), plus a latched alarm raised
    by code (`drill`)."""
    remote = await idle_remote()
    remote.rig.inject("estop")
    await remote.rig.run_until(lambda s: s.state is State.ABORTED, limit_s=5)
    # The E-stop put the unit in local; once it is released, the tech at the console hands it
    # back to the fleet (not while it is pressed).
    assert remote.rig.controller.authority is Authority.LOCAL
    remote.rig.unit._estop_pressed = False
    await remote.rig.run_for(1.0)
    await remote.rig.controller.set_authority("remote", source="console:tech")
    alarms = remote.rig.controller.alarms
    now = remote.rig.clock.monotonic()
    alarms.raise_alarm(alarm_id="drill", tag="X-1", priority=Priority.LOW, now=now, latch=True)
    await remote.rig.scan()
    assert {a.alarm_id: a.state for a in alarms.active()} == {
        "estop": AlarmState.LATCHED,
        "drill": AlarmState.UNACK_ACTIVE,
    }
    return remote


@pytest.mark.parametrize("args", [{}, {"alarm": None}, {"alarm": "all"}])
async def test_ack_without_an_alarm_id_acknowledges_every_alarm(args: dict[str, Any]) -> None:
    remote = await abort_with_two_alarms()
    result = await remote.send("ack", args=args)
    assert result.ok, result.error
    assert result.state == "ABORTED"
    assert result.count == 2
    assert b'"count":2' in result.to_json()  # the fleet sees what it changed
    acked = {a.alarm_id: a.acked_at is not None for a in remote.rig.controller.alarms.active()}
    assert acked == {"estop": True, "drill": True}


async def test_ack_of_one_alarm_id_leaves_the_others_unacknowledged() -> None:
    remote = await abort_with_two_alarms()
    result = await remote.send("ack", args={"alarm": "estop"})
    assert result.ok, result.error
    acked = {a.alarm_id: a.acked_at is not None for a in remote.rig.controller.alarms.active()}
    assert acked == {"estop": True, "drill": False}


async def test_ack_or_reset_of_all_with_nothing_to_do_is_ok_but_a_named_alarm_must_be_active() -> (
    None
):
    remote = await idle_remote()
    for name in ("ack", "reset_alarms"):
        result = await remote.send(name)
        assert (result.ok, result.count) == (True, 0)  # it says that nothing changed
    named = await remote.send("ack", args={"alarm": "estop"})
    assert not named.ok
    assert named.error == "no alarm 'estop' is active (active: none)"


async def test_reset_alarms_resets_an_acknowledged_latch_whose_cause_has_gone() -> None:
    remote = await abort_with_two_alarms()
    alarms = remote.rig.controller.alarms
    alarms.clear("drill", "X-1", now=remote.rig.clock.monotonic())
    await remote.rig.scan()
    assert (await remote.send("ack", args={"alarm": "drill"})).ok
    result = await remote.send("reset_alarms", args={"alarm": "drill"})
    assert result.ok, result.error
    # The E-stop's latch is not acknowledged: it stays, only the drill latch is gone.
    assert [a.alarm_id for a in alarms.active()] == ["estop"]


async def test_confirm_is_console_only_even_with_a_prompt_waiting(tmp_path: Path) -> None:
    (tmp_path / "prompt.toml").write_text(_PROMPT_RECIPE)
    remote = Remote(Rig(recipes_dir=tmp_path, authority=Authority.REMOTE))
    await remote.rig.start("prompt")
    snap = await remote.rig.run_for(5)
    assert snap.awaiting_confirmation == "Black mass charged"
    result = await remote.send("confirm")
    assert not result.ok
    assert result.error is not None
    assert "console-only" in result.error
    snap = await remote.rig.run_for(5)
    # Only someone at the unit can say the black mass is in.
    assert snap.awaiting_confirmation == "Black mass charged"


async def test_rebirth_calls_back_and_changes_nothing_else() -> None:
    remote = await idle_remote()
    result = await remote.send("rebirth")
    assert result.ok, result.error
    assert remote.rebirths == 1
    assert result.state == "IDLE"


# --- the result and its log ---------------------------------------------------------------


async def test_result_json_has_exactly_the_documented_keys_and_is_compact() -> None:
    remote = await idle_remote()
    accepted = await remote.send("start", id="run-1", args={"recipe": "smoke"})
    assert accepted.to_json() == (
        b'{"id":"run-1","ok":true,"error":null,"ts":'
        + str(NOW_MS).encode()
        + b',"command":"start","state":"STARTING"}'
    )
    refused = await remote.send("start", payload=b"nope")
    doc = json.loads(refused.to_json())
    assert list(doc) == ["id", "ok", "error", "ts", "command", "state"]
    assert doc["id"] is None
    assert doc["ok"] is False
    assert doc["error"].startswith("payload is not JSON")
    assert doc["ts"] == NOW_MS
    assert doc["command"] == "start"
    assert doc["state"] == "STARTING"


async def test_result_of_a_command_with_an_absurd_name_stays_short() -> None:
    remote = await idle_remote()
    result = await remote.send("x" * 10_000)
    assert not result.ok
    assert len(result.to_json()) < 600


async def test_received_refused_and_done_are_logged() -> None:
    remote = await idle_remote()
    with capture_logs() as logs:
        await remote.send("rebirth", id="r-1")
        await remote.send("jog", id="j-1")
    events = [(e["event"], e.get("name"), e.get("id"), e["log_level"]) for e in logs]
    assert ("command.received", "rebirth", "r-1", "info") in events
    assert ("command.done", "rebirth", "r-1", "info") in events
    assert ("command.refused", "jog", "j-1", "warning") in events
    received = next(e for e in logs if e["event"] == "command.received")
    assert received["by"] == "alice@fleet (unauthenticated)"


async def test_an_unexpected_failure_becomes_an_internal_error_result_and_is_logged() -> None:
    remote = await idle_remote()

    class BrokenStore:
        forgot_before_ms: int | None = None

        async def remember_command(self, command_id: str, exp_ms: int) -> bool:
            raise OSError("disk I/O error")

    remote.gate = CommandGate(replay=BrokenStore(), wall=remote.wall)
    with capture_logs() as logs:
        result = await remote.send("reset")
    assert not result.ok
    assert result.error == "internal error: OSError('disk I/O error')"
    assert result.state == "IDLE"
    assert any(e["event"] == "command.failed" and e["log_level"] == "error" for e in logs)


async def test_a_failing_rebirth_callback_is_reported_not_raised() -> None:
    remote = await idle_remote()

    def broken() -> None:
        raise RuntimeError("not connected")

    remote.dispatcher = CommandDispatcher(
        controller=remote.rig.controller, on_rebirth=broken, wall=remote.wall
    )
    result = await remote.send("rebirth", id="rb-1")
    assert not result.ok
    assert result.id == "rb-1"
    assert result.error == "internal error: RuntimeError('not connected')"


# --- the parts on their own ---------------------------------------------------------------


async def test_the_gate_returns_typed_args_for_a_valid_start() -> None:
    remote = Remote()
    doc = remote.payload(id="s-1", args={"recipe": "leach"})
    checked = await remote.gate.check("start", json.dumps(doc).encode(), retained=False)
    assert checked == RemoteCommand(
        name="start",
        id="s-1",
        by="alice@fleet (unauthenticated)",
        ts=NOW_MS,
        exp=NOW_MS + 60_000,
        args=StartArgs(recipe="leach"),
    )


async def test_memory_replay_store_forgets_by_count_and_never_a_recent_id() -> None:
    mono = [0.0]
    store = MemoryReplayStore(monotonic=lambda: mono[0], keep_s=900.0, max_ids=2)
    for name in ("a", "b", "c"):
        assert await store.remember_command(name, NOW_MS + 10_000)
    assert len(store) == 3  # over the count, but all recent: every one kept
    assert not await store.remember_command("a", NOW_MS + 10_000)
    mono[0] += 901.0
    assert await store.remember_command("d", NOW_MS + 10_000)
    assert len(store) == 2  # the oldest went once they were old on the monotonic clock


async def test_a_wall_clock_step_does_not_let_a_replay_through() -> None:
    remote = await idle_remote()
    hold_first = remote.payload()
    assert (await remote.send("unitmode", **hold_first, args={"mode": "maintenance"})).ok
    remote.now_s += 2 * 3600  # the clock jumps two hours ahead...
    assert (await remote.send("unitmode", args={"mode": "production"})).ok
    remote.now_s -= 2 * 3600  # ...and back: the first message, replayed, is still known
    replay = await remote.send("unitmode", **hold_first, args={"mode": "maintenance"})
    assert not replay.ok
    assert "replayed" in str(replay.error)


async def test_the_outbox_forgets_command_ids_by_count_never_by_the_wall_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_db, "MAX_SEEN_COMMANDS", 3)
    wall, mono = [NOW_S], [0.0]
    outbox = Outbox(
        path=tmp_path / "outbox.sqlite3",
        max_bytes=1 << 20,
        max_age_s=3600,
        wall=lambda: wall[0],
        monotonic=lambda: mono[0],
    )
    async with outbox:
        assert await outbox.remember_command("first", NOW_MS + 60_000)
        wall[0] += 10 * 86400  # a wall clock ten days ahead forgets nothing
        for n in range(5):
            assert await outbox.remember_command(f"later-{n}", NOW_MS + 60_000)
        wall[0] = NOW_S
        assert not await outbox.remember_command("first", NOW_MS + 60_000)
        mono[0] += 901.0  # old on the monotonic clock: now the count applies
        assert await outbox.remember_command("newest", NOW_MS + 60_000)
        assert await outbox.remember_command("first", NOW_MS + 60_000)  # forgotten at last


def test_remote_and_console_only_commands_do_not_overlap() -> None:
    assert not REMOTE_COMMANDS & CONSOLE_ONLY
    assert {"start", "hold", "ack", "reset_alarms", "rebirth"} <= REMOTE_COMMANDS
    assert "confirm" not in REMOTE_COMMANDS


# --- unit modes ---------------------------------------------------------------------------


async def test_unitmode_maintenance_from_the_fleet_keeps_batches_from_starting() -> None:
    remote = await idle_remote()
    result = await remote.send("unitmode", args={"mode": "maintenance"})
    assert result.ok, result.error
    assert remote.rig.controller.unit_mode is UnitMode.MAINTENANCE
    refused = await remote.send("start", args={"recipe": "smoke"})
    assert not refused.ok
    assert "maintenance mode" in str(refused.error)
    assert (await remote.send("unitmode", args={"mode": "production"})).ok
    assert (await remote.send("start", args={"recipe": "smoke"})).ok


async def test_unitmode_manual_is_console_only_and_a_bad_mode_is_named() -> None:
    remote = await idle_remote()
    manual = await remote.send("unitmode", args={"mode": "manual"})
    assert not manual.ok
    assert "at the console" in str(manual.error)
    bad = await remote.send("unitmode", args={"mode": "repair"})
    assert not bad.ok
    assert "args.mode" in str(bad.error)
    await remote.rig.controller.set_manual(True, source="console:tech")
    leave = await remote.send("unitmode", args={"mode": "production"})
    assert not leave.ok
    assert remote.rig.controller.manual  # the tech at the unit keeps manual mode


async def test_unitmode_is_refused_mid_batch() -> None:
    remote = await executing_remote()
    result = await remote.send("unitmode", args={"mode": "maintenance"})
    assert not result.ok
    assert "batch is under way" in str(result.error)
    assert remote.state is State.EXECUTE


async def test_a_refused_commands_claimed_sender_carries_no_control_characters() -> None:
    remote = await idle_remote()
    result = await remote.send("ack", by="\u001b[2J\u001b[31mEVIL\u0007\r\nFAKE LINE", junk=1)
    assert not result.ok
    assert result.by == "?[2J?[31mEVIL???FAKE LINE (unauthenticated)"


def test_a_command_name_from_the_topic_shows_no_bidi_override_or_line_separator() -> None:
    # Found by a fleet tester: cmd/\u202ehold reached events, the journal and the console raw,
    # reversing the line a field tech reads.
    from unit_controller.console.text import clean
    from unit_controller.mqtt.commands import shown_name

    assert shown_name("\u202ehold\u2028x") == "?hold?x"
    assert clean("start recipe=\u202eevil\u2028line2 \u2066x\u2069 ok ✓") == (
        "start recipe=?evil?line2 ?x? ok ✓"
    )


async def test_reset_alarms_names_the_latch_its_unreadable_input_holds() -> None:
    # Found by a reviewer: the fleet got a plain success while a high-high whose RTD had then
    # failed stayed latched.
    remote = Remote()
    rig = remote.rig
    await rig.scan()
    rig.rtd_reads(92.0)
    await rig.run_for(1.0)
    rig.rtd_reads(-1023.0)
    await rig.run_for(1.0)
    # The trip took the unit local; the tech at the console hands it back.
    await rig.controller.set_authority(Authority.REMOTE, source="console")
    assert (await remote.send("ack")).ok
    result = await remote.send("reset_alarms")
    assert result.ok, result.error
    assert json.loads(result.to_json())["held"] == ["temperature_high_high (TT-101)"]
    assert (result.count, result.held) == (0, ("temperature_high_high (TT-101)",))
