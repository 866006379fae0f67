"""A simulated batch stopped part-way (Ctrl-C) ends as a service stop ends one: aborted, its
outputs safe, its journal record closed (not "running" for ever)."""

from __future__ import annotations

import asyncio
import io
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hal.outputs import Outputs
from unit_controller.cli import main
from unit_controller.config import load_config
from unit_controller.controller import Snapshot
from unit_controller.machine import State
from unit_controller.sim.runner import SimOptions, SimulationRun


async def test_an_interrupted_run_aborts_its_batch_and_closes_its_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    options = SimOptions(recipe="smoke", seed=1, state_dir=state)
    run = SimulationRun(config=load_config(), options=options, out=io.StringIO())
    batch = asyncio.create_task(run.run())
    # As asyncio.run does on Ctrl-C: the run's task is cancelled, here 5 simulated minutes in.

    def interrupt(snapshot: Snapshot) -> None:
        if snapshot.at >= 300 and not batch.cancelling():
            batch.cancel()

    run.watch(interrupt)
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert run.controller.machine.state is State.ABORTED
    assert run.controller.snapshot is not None
    assert run.controller.snapshot.outputs == Outputs.safe()
    capsys.readouterr()  # the run's log lines
    assert main(["journal", "list", "--state-dir", str(state)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[1].split()[:2] == ["1", "smoke"], listing
    assert listing[1].endswith("ABORTED")


def _ignore_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a job a script put in the background


@pytest.mark.parametrize(
    ("sig", "no_ctrl_c"),
    [
        (signal.SIGINT, False),
        (signal.SIGTERM, False),
        (signal.SIGHUP, False),
        (signal.SIGTERM, True),
    ],
    ids=["ctrl-c", "term", "hup", "term-in-the-background"],
)
def test_a_kill_or_a_dropped_session_ends_a_sim_as_ctrl_c_does(
    tmp_path: Path, sig: signal.Signals, no_ctrl_c: bool
) -> None:
    # A `timeout` or a closed ssh session: not a crash the unit's next start finds.
    state = tmp_path / "state"
    sim = subprocess.Popen(
        [sys.executable, "-m", "unit_controller.cli", "sim", "--recipe", "smoke", "--speed",
         "60", "--state-dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ignore_ctrl_c if no_ctrl_c else None,
    )  # fmt: skip
    assert sim.stdout is not None
    deadline = time.monotonic() + 60.0
    while "EXECUTE" not in sim.stdout.readline() and time.monotonic() < deadline:
        pass  # the batch is under way
    sim.send_signal(sig)
    _, err = sim.communicate(timeout=60)
    assert sim.returncode == 130, err
    assert "interrupted" in err
    db = sqlite3.connect(state / "journal.sqlite3")
    try:
        assert db.execute("SELECT final_state FROM batches").fetchall() == [("ABORTED",)]
        assert db.execute("SELECT value FROM meta WHERE key = 'running'").fetchone() == ("0",)
    finally:
        db.close()
    assert (state / "journal.sqlite3.run").read_bytes().startswith(b"clean")
