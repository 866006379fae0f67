"""Whatever arrives on `cmd/<name>`, the unit answers with one result and never crashes.

Names and payloads are generated (arbitrary bytes, arbitrary JSON, near-valid commands with
one field mutated); a refused command must leave the PackML state as it was.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.rig import Rig
from unit_controller.authority import Authority
from unit_controller.machine import State
from unit_controller.mqtt.commands import (
    CONSOLE_ONLY,
    REMOTE_COMMANDS,
    CommandGate,
    CommandResult,
)
from unit_controller.mqtt.dispatch import CommandDispatcher, handle_command
from unit_controller.mqtt.replay import MemoryReplayStore

NOW_S = 1_767_225_600.0
NOW_MS = int(NOW_S * 1000)

names = st.one_of(
    st.sampled_from(sorted(REMOTE_COMMANDS | CONSOLE_ONLY)),
    st.sampled_from(["", "START", " start", "start/x", "#", "+", "cmd", "x" * 300]),
    st.text(max_size=20),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and Infinity too: json.dumps writes them, a strict reader must not
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

_ARGS: dict[str, list[dict[str, Any]]] = {
    "start": [{"recipe": "smoke"}, {"recipe": "../recipes/smoke"}, {"recipe": "nosuch"}],
    "ack": [{}, {"alarm": None}, {"alarm": "all"}, {"alarm": "estop"}],
    "reset_alarms": [{}, {"alarm": "all"}, {"alarm": "a b"}],
}
_FIELDS = ["id", "ts", "exp", "by", "args"]
# Lists with the usual case repeated, so that a good share of the commands pass the gate.
_MUTATIONS = ["none"] * 6 + ["drop", "replace", "add", "lifetime", "text"]
_TS_OFFSETS = [0] * 4 + [-1, -5_000, 59_000, 61_000, -600_000]
_LIFETIMES = [30_000] * 4 + [1, 600_000, 600_001, 0, -1]


@st.composite
def near_valid(draw: st.DrawFn, name: str = "start") -> bytes:
    """A valid `name` command with at most one thing wrong: a field dropped, replaced or added."""
    ts = NOW_MS + draw(st.sampled_from(_TS_OFFSETS))
    doc: dict[str, Any] = {
        "id": draw(st.sampled_from(["cmd-1", "7f3c-a9", "x" * 128])),
        "ts": ts,
        "exp": ts + draw(st.sampled_from(_LIFETIMES)),
        "by": draw(st.sampled_from(["alice", "fleet-ops", "ü" * 64])),
        "args": draw(st.sampled_from(_ARGS.get(name, [{}]))),
    }
    mutation = draw(st.sampled_from(_MUTATIONS))
    if mutation == "drop":
        del doc[draw(st.sampled_from(_FIELDS))]
    elif mutation == "replace":
        doc[draw(st.sampled_from(_FIELDS))] = draw(json_values)
    elif mutation == "add":
        doc[draw(st.text(max_size=8))] = draw(json_values)
    elif mutation == "lifetime":
        doc["exp"] = doc["ts"] + draw(st.integers())
    elif mutation == "text":
        doc[draw(st.sampled_from(["id", "by"]))] = draw(st.text(max_size=130))
    return json.dumps(doc).encode()


@st.composite
def near_valid_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """A remote command name and a near-valid payload for it."""
    name = draw(st.sampled_from(sorted(REMOTE_COMMANDS)))
    return name, draw(near_valid(name))


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(min_size=4090, max_size=4100),
    st.integers(1, 2048).map(lambda n: b"[" * n + b"]" * n),  # nesting: a refusal, not a crash
)


async def _send_to_idle_unit(*, name: str, payload: bytes, retained: bool) -> None:
    """Send one message to a fresh unit in IDLE and check the result it gets."""
    # Fresh per example: a start or stop that slipped through would show in the state.
    rig = Rig(authority=Authority.REMOTE)  # so that valid commands act
    await rig.scan()
    await rig.controller.command("reset", source="test")
    await rig.scan()
    wall = lambda: NOW_S  # noqa: E731 -- the fleet's clock, frozen
    gate = CommandGate(replay=MemoryReplayStore(), wall=wall)
    dispatcher = CommandDispatcher(controller=rig.controller, on_rebirth=lambda: None, wall=wall)
    before = rig.controller.machine.state

    result = await handle_command(
        gate=gate, dispatcher=dispatcher, name=name, payload=payload, retained=retained
    )

    assert isinstance(result, CommandResult)
    # Shown by --hypothesis-show-statistics: how far into the checks the examples get.
    event("accepted" if result.ok else f"refused: {' '.join((result.error or '').split()[:2])}")
    assert json.loads(result.to_json())["ok"] is result.ok
    assert result.state is not None
    assert State(result.state) is rig.controller.machine.state
    if result.ok:
        assert result.error is None
        assert not retained
        assert name in REMOTE_COMMANDS
    else:
        assert isinstance(result.error, str)
        assert result.error
        assert "internal error" not in result.error
        assert rig.controller.machine.state is before
        assert rig.controller.recipe is None


_SETTINGS = settings(
    derandomize=True,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)


@_SETTINGS
@given(message=near_valid_messages(), retained=st.sampled_from([False] * 5 + [True]))
async def test_a_near_valid_command_gets_a_result_and_a_refusal_changes_no_state(
    message: tuple[str, bytes], retained: bool
) -> None:
    name, payload = message
    await _send_to_idle_unit(name=name, payload=payload, retained=retained)


@_SETTINGS
@given(name=st.sampled_from(sorted(REMOTE_COMMANDS)), payload=payloads, retained=st.booleans())
async def test_arbitrary_bytes_or_json_get_a_result_and_change_no_state(
    name: str, payload: bytes, retained: bool
) -> None:
    await _send_to_idle_unit(name=name, payload=payload, retained=retained)


@_SETTINGS
@given(name=names, payload=payloads | near_valid(), retained=st.booleans())
async def test_any_command_name_gets_a_result_and_a_refusal_changes_no_state(
    name: str, payload: bytes, retained: bool
) -> None:
    await _send_to_idle_unit(name=name, payload=payload, retained=retained)
