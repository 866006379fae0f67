"""Hostile inputs, surface by surface: the control socket, MQTT commands, configs, recipes and
serial replies. Each input is judged: accepted, refused (with a reason), or a crash; a refusal
that changed the unit's state is counted too. Used by the suite (a few hundred inputs) and by
`scripts/fuzz` (10^5 and more)."""

from __future__ import annotations

import asyncio
import json
import random
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from hal.schema import ValidationError
from hal.serial import ezo_link, ezo_pump, ezo_rtd
from tests.rig import Rig
from unit_controller.authority import Authority
from unit_controller.config import DEFAULT_CONFIG, UnitConfig
from unit_controller.control_socket.connection import Connection
from unit_controller.control_socket.ops import Session
from unit_controller.errors import RecipeError
from unit_controller.mqtt.commands import REMOTE_COMMANDS, CommandGate
from unit_controller.mqtt.dispatch import CommandDispatcher, handle_command
from unit_controller.mqtt.replay import MemoryReplayStore
from unit_controller.recipes.loader import RECIPES_DIR, parse_recipe

NOW_S = 1_767_225_600.0
OPS = (
    "status", "alarms", "recipes", "log", "batch", "identify", "unlock", "ack", "reset_alarms",
    "reset", "start", "stop", "hold", "unhold", "abort", "clear", "complete", "confirm",
    "manual", "unitmode", "authority", "jog_pump", "heater", "drain", "cal_ph", "cal_pump",
    "nosuch",
)  # fmt: skip
ODD_VALUES: tuple[object, ...] = (
    None, True, -1, 0, 1.5, 1e308, -1e308, 2**70, "", "x" * 300, "../../etc/passwd", [], {},
    [[[[]]]], {"a": {"b": {}}}, "P-201", "smoke", "remote", "manual", "\u0000", "é" * 40,
)  # fmt: skip
ODD_TOML = (
    "-1", "0", "1e309", "nan", "inf", '"x"', "[]", "{}", "true", '"' + "a" * 500 + '"',
    "99999999999999999999999", '"../x"', "1970-01-01", "[[1]]", '{ a = 1 }', "-0.0",
)  # fmt: skip


@dataclass
class Tally:
    """What one surface saw."""

    tried: int = 0
    accepted: int = 0
    refused: int = 0
    crashed: int = 0
    changed_by_refusal: int = 0
    crashes: Counter[str] = field(default_factory=Counter)

    def crash(self, exc: BaseException) -> None:
        self.crashed += 1
        self.crashes[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1


# --- generators ----------------------------------------------------------------------------


def odd_json(rng: random.Random, depth: int = 0) -> object:
    """A JSON-ish value: odd scalars, nested containers, sometimes very deep."""
    roll = rng.random()
    if roll < 0.5 or depth > 3:
        return rng.choice(ODD_VALUES)
    if roll < 0.75:
        return [odd_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(("id", "op", "args", "x", "")): odd_json(rng, depth + 1) for _ in range(3)}


def raw_bytes(rng: random.Random) -> bytes:
    """Bytes of the kinds a hostile client sends: garbage, deep nesting, huge numbers."""
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randrange(200))
    if kind == 1:
        n = rng.randrange(1, 3000)
        return b"[" * n + b"]" * n
    if kind == 2:
        return b'{"id": 1, "op": "status", "args": {"n": ' + b"9" * rng.randrange(1, 6000) + b"}}"
    if kind == 3:
        return json.dumps(odd_json(rng)).encode()
    return b'{"op": "status", "op": "abort"}'


def mutate_text(rng: random.Random, text: str) -> str:
    """`text` with one to three edits: a line dropped or doubled, a value replaced, bytes."""
    lines = text.splitlines()
    for _ in range(rng.randrange(1, 4)):
        if not lines:
            break
        i = rng.randrange(len(lines))
        edit = rng.randrange(5)
        if edit == 0:
            del lines[i]
        elif edit == 1:
            lines.insert(i, lines[i])
        elif edit == 2 and "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {rng.choice(ODD_TOML)}"
        elif edit == 3:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        else:
            lines[i] += rng.choice(("\x00", "é", "]", "[", '"', " = 1", "\\"))
    return "\n".join(lines)


# --- surfaces ------------------------------------------------------------------------------


async def _idle_rig() -> Rig:
    rig = Rig(authority=Authority.REMOTE)
    await rig.scan()
    await rig.controller.command("reset", source="fuzz")
    await rig.scan()
    return rig


def _state_of(rig: Rig) -> tuple[object, ...]:
    controller = rig.controller
    return (
        controller.machine.state,
        controller.recipe is not None,
        controller.manual,
        controller.unit_mode,
        controller.authority,
    )


async def fuzz_mqtt(rng: random.Random, count: int, tally: Tally) -> None:
    """Commands on `cmd/<name>`: near-valid envelopes with odd fields, and raw bytes."""
    rig = await _idle_rig()
    for _ in range(count):
        name = rng.choice((*sorted(REMOTE_COMMANDS), "jog", "confirm", "", "x" * 70))
        now_ms = int(NOW_S * 1000)
        doc: dict[str, object] = {
            "id": f"f-{rng.getrandbits(48)}",
            "ts": now_ms,
            "exp": now_ms + 60_000,
            "by": "fuzz",
            "args": {"recipe": "smoke"} if name == "start" else {},
        }
        if rng.random() < 0.7:
            doc[rng.choice(("id", "ts", "exp", "by", "args", "extra"))] = odd_json(rng)
        payload = raw_bytes(rng) if rng.random() < 0.3 else json.dumps(doc).encode()
        wall = lambda: NOW_S  # noqa: E731 -- the fleet's clock, frozen
        gate = CommandGate(replay=MemoryReplayStore(), wall=wall)
        dispatcher = CommandDispatcher(controller=rig.controller, on_rebirth=lambda: None)
        before = _state_of(rig)
        tally.tried += 1
        try:
            result = await handle_command(
                gate=gate, dispatcher=dispatcher, name=name, payload=payload, retained=False
            )
        except Exception as exc:
            tally.crash(exc)
            continue
        if result.ok:
            tally.accepted += 1
            rig = await _idle_rig()  # start afresh: an accepted command may change the state
        elif result.error and "internal error" in result.error:
            tally.crash(RuntimeError(result.error))
        else:
            tally.refused += 1
            if _state_of(rig) != before:
                tally.changed_by_refusal += 1


async def fuzz_socket(rng: random.Random, count: int, tally: Tally) -> None:
    """Control-socket lines as the server reads them, from the console and from the CLI."""
    rig = await _idle_rig()

    ops = rig.operations()
    for _ in range(count):
        if rng.random() < 0.4:
            line = raw_bytes(rng)
        else:
            request: dict[str, object] = {"id": rng.randrange(100), "op": rng.choice(OPS)}
            if rng.random() < 0.6:
                request["args"] = {
                    rng.choice(("recipe", "mode", "on", "pump", "ml", "pin", "n", "x")): odd_json(
                        rng
                    )
                }
            line = json.dumps(request).encode()
        client = rng.choice(("console", "cli"))
        connection = Connection(
            reader=None,  # type: ignore[arg-type]  # _answer reads nothing itself
            writer=None,  # type: ignore[arg-type]
            ops=ops,
            session=Session(user="fuzz", client=client),
            idle_timeout_s=60.0,
        )
        before = _state_of(rig)
        tally.tried += 1
        answering = asyncio.ensure_future(connection._answer(line))
        while not answering.done():
            # Ops wait for the scan to take their request: the unit scans meanwhile.
            await asyncio.sleep(0)
            if not answering.done():
                await rig.scan()
        try:
            response = answering.result()
        except Exception as exc:
            tally.crash(exc)
            continue
        if response is None or response.ok:
            tally.accepted += 1
            rig = await _idle_rig()
            ops = rig.operations()
        elif response.code is not None and response.code.value == "internal":
            tally.crash(RuntimeError(response.error or "internal"))
        else:
            tally.refused += 1
            if _state_of(rig) != before:
                tally.changed_by_refusal += 1


EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"


def _judge_document(
    tally: Tally,
    text: str,
    load: Callable[[dict[str, object]], object],
    refusals: tuple[type[Exception], ...],
) -> None:
    refused: tuple[type[Exception], ...] = (tomllib.TOMLDecodeError, ValidationError, *refusals)
    tally.tried += 1
    try:
        load(tomllib.loads(text))
    except refused:
        tally.refused += 1
    except Exception as exc:
        tally.crash(exc)
    else:
        tally.accepted += 1


async def fuzz_configs(rng: random.Random, count: int, tally: Tally) -> None:
    """Configs: the shipped examples with a few lines broken."""
    paths = [DEFAULT_CONFIG, *sorted(EXAMPLES.glob("*.toml"))]
    sources = [p.read_text(encoding="utf-8") for p in paths]
    for _ in range(count):
        text = mutate_text(rng, rng.choice(sources))
        _judge_document(tally, text, UnitConfig.model_validate, (ValueError,))


async def fuzz_recipes(rng: random.Random, count: int, tally: Tally) -> None:
    """Recipes: the shipped ones with a few lines broken."""
    sources = [p.read_text(encoding="utf-8") for p in sorted(RECIPES_DIR.glob("*.toml"))]
    for _ in range(count):
        text = mutate_text(rng, rng.choice(sources))
        _judge_document(
            tally, text, lambda doc: parse_recipe(doc, source="fuzz"), (RecipeError, ValueError)
        )


_EZO_REPLIES = (b"*OK", b"*ER", b"?Status,P,3.74", b"7.012", b"*DONE,5.00", b"?TV,12.5", b"25.1")


async def fuzz_serial(rng: random.Random, count: int, tally: Tally) -> None:
    """EZO reply lines: garbage bytes, truncated and spliced replies, odd numbers."""
    parsers: tuple[Callable[[list[str]], object], ...] = (
        lambda lines: ezo_rtd._reading(lines, tag="TT-101", command="R"),
        lambda lines: ezo_link._parse_status(lines, tag="AT-101"),
        lambda lines: ezo_pump._number_after(lines, "?TV,", tag="P-201", command="TV,?"),
    )
    for _ in range(count):
        raws = []
        for _ in range(rng.randrange(1, 4)):
            raw = rng.choice(_EZO_REPLIES)
            if rng.random() < 0.6:
                cut = rng.randrange(len(raw) + 1)
                raw = raw[:cut] + rng.randbytes(rng.randrange(4)) + raw[cut:]
            raws.append(raw)
        tally.tried += 1
        try:
            lines = [item for item in map(ezo_link._decode, raws) if isinstance(item, str)]
            rng.choice(parsers)(lines)
        except ezo_link.EzoLinkError:
            tally.refused += 1
        except Exception as exc:
            tally.crash(exc)
        else:
            tally.accepted += 1


SURFACES: dict[str, Callable[[random.Random, int, Tally], Awaitable[None]]] = {
    "control_socket": fuzz_socket,
    "mqtt_commands": fuzz_mqtt,
    "configs": fuzz_configs,
    "recipes": fuzz_recipes,
    "serial_replies": fuzz_serial,
}


async def fuzz_all(*, seed: int, per_surface: int) -> dict[str, Tally]:
    """Every surface, `per_surface` inputs each, from one seed."""
    tallies: dict[str, Tally] = {}
    for name, surface in SURFACES.items():
        tally = Tally()
        await surface(random.Random(f"{seed}:{name}"), per_surface, tally)
        tallies[name] = tally
    return tallies
