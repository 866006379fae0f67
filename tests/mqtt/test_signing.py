"""Signed remote commands: the journal names the key that signed, not what the message says;
anything not signed as this unit's config asks is refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.rig import Rig
from unit_controller.authority import Authority
from unit_controller.machine import State
from unit_controller.mqtt.commands import CommandGate, CommandResult
from unit_controller.mqtt.dispatch import CommandDispatcher, handle_command
from unit_controller.mqtt.replay import MemoryReplayStore
from unit_controller.mqtt.signing import (
    OperatorKey,
    Operators,
    load_private_key,
    new_private_key,
    sign,
)

NOW_S = 1_767_225_600.0
NOW_MS = int(NOW_S * 1000)
UNIT = "unit-s1"


class SignedRemote:
    """A unit that takes only signed commands, with keys for alice (all) and bob (hold only)."""

    def __init__(self, tmp_path: Path) -> None:
        self.alice = new_private_key(tmp_path / "alice.key")
        self.bob = new_private_key(tmp_path / "bob.key")
        self.keys = {n: load_private_key(tmp_path / f"{n}.key") for n in ("alice", "bob", "eve")}
        self.rig = Rig(authority=Authority.REMOTE)
        wall = lambda: NOW_S  # noqa: E731
        operators = Operators(
            [
                OperatorKey(name="alice", key=self.alice, commands=None),
                OperatorKey(name="bob", key=self.bob, commands=frozenset({"hold"})),
            ]
        )
        self.gate = CommandGate(
            replay=MemoryReplayStore(),
            wall=wall,
            unit=UNIT,
            operators=operators,
            allow_unsigned=False,
        )
        self.dispatcher = CommandDispatcher(
            controller=self.rig.controller, on_rebirth=lambda: None, wall=wall
        )
        self._n = 0

    def document(self, by: str, **fields: Any) -> dict[str, Any]:
        self._n += 1
        doc = {"id": f"s-{self._n}", "ts": NOW_MS, "exp": NOW_MS + 60_000, "by": by, "args": {}}
        return doc | fields

    async def send(self, name: str, doc: dict[str, Any]) -> CommandResult:
        payload = json.dumps(doc).encode()
        return await handle_command(
            gate=self.gate, dispatcher=self.dispatcher, name=name, payload=payload, retained=False
        )


@pytest.fixture
def eve_key(tmp_path: Path) -> None:
    new_private_key(tmp_path / "eve.key")


@pytest.mark.usefixtures("eve_key")
async def test_a_signed_command_acts_and_is_journaled_under_the_verified_name(
    tmp_path: Path,
) -> None:
    remote = SignedRemote(tmp_path)
    await remote.rig.scan()
    doc = sign(remote.keys["alice"], unit=UNIT, name="reset", document=remote.document("alice"))
    result = await remote.send("reset", doc)
    assert result.ok, result.error
    assert result.by == "alice"
    await remote.rig.scan()
    assert remote.rig.controller.machine.state is State.IDLE


@pytest.mark.usefixtures("eve_key")
async def test_anything_not_properly_signed_is_refused_with_its_reason(tmp_path: Path) -> None:
    remote = SignedRemote(tmp_path)
    await remote.rig.scan()
    alice, bob, eve = remote.keys["alice"], remote.keys["bob"], remote.keys["eve"]
    cases = {
        "unsigned": remote.document("alice"),
        "no operator key named 'eve'": sign(
            eve, unit=UNIT, name="reset", document=remote.document("eve")
        ),
        "does not verify with alice's key": sign(
            eve, unit=UNIT, name="reset", document=remote.document("alice")
        ),
        "signed for another unit": sign(
            alice, unit="unit-other", name="reset", document=remote.document("alice")
        ),
        "bob may not give 'reset'": sign(
            bob, unit=UNIT, name="reset", document=remote.document("bob")
        ),
    }
    # Signed for `hold`, sent as `reset`; and signed, then its args altered.
    cases["or command"] = sign(alice, unit=UNIT, name="hold", document=remote.document("alice"))
    altered = sign(alice, unit=UNIT, name="reset", document=remote.document("alice"))
    cases["altered"] = altered | {"exp": NOW_MS + 59_000}
    for why, doc in cases.items():
        result = await remote.send("reset", doc)
        assert not result.ok, why
        assert why in str(result.error), (why, result.error)
        assert remote.rig.controller.machine.state is State.STOPPED
        # Only a signature that held proves who sent it: bob's, refused for its command.
        proven = why == "bob may not give 'reset'"
        assert result.by == ("bob" if proven else f"{doc['by']} (unauthenticated)"), why
