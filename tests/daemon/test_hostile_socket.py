"""The control socket under attack: hostile lines, PIN guessing from many sessions, too many
connections, and sessions left idle. Each costs the attacker; none costs the unit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.daemon.harness import WAIT_S, Control, Daemon
from unit_controller.config import DEFAULT_CONFIG
from unit_controller.console.client import ControlClient, Unreachable
from unit_controller.pin import hash_pin

PIN = "20261205"


def _config(tmp_path: Path, **console: object) -> Path:
    settings = "".join(f"{key} = {json.dumps(value)}\n" for key, value in console.items())
    path = tmp_path / "unit.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    path.write_text(text.replace("[console]\n", f"[console]\n{settings}", 1), encoding="utf-8")
    return path


async def test_hostile_lines_get_an_error_and_the_session_goes_on(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path, args=("--config", str(_config(tmp_path))))
    await daemon.start()
    try:
        async with Control(daemon.socket, client="console") as control:
            hostile = {
                b"[" * 1000 + b"]" * 1000: "nested 1000 levels deep",
                b'{"id": 1, "op": "status", "args": {"x": ' + b"9" * 5000 + b"}}": "number",
                b'{"id": 1, "op": "status", "id": 2}': "more than once",
                b'{"id": 1, "op": "status", "args": {"x": NaN}}': "NaN",
                b'{"op": "\xff"}': "not UTF-8",
                b'{"op": "status", "args": {"x": 1e999}}': "too large",
                b"[1, 2]": "JSON object",
            }
            for line, why in hostile.items():
                answer = await control.send_line(line + b"\n")
                assert answer["ok"] is False, line[:40]
                assert answer["code"] == "bad_request"
                assert why in answer["error"], (line[:40], answer["error"])
            assert (await control.status())["state"] is not None  # the same session goes on
    finally:
        assert daemon.terminate() == 0


async def test_fifty_parallel_wrong_pins_lock_the_pin_out_and_raise_an_alarm(
    tmp_path: Path,
) -> None:
    config = _config(
        tmp_path,
        pin_hash=hash_pin(PIN, iterations=1000),
        socket_max_connections=64,
        socket_idle_timeout_s=10.0,
    )
    daemon = Daemon(tmp_path, args=("--config", str(config)))
    await daemon.start()
    try:
        idle = Control(daemon.socket)
        await idle.__aenter__()  # sends nothing from here on

        async def guess(n: int) -> str:
            async with Control(daemon.socket) as control:
                answer = await control.request("unlock", pin=f"{n:04d}")
                assert answer["ok"] is False
                return str(answer["error"])

        errors = await asyncio.wait_for(asyncio.gather(*(guess(n) for n in range(50))), WAIT_S)
        checked = [e for e in errors if e == "wrong PIN"]
        locked = [e for e in errors if "locked out" in e]
        assert len(checked) == 4, errors  # the fifth began the lockout
        assert len(locked) == 46, errors
        async with Control(daemon.socket, client="console") as control:
            right = await control.request("unlock", pin=PIN)
            assert right["ok"] is False  # even the right PIN, while locked out
            assert "locked out" in right["error"]
            # A guarded command says so outright, not "give the PIN": a console would ask for
            # one and take the tech's next line for it.
            manual = await control.request("manual", on=True)
            assert (manual["ok"], manual["code"]) == (False, "refused")
            assert "the PIN is locked out for" in manual["error"]
            alarms = (await control.request("alarms"))["result"]["alarms"]
            alarm = next(a for a in alarms if a["id"] == "pin_locked_out")
            assert "5 wrong console PINs in a row" in alarm["message"]

            # The idle session is closed with a reason; an active one is not.
            line = await asyncio.wait_for(idle.reader.readline(), WAIT_S)
            assert "nothing sent for 10 s" in json.loads(line)["error"]
            assert await asyncio.wait_for(idle.reader.readline(), WAIT_S) == b""
            assert (await control.status())["state"] is not None
        await idle.__aexit__()
    finally:
        assert daemon.terminate() == 0


async def test_connections_beyond_the_cap_are_refused_with_a_reason(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path, args=("--config", str(_config(tmp_path, socket_max_connections=3))))
    await daemon.start()
    try:
        held = [Control(daemon.socket) for _ in range(3)]
        for control in held:
            await control.__aenter__()
        reader, writer = await asyncio.open_unix_connection(str(daemon.socket))
        refused = json.loads(await asyncio.wait_for(reader.readline(), WAIT_S))
        assert refused["ok"] is False
        assert "too many control sessions (3)" in refused["error"]
        assert await asyncio.wait_for(reader.readline(), WAIT_S) == b""
        writer.close()
        # The console passes the reason on: the controller runs, it has no room just now.
        with pytest.raises(
            Unreachable, match=r"refused a session: too many control sessions \(3\)"
        ) as info:
            await ControlClient().connect(daemon.socket)
        assert info.value.retry
        await held[0].__aexit__()
        async with Control(daemon.socket) as control:  # room again once one left
            assert (await control.status())["state"] is not None
        for control in held[1:]:
            await control.__aexit__()
    finally:
        assert daemon.terminate() == 0
