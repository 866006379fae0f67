"""Starting and stopping, every output is written at its own safe state (DESIGN §5), never
"everything off": the purge stays open on a charged reactor."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from hal.board import Board
from hal.outputs import Outputs
from tests.daemon.harness import Control
from tests.daemon.test_full_disk_start import WAIT_S, _until
from tests.mqtt.fleet import fleet_config
from unit_controller.control_socket.server import socket_answers
from unit_controller.daemon.daemon import Daemon, DaemonOptions
from unit_controller.daemon.dirs import Directories
from unit_controller.journal.store import Journal


async def test_a_stop_leaves_the_purge_open_on_a_charged_reactor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by a safety reviewer: the daemon's last write as it stopped was "everything off",
    # closing the N2 purge over a reactor that may hold acid (DESIGN §5: safe is per output).
    state = tmp_path / "state"
    last = Journal(path=state / "journal.sqlite3")
    await last.open()
    last.batch_started(ts_ms=1_000, recipe="leach", recipe_sha256="ab" * 32)
    await last.close(clean=False)  # it crashed mid-batch: the reactor may hold acid
    written: list[Outputs] = []
    apply = Board.apply

    def recording(board: Board, outputs: Outputs) -> None:
        written.append(outputs)
        apply(board, outputs)

    monkeypatch.setattr(Board, "apply", recording)
    config = fleet_config("mqtt://127.0.0.1:9", state)
    config = config.model_copy(update={"mqtt": config.mqtt.model_copy(update={"url": None})})
    dirs = Directories(config_file=tmp_path / "unit.toml", state=None, runtime=tmp_path / "run")
    out = io.StringIO()
    daemon = Daemon(config=config, options=DaemonOptions(dirs=dirs, speed=1.0), out=out)
    running = asyncio.create_task(daemon.run())
    try:
        await _until("the socket", lambda: socket_answers(dirs.socket))
        async with Control(dirs.socket, client="console") as control:
            assert (await control.status())["outputs"]["purge_valve"] is True
    finally:
        daemon.stop()
        code = await asyncio.wait_for(running, WAIT_S)
    assert code == 0
    assert written
    assert all(outputs.purge_valve for outputs in written), [o.purge_valve for o in written]
    # Its lease is all that keeps it open once the controller is gone: said as it stops.
    said = out.getvalue()
    assert "the reactor may hold acid: the N2 purge stays open only 10 s (its lease)" in said
