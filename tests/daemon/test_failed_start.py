"""A daemon whose start fails after its outbox opened closes the outbox, and the journal says
the run was no crash."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from tests.mqtt.fleet import fleet_config
from unit_controller.control_socket.server import ControlServer
from unit_controller.daemon.daemon import Daemon, DaemonOptions
from unit_controller.daemon.dirs import Directories
from unit_controller.mqtt.outbox import Outbox


def _failing_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Daemon:
    """A daemon publishing to a broker it never reaches, whose control socket cannot start
    (after its outbox opened)."""

    async def refuse(self: ControlServer) -> None:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(ControlServer, "start", refuse)
    config = fleet_config("mqtt://127.0.0.1:9", tmp_path / "state")
    dirs = Directories(config_file=tmp_path / "unit.toml", state=None, runtime=tmp_path / "run")
    return Daemon(config=config, options=DaemonOptions(dirs=dirs, speed=10.0), out=io.StringIO())


async def test_a_start_that_fails_after_the_outbox_opened_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[Path] = []
    close = Outbox.close

    async def watched_close(self: Outbox) -> None:
        closed.append(self.path)
        await close(self)

    monkeypatch.setattr(Outbox, "close", watched_close)
    daemon = _failing_start(tmp_path, monkeypatch)
    with pytest.raises(OSError, match="Address already in use"):
        await daemon.run()
    assert closed == [tmp_path / "state" / "outbox.sqlite3"]


async def test_a_fleet_that_fails_to_close_after_a_failed_start_leaves_the_first_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_close(self: Outbox) -> None:
        raise RuntimeError("close failed")

    monkeypatch.setattr(Outbox, "close", broken_close)
    daemon = _failing_start(tmp_path, monkeypatch)
    with pytest.raises(OSError, match="Address already in use"):
        await daemon.run()
    # A start that ran nothing is no crash: the journal is marked clean all the same.
    db = sqlite3.connect(tmp_path / "state" / "journal.sqlite3")
    try:
        assert db.execute("SELECT value FROM meta WHERE key = 'running'").fetchone() == ("0",)
    finally:
        db.close()
