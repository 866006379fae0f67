"""A console that tells: prompts and alarms at an idle prompt (above what is being typed), the log
one line an entry with any entry whole, reset from ABORTED explained, calibration outcomes short.

`unit-console` processes on real pseudo-terminals (and piped) against the stub daemon; every wait
is on output and bounded.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import tempfile
import termios
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.console.stub_daemon import PIN, UNIT, StubDaemon
from tests.console.terminal_pty import (
    CONSOLE,
    ROOT,
    WAIT_S,
    Terminal,
    console_env,
    on_terminal,
)

PROMPT = f"{UNIT}> "
RAISED = {
    "ts": 1_700_000_000_000,
    "kind": "alarm",
    "text": "level_high_high (LSHH-101) raised: high-high level switch wet: inflows stopped",
    "alarm_id": "level_high_high",
    "tag": "LSHH-101",
    "transition": "raised",
    "priority": "high",
    "state": "unack_active",
    "first_out": True,
    "message": "high-high level switch wet: inflows stopped",
}
CLEARED = RAISED | {"transition": "reset", "state": "normal"}
PROMPTED = {
    "ts": 1_700_000_001_000,
    "kind": "prompt",
    "text": "waiting for confirmation: Black mass charged",
    "prompt": "Black mass charged",
}


@pytest.fixture
def sock() -> Iterator[Path]:
    """A socket path short enough for AF_UNIX."""
    path = Path(tempfile.mkdtemp(prefix="uc-tells-", dir="/tmp"))
    yield path / "control.sock"
    shutil.rmtree(path, ignore_errors=True)


async def _announcing(stub: StubDaemon) -> None:
    """Until the console's announcer watches (it does before the first prompt)."""
    async with asyncio.timeout(WAIT_S):
        await stub.announcing.wait()


async def _piped(script: str, sock: Path) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        *CONSOLE, "--socket", str(sock),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=ROOT, env=console_env(),
    )  # fmt: skip
    try:
        async with asyncio.timeout(WAIT_S):
            out, err = await proc.communicate(script.encode())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return subprocess.CompletedProcess(CONSOLE, proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def stub(sock: Path) -> AsyncIterator[StubDaemon]:
    async with StubDaemon(path=sock, pin=PIN) as daemon:
        yield daemon


async def test_an_alarm_and_a_prompt_appear_above_what_the_tech_is_typing(
    stub: StubDaemon, sock: Path
) -> None:
    async with on_terminal(sock) as term:
        await term.expect(PROMPT)
        await _announcing(stub)
        term.type("sta")
        await term.expect("sta")  # echoed by the console itself
        stub.announce(RAISED)
        said = await term.expect(f"{PROMPT}sta")
        assert "ALARM   HIGH level_high_high (LSHH-101): high-high level switch wet:" in said
        assert "\r" + " " * len(PROMPT + "sta") + "\r" in said  # the half line was taken away
        stub.announce(PROMPTED)
        said = await term.expect(f"{PROMPT}sta")
        assert "PROMPT  Black mass charged: type confirm once done" in said
        stub.announce(CLEARED)
        assert "level_high_high (LSHH-101) reset: cleared" in await term.expect(f"{PROMPT}sta")
        term.type("tus\n")  # the line typed around the announcements is whole
        assert "state   STOPPED (2)" in await term.expect(PROMPT)
        term.type("quit\n")
        assert await term.exit_code() == 0
    assert "\a" not in term.output  # TERM=dumb: no bell
    assert "\x1b" not in term.output


async def test_a_capable_terminal_rings_for_an_alarm_and_a_prompt_not_for_a_clear(
    stub: StubDaemon, sock: Path
) -> None:
    async with on_terminal(sock, env=console_env(TERM="vt100")) as term:
        await term.expect(PROMPT)
        await _announcing(stub)
        for event in (RAISED, PROMPTED, CLEARED):
            stub.announce(event)
            await term.expect(PROMPT)
        term.type("quit\n")
        assert await term.exit_code() == 0
    assert term.output.count("\a") == 2


async def test_watch_prints_events_itself_and_announcements_pause_meanwhile(
    stub: StubDaemon, sock: Path
) -> None:
    async with on_terminal(sock) as term:
        await term.expect(PROMPT)
        await _announcing(stub)
        term.type("watch\n")
        await term.expect("press Enter to stop")
        stub.announce(RAISED)  # the announcer is paused: only the watch would print it
        answer = await term.expect(PROMPT)
        assert "ALARM" not in answer
        stub.announce(RAISED)
        assert "ALARM   HIGH level_high_high" in await term.expect(PROMPT)


async def test_log_numbers_its_lines_and_log_show_prints_one_whole(
    stub: StubDaemon, sock: Path
) -> None:
    async with on_terminal(sock) as term:
        await term.expect(PROMPT)
        answer = await term.command("log show 1", prompt=PROMPT)
        assert "error: no log listing yet: list it first (log, or log 50)" in answer
        listing = await term.command("log 4", prompt=PROMPT)
        lines = listing.splitlines()
        assert [line[:3] for line in lines] == ["  4", "  3", "  2", "  1"]
        assert all(len(line) <= 80 for line in lines)
        assert lines[2].endswith("...")
        whole = await term.command("log show 2", prompt=PROMPT)
        assert whole.startswith("entry 2 (c2)  ")
        assert "once the reactor has been checked after the E-stop" in whole
        assert "  args: recipe=leach" in whole
        assert (await term.command("log show e2", prompt=PROMPT)).startswith("entry 1 (e2)")
        answer = await term.command("log show 9", prompt=PROMPT)
        assert "error: the last listing has 4 entries: log 9 lists more" in answer
    assert stub.args_of("log") == [{"n": 4}]


async def test_reset_in_aborted_resets_the_alarms_and_says_to_clear_first(sock: Path) -> None:
    async with StubDaemon(path=sock, state="ABORTED") as stub:
        run = await _piped("reset\nclear\nreset\n", sock)
    assert run.stdout.startswith(
        "reset 1 alarm; the unit is ABORTED: reset works from STOPPED or COMPLETE. Once\n"
        "  the reactor is checked: ack all, clear (ABORTED -> STOPPED), then reset (->\n"
        "  IDLE)\n"
    )
    assert "clear accepted: now STOPPED\nreset 1 alarm; reset accepted: now RESETTING\n" in (
        run.stdout
    )
    assert "error" not in run.stdout
    assert run.returncode == 2  # the first reset did not get the unit to IDLE
    # no PackML reset was sent while ABORTED: nothing refused, nothing to journal
    assert stub.ops[1:] == [
        "reset_alarms", "status", "clear", "reset_alarms", "status", "reset",
    ]  # fmt: skip


async def test_calibration_outcomes_are_one_to_three_lines(sock: Path) -> None:
    async with StubDaemon(path=sock):
        run = await _piped("cal ph mid 7.00 21.5\ncal pump P-203 9.6\ncal ph status\n", sock)
    assert run.returncode == 0, run
    assert run.stdout == (
        "AT-101 mid 7.00 at 21.5 °C taken: ok\n"
        "  offset +0.6 mV; points in: mid\n"
        "P-203 calibrated to 9.6 mL for its last run\n"
        "AT-101 is not calibrated (no points): cal ph walks you through it\n"
    )


async def test_the_guided_calibration_is_for_a_terminal(sock: Path) -> None:
    async with StubDaemon(path=sock) as stub:
        run = await _piped("cal ph\n", sock)
    assert run.returncode == 2
    assert run.stdout == (
        "error: cal ph alone guides you at a terminal; in a script: cal ph mid 7.00\n"
    )
    assert stub.ops == ["identify"]


async def test_a_script_gets_no_announcements(stub: StubDaemon, sock: Path) -> None:
    run = await _piped("status\n", sock)
    assert run.returncode == 0
    assert "watch" not in stub.ops  # no announcer connection for a script


async def test_a_point_is_taken_only_once_the_reading_is_steady_and_the_tech_says_so(
    sock: Path,
) -> None:
    async with (
        StubDaemon(path=sock, pin=PIN, pushed=True) as stub,
        on_terminal(sock) as term,
    ):
        await term.expect(PROMPT)
        term.type("cal ph\n")
        await term.expect("PIN: ")  # asked first: not after minutes of waiting on a reading
        term.type(PIN + "\n")
        said = await term.expect("point [mid 7.00]: ")
        assert "AT-101 is not calibrated (no points)" in said
        assert "mid first (it clears low and high)" in said
        term.type("low\n")  # the stub's probe has no points: mid must come first
        await term.expect("  low needs a mid point first: the probe has none\npoint [mid 7.00]: ")
        term.type("\n")
        await term.expect("put the probe in the pH 7.00 buffer (rinse it first); the reading")
        async with asyncio.timeout(WAIT_S):
            await stub.status_watched.wait()
        t0 = 1_700_000_000_000
        for second in range(3):
            stub.push(ts=t0 + 1000 * second, ph=7.03 - 0.005 * second)
        await term.expect("pH 7.020  settling (2 s of 10 s) ")
        term.type("y\n")  # too soon
        await term.expect("not steady yet: a point is taken once the reading holds ±0.02 pH")
        stub.push(ts=t0 + 3000, ph=None, bad={"ph": "stale"})
        await term.expect("pH bad (stale): waiting for a good reading")
        for second in range(4, 15):
            stub.push(ts=t0 + 1000 * second, ph=7.004 + (0.002 if second % 2 else 0.0))
        await term.expect("steady (±0.001 over 10 s): Enter or y takes it, n waits on: ")
        assert "cal_ph" not in stub.ops
        term.type("n\n")  # wait on
        await term.expect("steady (±0.001 over 10 s): Enter or y takes it, n waits on: ")
        term.type("\n")
        said = await term.expect("point [low 4.00]: ")
        assert "AT-101 mid 7.00 at 21.5 °C taken: ok\n  offset +0.6 mV; points in: mid" in said
        term.type("done\n")
        await term.expect("pH calibration done: points taken here: mid (cal ph status)")
        await term.expect(PROMPT)
        term.type("quit\n")
        assert await term.exit_code() == 0
    assert stub.args_of("cal_ph") == [{"point": "mid", "value": 7.0}]
    assert stub.ops.count("unwatch") == 1  # the reading's watch ended with the point
    assert [line for line in term.output.splitlines() if len(line) > 80] == []


async def _guided_to_the_first_point(term: Terminal) -> None:
    """At the prompt: `cal ph`, the PIN, up to the question of the first point."""
    await term.expect(PROMPT)
    term.type("cal ph\n")
    await term.expect("PIN: ")
    term.type(PIN + "\n")
    await term.expect("point [mid 7.00]: ")


async def test_a_command_typed_at_a_calibration_reading_ends_it_and_is_carried_out(
    sock: Path,
) -> None:
    # Found by a field tech: `stop` typed while a reading settled was thrown away ("Enter or y
    # takes the point") while the session's jog went on dosing into its cylinder.
    async with (
        StubDaemon(path=sock, pin=PIN, pushed=True) as stub,
        on_terminal(sock) as term,
    ):
        await _guided_to_the_first_point(term)
        term.type("\n")
        await term.expect("the reading")
        async with asyncio.timeout(WAIT_S):
            await stub.status_watched.wait()
        stub.push(ts=1_700_000_000_000, ph=7.03)
        await term.expect("settling")
        term.type("stop\n")
        await term.expect("calibration stopped, no point taken: stop follows")
        await term.expect("STOPPED")
        assert "stop" in stub.ops
        # At the point prompt too: a command there is no answer to "which point".
        term.type("cal ph\n")
        await term.expect("point [mid 7.00]: ")
        term.type("abort\n")
        await term.expect("calibration stopped, no point taken: abort follows")
        await term.expect("ABORTED")
        assert "abort" in stub.ops
        term.type("quit\n")
        assert await term.exit_code() == 0
    assert "cal_ph" not in stub.ops
    # Each calibration held starts off while the probe was out, and let them go at its end.
    assert stub.args_of("cal_ph_probe_out") == [{"on": True}, {"on": False}] * 2


async def test_a_warm_reactor_is_refused_as_the_buffers_temperature_before_any_wait(
    sock: Path,
) -> None:
    # Found by a field tech: at 40 °C the point was refused only after waiting for a steady
    # reading, for what was known before the probe went into the buffer.
    async with (
        StubDaemon(path=sock, pin=PIN, pushed=True) as stub,
        on_terminal(sock) as term,
    ):
        stub.status_changes = {"temperature_c": 40.1}
        await _guided_to_the_first_point(term)
        term.type("\n")
        await term.expect("the reactor's temperature reads 40.1 °C, no buffer's")
        await term.expect("point [mid 7.00]: ")  # asked again: with the buffer's °C it goes on
        term.type("mid 7.00 22\n")
        await term.expect("put the probe in the pH 7.00 buffer")
        term.type("quit\n")  # a command ends the calibration, and is carried out
        assert await term.exit_code() == 0
    assert "watch" in stub.ops  # only for the point with its own °C


async def test_ctrl_c_at_a_calibration_reading_puts_the_probe_back_and_the_console_goes_on(
    sock: Path,
) -> None:
    # A Ctrl-C while the reading's watch was being set up left it streaming: the console's
    # next request went unanswered (found while testing the probe's hold on starts).
    async with (
        StubDaemon(path=sock, pin=PIN, pushed=True) as stub,
        on_terminal(sock) as term,
    ):
        await _guided_to_the_first_point(term)
        term.type("\n")
        await term.expect("put the probe in the pH 7.00 buffer")
        async with asyncio.timeout(WAIT_S):
            await stub.status_watched.wait()
        term.type("\x03")
        await term.expect(PROMPT)
        term.type("status\n")
        await term.expect("STOPPED")  # once in ~20 runs it never came: the watch went on
        term.type("quit\n")
        assert await term.exit_code() == 0
    assert stub.args_of("cal_ph_probe_out") == [{"on": True}, {"on": False}]


async def test_sigterm_leaves_as_ctrl_d_does_and_puts_the_terminal_back(
    stub: StubDaemon, sock: Path
) -> None:
    async with on_terminal(sock) as term:
        await term.expect(PROMPT)
        modes = termios.tcgetattr(term.master)[3]  # the pty's modes, as the console set them
        assert not modes & (termios.ICANON | termios.ECHO | termios.ISIG)  # it edits lines itself
        term.proc.send_signal(signal.SIGTERM)
        assert await term.exit_code() == 0
        modes = termios.tcgetattr(term.master)[3]
    assert modes & termios.ICANON
    assert modes & termios.ECHO
    assert modes & termios.ISIG


async def test_ctrl_d_still_leaves_while_the_daemon_is_gone(sock: Path) -> None:
    stub = StubDaemon(path=sock)
    await stub.__aenter__()
    try:
        async with on_terminal(sock) as term:
            await term.expect(PROMPT)
            await stub.__aexit__(None, None, None)
            await term.expect("daemon gone; reconnecting…")
            await term.expect(PROMPT)
            term.type("\x04")
            assert await term.exit_code() == 0
    finally:
        await stub.__aexit__(None, None, None)


async def test_a_login_with_no_daemon_yet_waits_for_it_instead_of_leaving(sock: Path) -> None:
    async with on_terminal(sock) as term:
        said = await term.expect("retrying every few seconds; quit or Ctrl-D leaves\n")
        assert f"cannot reach the controller at {sock}: No such file or directory" in said
        await term.expect("> ")
        term.type("status\n")
        answer = await term.expect("> ")
        assert "error: not connected to the controller (reconnecting)" in answer
        async with StubDaemon(path=sock):
            await term.expect(f"{UNIT} at lab, controller 0.1.0, STOPPED")
            await term.expect(PROMPT)
            assert "state   STOPPED (2)" in await term.command("status", prompt=PROMPT)
            term.type("quit\n")
            assert await term.exit_code() == 0


async def test_confirm_answers_the_prompt_the_tech_was_shown(stub: StubDaemon, sock: Path) -> None:
    # A confirm typed twice must not answer a next prompt before it is on the screen: the
    # console says which prompt it answers, and the controller refuses another.
    async with on_terminal(sock) as term:
        await term.expect(PROMPT)
        await _announcing(stub)
        stub.announce(PROMPTED)
        await term.expect("type confirm once done")
        term.type("confirm\n")
        await term.expect("confirmed")
        term.type("quit\n")
        assert await term.exit_code() == 0
    assert stub.args_of("confirm") == [{"prompt": "Black mass charged"}]
