"""A full disk at start keeps neither the reactor from its controller nor the fleet from it for
good: the daemon starts as the last run left the unit, says what is not saved, refuses a batch
without its record, and opens its journal and outbox once there is room."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.harness import Control
from tests.mqtt.fleet import fleet_config
from unit_controller.control_socket.server import socket_answers
from unit_controller.daemon import daemon as daemon_module
from unit_controller.daemon.daemon import Daemon, DaemonOptions
from unit_controller.daemon.dirs import Directories
from unit_controller.journal.db import JournalDb
from unit_controller.journal.store import Journal
from unit_controller.mqtt.outbox_db import OutboxDb

FULL = "database or disk is full"
WAIT_S = 30.0


class FullDisk:
    """The journal's and the outbox's files refuse to open, as on a full disk, while `full`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = True
        for store in (JournalDb, OutboxDb):
            monkeypatch.setattr(store, "prepare", self._refusing(store.prepare))

    def _refusing(self, prepare: Any) -> Any:
        def refusing(db: Any, conn: sqlite3.Connection, **kwargs: Any) -> Any:
            if self.full:
                raise sqlite3.OperationalError(FULL)
            return prepare(db, conn, **kwargs)

        return refusing


async def _storage_alarms(control: Control) -> dict[str, str]:
    alarms = (await control.request("alarms"))["result"]["alarms"]
    return {
        a["tag"]: a["message"]
        for a in alarms
        if a["id"] == "storage_failing" and a["state"] in ("unack_active", "ack_active")
    }


async def _until(what: str, check: Any, within_s: float = WAIT_S) -> None:
    # Real time: the daemon's tasks try the files again on their own schedule.
    try:
        async with asyncio.timeout(within_s):
            while not await check():  # noqa: ASYNC110 (polling the daemon: it offers no event)
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"no {what} within {within_s} s") from None


async def test_a_full_disk_at_start_runs_the_unit_and_saves_once_there_is_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    # The last run crashed mid-batch: its journal says so, and the disk fills before the restart.
    last = Journal(path=state / "journal.sqlite3")
    await last.open()
    last.batch_started(ts_ms=1_000, recipe="leach", recipe_sha256="ab" * 32)
    await last.close(clean=False)
    disk = FullDisk(monkeypatch)
    monkeypatch.setattr(daemon_module, "FLEET_RETRY_MAX_S", 1.0)

    config = fleet_config("mqtt://127.0.0.1:9", state)  # a broker that is away
    dirs = Directories(config_file=tmp_path / "unit.toml", state=None, runtime=tmp_path / "run")
    out = io.StringIO()
    daemon = Daemon(config=config, options=DaemonOptions(dirs=dirs, speed=1.0), out=out)
    running = asyncio.create_task(daemon.run())
    try:
        await _until("the socket", lambda: socket_answers(dirs.socket))
        assert "not publishing until the outbox opens" in out.getvalue()
        async with Control(dirs.socket, client="console") as control:
            # As the last run left it: aborted, its batch interrupted, the purge held.
            assert control.hello["state"] == "ABORTED"
            status = await control.status()
            assert status["outputs"]["purge_valve"] is True
            await _until("both storage alarms", lambda: _both(control))
            alarms = await _storage_alarms(control)
            assert FULL in alarms["journal"]
            assert "nothing goes to the fleet until it opens" in alarms["outbox"]

            assert (await control.request("ack", alarm=None))["ok"]
            assert (await control.request("reset_alarms", alarm=None))["ok"]
            assert (await control.request("clear"))["ok"]
            await control.until(lambda s: s["state"] == "STOPPED", what="stopped")
            assert (await control.request("reset"))["ok"]
            await control.until(lambda s: s["state"] == "IDLE", what="idle")
            refused = await control.request("start", recipe="smoke")
            assert not refused["ok"]
            assert "a batch is not run without its record" in refused["error"]
            assert FULL in refused["error"]
            journal = await control.request("log", n=5)
            assert not journal["ok"]
            assert "not open yet" in journal["error"]

            disk.full = False
            await _until("room (storage alarms returned)", lambda: _no_storage_alarm(control))
            started = await control.request("start", recipe="smoke")
            assert started["ok"], started
            assert (await control.status())["batch_id"] == 2
            entries = (await control.request("log", n=50))["result"]["entries"]
            texts = " ".join(e["text"] for e in entries)
            # What happened while the disk was full is in the journal now.
            assert "storage_failing (journal) raised" in texts
            assert "refused: cannot start: the journal cannot be opened" in texts
        await _until("outbox opened", lambda: _opened(daemon))
    finally:
        daemon.stop()
        code = await asyncio.wait_for(running, WAIT_S)
    assert code == 0


async def _both(control: Control) -> bool:
    return set(await _storage_alarms(control)) == {"journal", "outbox"}


async def _no_storage_alarm(control: Control) -> bool:
    return not await _storage_alarms(control)


async def _opened(daemon: Daemon) -> bool:
    return daemon._fleet is not None


async def test_a_journal_it_cannot_read_at_all_is_taken_the_worst_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    last = Journal(path=state / "journal.sqlite3")
    await last.open()
    await last.close()  # a clean stop, nothing in the reactor
    FullDisk(monkeypatch)
    monkeypatch.setattr("unit_controller.journal.store.peek", lambda path: None)  # unreadable
    config = fleet_config("mqtt://127.0.0.1:9", state)
    dirs = Directories(config_file=tmp_path / "unit.toml", state=None, runtime=tmp_path / "run")
    daemon = Daemon(config=config, options=DaemonOptions(dirs=dirs, speed=1.0), out=io.StringIO())
    running = asyncio.create_task(daemon.run())
    try:
        await _until("the socket", lambda: socket_answers(dirs.socket))
        async with Control(dirs.socket, client="console") as control:
            assert control.hello["state"] == "ABORTED"
            status = await control.status()
            # Latched trips and the charge are not known: a latched trip, the purge held.
            assert status["outputs"]["purge_valve"] is True
            assert status["authority"] == "local"
            alarms = (await control.request("alarms"))["result"]["alarms"]
            unknown = [a for a in alarms if a["id"] == "latched_unreadable"]
            assert len(unknown) == 1
            assert unknown[0]["priority"] == "critical"
            assert "the journal cannot be read" in unknown[0]["message"]
    finally:
        daemon.stop()
        code = await asyncio.wait_for(running, WAIT_S)
    assert code == 0
