"""`unit-console` as a process against a stub daemon: on a real pseudo-terminal, piped, and alone.

Every wait is on output or exit and bounded; each console process and stub socket is gone at the
end of its test, passed or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.console.stub_daemon import PIN, UNIT, StubDaemon
from tests.console.terminal_pty import Terminal, on_terminal
from unit_controller.console.client import MAX_RESPONSE_BYTES, ConnectionLost, ControlClient
from unit_controller.console.repl import DEFAULT_SOCKET, default_socket

ROOT = Path(__file__).resolve().parents[2]
PROMPT = f"{UNIT}> "
WAIT_S = 15.0
CONSOLE = [sys.executable, "-m", "unit_controller.console.repl"]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for sockets (AF_UNIX paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="uc-console-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "RUNTIME_DIRECTORY")}
    return env | {"TERM": "dumb", "PYTHONUNBUFFERED": "1"} | extra


# --- on a pseudo-terminal ---------------------------------------------------------------------
def _on_terminal(sock: Path) -> contextlib.AbstractAsyncContextManager[Terminal]:
    return on_terminal(sock, env=_env())


async def _exit_code(terminal: Terminal) -> int:
    return await terminal.exit_code()


async def _command(terminal: Terminal, line: str) -> str:
    return await terminal.command(line, prompt=PROMPT)


async def test_technician_session_on_a_dumb_terminal(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock, pin=PIN) as stub, _on_terminal(sock) as term:
        banner = await term.expect(PROMPT)
        assert f"{UNIT} at lab, controller 0.1.0, STOPPED" in banner
        assert "type help" in banner

        answer = await _command(term, "status")
        assert "state   STOPPED (2)" in answer
        assert "alarms  1 active" in answer

        answer = await _command(term, "jog pump P-203")
        assert answer == "jog pump needs a pump tag and a volume: jog pump P-203 5\n"

        answer = await _command(term, "frobnicate now")
        assert answer == "unknown command 'frobnicate'; type help for the list\n"

        term.type("manual on\n")
        await term.expect("PIN: ")
        term.type(PIN + "\n")
        answer = await term.expect(PROMPT)
        assert PIN not in answer  # not echoed
        assert "unlocked" in answer
        assert "manual mode ON" in answer
        assert stub.ops[-4:] == ["manual", "status", "unlock", "manual"]  # status: not locked out

        answer = await _command(term, "watch")
        assert "watching; press Enter to stop" in answer
        assert "phase coprecipitate" in answer
        assert "COMPLETING -> COMPLETE" in answer
        assert answer.rstrip().endswith("the unit is COMPLETE")
        assert stub.ops[-2:] == ["watch", "unwatch"]

        term.type("quit\n")
        assert await _exit_code(term) == 0
        assert "\x1b" not in term.output  # TERM=dumb: no colour, no cursor tricks
        assert all(len(line) <= 80 for line in term.output.splitlines())
        assert stub.requests[0]["op"] == "identify"
        assert stub.requests[0]["args"]["client"] == "console"


async def test_quitting_at_a_terminal_with_a_jog_running_says_what_it_stops_without_error(
    sock_dir: Path,
) -> None:
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock), _on_terminal(sock) as term:
        await term.expect(PROMPT)
        await _command(term, "manual on")
        await _command(term, "jog pump P-203 5")
        term.type("quit\n")
        assert await _exit_code(term) == 0
        said = " ".join(term.output.split())
        assert "leaving ends manual mode, which stops jog P-203 at 0.0 of 5 mL" in said
        assert "error:" not in said


async def test_enter_and_ctrl_c_stop_a_watch_and_ctrl_d_leaves(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    async with (
        StubDaemon(path=sock, stream_every_s=30.0) as stub,
        _on_terminal(sock) as term,
    ):
        await term.expect(PROMPT)
        term.type("watch\n")
        await term.expect("press Enter to stop")
        term.type("\n")
        await term.expect(PROMPT)

        # A command typed while watching stops the watch and is carried out, never dropped.
        term.type("watch\n")
        await term.expect("press Enter to stop")
        term.type("abort\n")
        answer = await term.expect("ABORTED")
        await term.expect(PROMPT)
        assert stub.ops[-3:] == ["watch", "unwatch", "abort"], answer

        term.type("watch\n")
        await term.expect("press Enter to stop")
        term.type("\x03")  # Ctrl-C
        answer = await term.expect(PROMPT)
        assert "interrupted" in answer
        assert stub.ops.count("unwatch") == 3

        term.type("stat\x03")  # Ctrl-C at the prompt: the half line is dropped, a new prompt
        await term.expect(PROMPT)
        answer = await _command(term, "status")
        assert "state   ABORTED" in answer  # the abort typed during the watch

        term.type("\x04")  # Ctrl-D
        assert await _exit_code(term) == 0
        assert "Traceback" not in term.output


async def test_wrong_pin_is_refused_in_one_line(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock, pin=PIN) as stub, _on_terminal(sock) as term:
        await term.expect(PROMPT)
        term.type("cal ph mid 7\n")
        await term.expect("PIN: ")
        term.type("9999\n")
        answer = await term.expect(PROMPT)
        assert "error: wrong PIN" in answer
        assert "9999" not in answer
        assert "enter it with `pin` first" not in answer  # the PIN was given, just wrong
        # the guided calibration asks for the PIN first, before a reading is watched
        assert stub.ops[-1] == "unlock"
        assert "cal_ph" not in stub.ops
        # A command that asks for the PIN on the way: one refusal, then what was not done.
        term.type("manual on\n")
        await term.expect("PIN: ")
        term.type("9999\n")
        answer = await term.expect(PROMPT)
        assert "error: wrong PIN" in answer
        assert "manual not carried out: no PIN accepted" in answer
        assert "enter it with `pin` first" not in answer
        # Locked out: said at once, with no PIN prompt that no PIN could answer.
        stub.pin_locked_s = 29.2
        term.type("pin\n")
        answer = await term.expect(PROMPT)
        assert "the PIN is locked out for 30 s" in answer
        assert "PIN: " not in answer
        term.type("quit\n")
        assert await _exit_code(term) == 0


# --- piped ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


async def _piped(script: str, *args: str, env: dict[str, str] | None = None) -> Run:
    proc = await asyncio.create_subprocess_exec(
        *CONSOLE, *args,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=ROOT, env=env or _env(),
    )  # fmt: skip
    try:
        async with asyncio.timeout(WAIT_S):
            out, err = await proc.communicate(script.encode())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def test_piped_script_runs_every_line_and_exits_2_on_a_bad_one(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock) as stub:
        run = await _piped("status\nbogus\nquit\nstatus\n", "--socket", str(sock))
    assert run.code == 2
    assert run.out.startswith("state   STOPPED (2)\n")  # no banner, no prompt
    assert "unknown command 'bogus'; type help for the list\n" in run.out
    assert PROMPT not in run.out
    assert stub.ops == ["identify", "status"]  # quit ended it: the last status never went
    assert run.err == ""


async def test_a_huge_piped_line_is_refused_as_too_long_and_the_next_runs(
    sock_dir: Path,
) -> None:
    # Megabytes with no newline: kept to a bound, not re-split on every read (quadratic).
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock) as stub:
        run = await _piped("a" * 4_000_000 + "\nstatus\n", "--socket", str(sock))
    assert run.code == 2
    assert "line too long: over 1000 characters (the most a line may be)" in run.out
    assert "state   STOPPED (2)" in run.out
    assert stub.ops == ["identify", "status"]


async def test_echo_status_into_the_console_exits_0_at_end_of_input(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock):
        run = await _piped("status\n", "--socket", str(sock))
    assert run.code == 0, run
    assert "state   STOPPED (2)" in run.out
    assert "\x1b" not in run.out


async def test_piped_commands_send_what_the_protocol_says(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    script = "\n".join(
        [
            "# morning checks",
            "alarms",
            "ack all",
            "ack level_high_high",
            "reset",
            "recipes",
            "start Leach",
            "hold",
            "unhold",
            "log 5",
            "batch",
            "watch",
            "",
        ]
    )
    async with StubDaemon(path=sock) as stub:
        run = await _piped(script, "--socket", str(sock))
    assert run.code == 0, run
    identify = stub.requests[0]
    assert identify["op"] == "identify"
    assert identify["args"]["client"] == "console"
    assert identify["args"]["user"]
    assert stub.ops[1:] == [
        "alarms", "ack", "ack", "reset_alarms", "status", "reset", "recipes", "start", "hold",
        "unhold", "log", "batch", "watch", "unwatch",
    ]  # fmt: skip
    assert stub.args_of("ack") == [{"alarm": None}, {"alarm": "level_high_high"}]
    assert stub.args_of("reset_alarms") == [{"alarm": None}]
    assert stub.args_of("start") == [{"recipe": "leach"}]
    assert stub.args_of("log") == [{"n": 5}]
    assert "reset 1 alarm; reset accepted: now RESETTING\n" in run.out
    assert "HIGH  level_high_high (LSHH-101)  active, not acknowledged, latching" in run.out
    assert "final COMPLETE" in run.out
    assert run.out.rstrip().endswith("the unit is COMPLETE")


async def test_piped_pin_on_the_next_line_unlocks_manual(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock, pin=PIN) as stub:
        locked = await _piped("manual on\n", "--socket", str(sock))
        unlocked = await _piped(f"pin\n{PIN}\nmanual on\njog pump p-203 5\n", "--socket", str(sock))
    assert locked.code == 2
    assert locked.out == "error: manual needs the PIN: enter it with `pin` first\n"
    assert "manual mode ON" in unlocked.out
    assert "jog P-203: 5.0 mL at 20.0 mL/min, about 15.0 s" in unlocked.out
    assert PIN not in unlocked.out
    assert {"pump": "P-203", "ml": 5.0} in stub.args_of("jog_pump")
    # The script ends while its jog runs: the session's end stops it, and the console says so.
    assert unlocked.code == 2, unlocked
    assert " ".join(unlocked.out.split()).endswith(
        "error: the session ends here and its manual mode with it, which stops jog P-203 at 0.0 "
        "of 5 mL; to let it finish, wait before the end (watch <seconds>)"
    ), unlocked.out


async def test_a_script_whose_controller_does_not_answer_at_the_end_says_it_could_not_check(
    sock_dir: Path,
) -> None:
    # It asks for END_CHECK_TIMEOUT_S (2 s), not a request's usual 30.
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock, ignore_on="status"):
        run = await _piped("manual on\njog pump P-203 5\n", "--socket", str(sock))
    assert run.code == 2, run
    assert "could not ask the controller what ending the session stops" in " ".join(run.out.split())


async def test_a_script_that_turns_manual_off_itself_ends_without_a_word(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock) as stub:
        run = await _piped("manual on\njog pump P-203 5\nmanual off\n", "--socket", str(sock))
        other = await _piped("jog pump P-203 5\n", "--socket", str(sock))  # not its manual mode
    assert run.code == 0, run
    assert run.out.rstrip().endswith("manual mode off")
    assert other.code == 0, other
    assert stub.args_of("status") == []


async def test_manual_commands_refused_during_a_batch_say_why(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock, state="EXECUTE"):
        run = await _piped("heater 50 30\nstatus\n", "--socket", str(sock))
    assert run.code == 2
    assert run.out.startswith("error: heater is refused while a batch is executing\n")
    assert "state   EXECUTE (6)" in run.out


async def test_a_lost_connection_ends_the_session_with_one_line(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock, drop_on="alarms"):
        run = await _piped("status\nalarms\nstatus\n", "--socket", str(sock))
    assert run.code == 1
    assert "state   STOPPED" in run.out
    assert run.err == f"lost the connection to the controller at {sock}\n"


async def test_login_shell_style_command_and_runtime_directory_default(sock_dir: Path) -> None:
    async with StubDaemon(path=sock_dir / "control.sock") as stub:
        run = await _piped("", "-c", "status; recipes", env=_env(RUNTIME_DIRECTORY=str(sock_dir)))
    assert run.code == 0, run
    assert "state   STOPPED" in run.out
    assert "leach" in run.out
    assert stub.ops == ["identify", "status", "recipes"]


# --- no daemon --------------------------------------------------------------------------------
async def test_no_daemon_exits_1_with_a_clear_line(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    run = await _piped("status\n", "--socket", str(sock))
    assert run.code == 1
    assert run.err == (
        f"cannot reach the controller at {sock}: No such file or directory "
        "— is unit-controller running?\n"
    )
    assert run.out == ""


async def test_stale_socket_exits_1_with_connection_refused(sock_dir: Path) -> None:
    sock = sock_dir / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(sock))  # a socket file that nobody listens on, as after a crash
    run = await _piped("status\n", "--socket", str(sock))
    assert run.code == 1
    assert "Connection refused — is unit-controller running?" in run.err


def _sigint_as_from_a_terminal() -> None:
    # A suite started in the background by a shell without job control (`./scripts/test &`)
    # runs with SIGINT ignored (POSIX), and a child keeps that: its ^C would do nothing, as
    # it should for a background job. A script typed at a terminal has SIGINT at its default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def test_ctrl_c_ends_a_piped_script(sock_dir: Path) -> None:
    # A script interrupted by ^C stops there: it does not go on with the next lines.
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock):
        proc = await asyncio.create_subprocess_exec(
            *CONSOLE, "--socket", str(sock),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=_env(),
            preexec_fn=_sigint_as_from_a_terminal,
        )  # fmt: skip
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(b"status\n")  # and the input stays open
            async with asyncio.timeout(WAIT_S):
                while b"alarms" not in await proc.stdout.readline():
                    pass
                proc.send_signal(signal.SIGINT)
                assert await proc.wait() == 130
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_default_socket_follows_systemd_then_run_then_a_daemon_run_by_hand(
    sock_dir: Path,
) -> None:
    assert default_socket({"RUNTIME_DIRECTORY": "/run/a:/run/b"}) == Path("/run/a/control.sock")
    assert default_socket({}) == DEFAULT_SOCKET
    if DEFAULT_SOCKET.exists():
        pytest.skip(f"{DEFAULT_SOCKET} exists here: it always wins")
    (sock_dir / "unit-controller").mkdir()
    (sock_dir / "unit-controller" / "control.sock").touch()
    found = default_socket({"XDG_RUNTIME_DIR": str(sock_dir)})
    assert found == sock_dir / "unit-controller" / "control.sock"


async def test_unreadable_socket_says_so(sock_dir: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may use any socket")
    sock = sock_dir / "control.sock"
    async with StubDaemon(path=sock):
        sock.chmod(0)
        run = await _piped("status\n", "--socket", str(sock))
    assert run.code == 1
    assert "Permission denied — may this user use it" in run.err


# --- the client against a controller that misbehaves ------------------------------------------
async def test_client_skips_lines_not_meant_for_it_and_reports_a_lost_link(
    sock_dir: Path,
) -> None:
    sock = sock_dir / "odd.sock"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"hello": {"unit": "odd", "state": "STOPPED"}}\n')
        request = json.loads(await reader.readline())
        writer.write(b"not json\n[1, 2]\n")
        writer.write(b'{"id": 999, "ok": true, "result": {}}\n')  # nobody asked
        writer.write(b'{"id": %d, "stream": "status", "data": {}}\n' % request["id"])
        writer.write(b'{"id": %d, "ok": "yes", "result": {}}\n' % request["id"])
        await reader.readline()
        writer.write(b"x" * (MAX_RESPONSE_BYTES + 10) + b"\n")  # over what a client reads
        await writer.drain()
        await reader.read()

    server = await asyncio.start_unix_server(serve, path=str(sock))
    client = ControlClient()
    try:
        hello = await client.connect(sock)
        assert hello["unit"] == "odd"
        response = await client.request("status", timeout_s=WAIT_S)
        assert not response.ok
        assert response.error == "the controller sent a malformed response"
        with pytest.raises(
            ConnectionLost, match=f"lost the connection to the controller at {sock}"
        ):
            await client.request("status", timeout_s=WAIT_S)
        assert not client.connected
    finally:
        await client.close()
        server.close()


async def test_reset_at_the_console_says_which_latch_stays_held(tmp_path: Path) -> None:
    # Found by a reviewer: `reset` printed only the result's first line, so the latch its
    # unreadable RTD holds was never mentioned at the console.
    sock = tmp_path / "c.sock"
    async with StubDaemon(path=sock) as stub:
        stub.held = ["temperature_high_high (TT-101)"]
        run = await _piped("reset\n", "--socket", str(sock))
    assert run.code == 0, run
    assert "reset 1 alarm" in run.out
    assert "still latched, its input unreadable: temperature_high_high (TT-101)" in run.out
