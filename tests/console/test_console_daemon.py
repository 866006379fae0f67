"""The console that tells, against a real daemon on the simulator over real pseudo-terminals: a
prompt reaches an idle console unasked, a restarted daemon is waited for, pH calibration is
guided on the simulated (noisy) probe, reset from ABORTED says what to do.

Real time: every wait is on output or on the daemon's state, bounded and generous (the tests must
pass on a loaded 2-core machine); the daemon and console are gone at the end, passed or not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.terminal_pty import console_env, on_terminal
from tests.daemon.harness import WAIT_S, Control, Daemon
from unit_controller.config import DEFAULT_CONFIG
from unit_controller.pin import hash_pin

pytestmark = pytest.mark.xdist_group("real_time")  # one worker with the other real-time tests

PROMPT = "sim-unit-01> "
PIN = "4711"
# The probe in a beaker of buffer is calmer than in a stirred slurry: less noise, no spikes,
# so the reading turns steady within the window and the test's length does not depend on luck.
CALM_PROBE = "\n[sim.plant]\nph_noise = 0.003\nph_spikes_per_h = 0.0\n"


def _config(tmp_path: Path, *, pin: bool = False, calm: bool = False) -> Path:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    if pin:
        text = text.replace("[console]\n", f'[console]\npin_hash = "{hash_pin(PIN)}"\n', 1)
    if calm:
        text += CALM_PROBE
    config = tmp_path / "unit.toml"
    config.write_text(text, encoding="utf-8")
    return config


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    unit = Daemon(tmp_path, speed=50.0)
    await unit.start()
    try:
        yield unit
    finally:
        if unit.proc is not None and unit.proc.poll() is None:
            assert unit.terminate() == 0, unit.log_tail()


async def _status(daemon: Daemon) -> dict[str, Any]:
    async with Control(daemon.socket) as control:
        return await control.status()


async def test_a_prompt_reaches_an_idle_console_as_a_line_with_a_bell(daemon: Daemon) -> None:
    async with on_terminal(daemon.socket, env=console_env(TERM="vt100")) as term:
        await term.expect(PROMPT)
        async with Control(daemon.socket) as control:  # someone else starts the batch
            assert (await control.request("reset"))["ok"]
            assert (await control.request("start", recipe="sample"))["ok"]
        # Nothing typed at the console: the prompt comes to it, with a bell.
        said = await term.expect("PROMPT  Sample taken: type confirm once done")
        assert "\a" in said
        await term.expect(f"\n{PROMPT}")  # and the prompt is drawn again below it
        term.type("status\n")
        answer = await term.expect(PROMPT)
        assert "phase   sample (2 of 3)" in answer
        assert "waiting for: Sample taken" in answer
        term.type("confirm\n")
        assert "confirmed: Sample taken" in await term.expect(PROMPT)
        term.type("quit\n")
        assert await term.exit_code() == 0


async def test_the_console_waits_out_a_daemon_restart_and_asks_for_the_pin_again(
    tmp_path: Path,
) -> None:
    daemon = Daemon(tmp_path, speed=10.0, args=("--config", str(_config(tmp_path, pin=True))))
    await daemon.start()
    try:
        async with on_terminal(daemon.socket) as term:
            await term.expect(PROMPT)
            assert daemon.terminate() == 0
            await term.expect("daemon gone; reconnecting…")
            await term.expect(PROMPT)
            term.type("status\n")
            answer = await term.expect(PROMPT)
            assert "error: not connected to the controller (reconnecting)" in answer
            await daemon.start()
            said = await term.expect(
                "controller back: sim-unit-01, STOPPED; a new session: give the PIN again (pin)"
            )
            assert "reconnecting" not in said  # said once, however many tries it took
            assert term.output.count("daemon gone") == 1
            await term.expect(PROMPT)
            term.type("status\n")
            assert "state   STOPPED (2)" in await term.expect(PROMPT)
            term.type("manual on\n")
            await term.expect("PIN: ")
            term.type(PIN + "\n")
            assert "manual mode ON" in await term.expect(PROMPT)
            term.type("jog pump P-203 500 cylinder\n")
            assert "jog P-203" in await term.expect(PROMPT)
            # A restart ends the session's manual mode and its jog: said when it is back.
            assert daemon.terminate() == 0
            await daemon.start()
            said = await term.expect("was stopped")  # wrapped to the terminal
            assert "this session's manual mode ended with it" in said
            await term.expect(PROMPT)
            term.type("quit\n")
            assert await term.exit_code() == 0
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            assert daemon.terminate() == 0, daemon.log_tail()


async def test_guided_ph_calibration_takes_mid_once_steady_and_accepted(tmp_path: Path) -> None:
    # At 2× real time, the console's two readings a second of wall time are one a second on the
    # unit's clock, as on a real unit.
    config = _config(tmp_path, calm=True)
    daemon = Daemon(tmp_path, speed=2.0, args=("--config", str(config)))
    await daemon.start()
    try:
        async with on_terminal(daemon.socket) as term:
            await term.expect(PROMPT)
            term.type("cal ph\n")
            await term.expect("point [mid 7.00]: ")
            term.type("\n")
            await term.expect("put the probe in the pH 7.00 buffer")
            await term.expect("settling (")
            await term.expect("steady (±", within_s=4 * WAIT_S)
            term.type("\n")
            said = await term.expect("point [low 4.00]: ")
            assert "AT-101 mid 7.00 at " in said
            assert " taken: ok\n  offset " in said
            term.type("done\n")
            await term.expect("pH calibration done: points taken here: mid (cal ph status)")
            await term.expect(PROMPT)
            term.type("quit\n")
            assert await term.exit_code() == 0
        async with Control(daemon.socket, client="console") as control:
            calibration = await control.request("cal_ph_status")
        assert calibration["result"]["points"] == 1
    finally:
        assert daemon.terminate() == 0, daemon.log_tail()


async def test_ctrl_c_abandons_the_calibration_without_calibrating(daemon: Daemon) -> None:
    async with on_terminal(daemon.socket) as term:
        await term.expect(PROMPT)
        term.type("cal ph mid 7.00 21.5\n")
        await term.expect("settling (")
        term.type("\x03")
        said = await term.expect(PROMPT)
        assert "^C\ncalibration stopped: the point being read was not taken" in said
        term.type("quit\n")
        assert await term.exit_code() == 0
    async with Control(daemon.socket, client="console") as control:
        calibration = await control.request("cal_ph_status")
    assert calibration["result"]["points"] == 0


async def test_reset_in_aborted_says_to_clear_and_clear_then_reset_reach_idle(
    daemon: Daemon,
) -> None:
    async with Control(daemon.socket) as control:
        for request in ({"op": "reset"}, {"op": "start", "recipe": "sample"}, {"op": "abort"}):
            op = request.pop("op")
            assert (await control.request(op, **request))["ok"]
    async with on_terminal(daemon.socket) as term:
        await term.expect(PROMPT)
        term.type("reset\n")
        answer = await term.expect(PROMPT)
        assert "the unit is ABORTED: reset works from STOPPED or COMPLETE" in answer
        assert "ack all, clear (ABORTED -> STOPPED), then reset" in " ".join(answer.split())
        assert "error" not in answer
        term.type("clear\n")
        assert "clear accepted: now STOPPED" in await term.expect(PROMPT)
        term.type("reset\n")
        assert "reset accepted: now IDLE" in await term.expect(PROMPT)
    assert (await _status(daemon))["state"] == "IDLE"


async def test_an_events_only_watch_streams_events_and_no_status_lines(daemon: Daemon) -> None:
    async with Control(daemon.socket) as control:
        watching = await control.request("watch", every_s=0.2, status=False)
        assert watching["result"] == {"watching": True}
        # Read every line ourselves: `request` would skip the stream lines before its answer.
        control.writer.write(b'{"id": 99, "op": "reset", "args": {}}\n')
        streamed: list[dict[str, Any]] = []
        async with asyncio.timeout(WAIT_S):
            while not any(m.get("id") == 99 for m in streamed):  # the answer: once IDLE
                streamed.append(json.loads(await control.reader.readline()))
        assert any(m.get("data", {}).get("new") == "IDLE" for m in streamed)
        lines = [m for m in streamed if m.get("id") != 99]
        # a status watch starts with a status line at once; this one had none, only events
        assert lines
        assert {m["stream"] for m in lines} == {"event"}
        assert (await control.request("unwatch"))["ok"]
        refused = await control.request("watch", status="no")
        assert refused["code"] == "bad_request"
