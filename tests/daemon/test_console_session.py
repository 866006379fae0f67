"""A field tech's session: `unit-console` on a real pseudo-terminal (and piped) against a running
daemon on the simulator: reset, start, confirm, hold, unhold, watch it complete, ack, batch.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.daemon.harness import ROOT, WAIT_S, ConsoleOnPty, Control, Daemon

PROMPT = "sim-unit-01> "


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    unit = Daemon(tmp_path, speed=50.0)
    await unit.start()
    try:
        yield unit
    finally:
        if unit.proc is not None and unit.proc.poll() is None:
            assert unit.terminate() == 0, unit.log_tail()


async def test_a_tech_runs_a_batch_with_a_prompt_from_the_console(daemon: Daemon) -> None:
    with ConsoleOnPty(daemon.socket) as console:
        await console.expect(PROMPT)
        console.type("status")
        assert "STOPPED" in await console.expect(PROMPT)
        console.type("frobnicate the reactor")
        assert "unknown command" in await console.expect(PROMPT)
        console.type("jog pump P-203")
        assert "jog pump P-203 5" in await console.expect(PROMPT)

        console.type("reset")
        assert "IDLE" in await console.expect(PROMPT)
        console.type("start sample")
        await console.expect(PROMPT)
        async with Control(daemon.socket) as control:
            await control.until(
                lambda s: s["awaiting_confirmation"] == "Sample taken", what="the prompt"
            )
        # The console announces the prompt by itself and draws its prompt again below it.
        await console.expect("PROMPT  Sample taken")
        await console.expect(PROMPT)
        console.type("status")
        assert "Sample taken" in await console.expect(PROMPT)
        console.type("manual on")
        assert "error" in await console.expect(PROMPT)  # not during a batch
        console.type("confirm")
        assert "confirmed: Sample taken" in await console.expect(PROMPT)

        console.type("hold")
        assert "HELD" in await console.expect(PROMPT)
        console.type("unhold")
        assert "EXECUTE" in await console.expect(PROMPT)
        console.type("watch")
        assert "COMPLETE" in await console.expect(PROMPT)

        console.type("alarms")
        await console.expect(PROMPT)
        console.type("ack all")
        assert "error" not in await console.expect(PROMPT)
        console.type("batch")
        record = await console.expect(PROMPT)
        for text in ("sample", "COMPLETE", "fill", "drain"):
            assert text in record, record
        console.type("log 30")
        log = await console.expect(PROMPT)
        assert "confirm" in log
        assert "hold by console:" in log
        console.type("quit")
        assert console.proc is not None
        assert console.proc.wait(WAIT_S) == 0


async def test_piped_lines_run_in_order_and_a_refusal_sets_the_exit_status(
    daemon: Daemon,
) -> None:
    def console(text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "unit_controller.console.repl", "--socket", str(daemon.socket)],
            input=text,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=WAIT_S,
            check=False,
        )

    fine = console("status\nreset\nrecipes\n")
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "IDLE" in fine.stdout
    assert "smoke" in fine.stdout
    refused = console("hold\nstatus\n")
    assert refused.returncode == 2
    assert "error" in refused.stdout + refused.stderr
    assert "IDLE" in refused.stdout
