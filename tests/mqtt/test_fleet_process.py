"""`unit-controller sim --mqtt` as a process: the Last Will on kill -9, and an outbox that
survives kill -9. Waits are on messages and on the outbox file, bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.mqtt.broker import Mosquitto
from tests.mqtt.recorder import Recorder
from unit_controller.cli import main

UNIT = "unit-k9"
ROOT = Path(__file__).resolve().parents[2]


def _sim(broker: Mosquitto, state: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "unit_controller.cli", "sim", "--mqtt", broker.url,
        "--unit-id", UNIT, "--state-dir", str(state), *args,
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy()
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _stored(state: Path) -> set[tuple[int, int]]:
    """(boot, seq) of every telemetry message committed to the outbox file."""
    path = state / "outbox.sqlite3"
    if not path.exists():
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT payload FROM outbox WHERE kind = 'telemetry'").fetchall()
    except sqlite3.OperationalError:
        return set()  # not created yet
    finally:
        db.close()
    return {(body["boot"], body["seq"]) for body in (json.loads(r[0]) for r in rows)}


async def _until(condition: Callable[[], bool], *, within_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():
        assert loop.time() < deadline, f"{what} within {within_s} s"
        await asyncio.sleep(0.1)


async def test_kill_9_leaves_offline_by_last_will(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    async with Recorder(mosquitto) as rec:
        proc = _sim(mosquitto, tmp_path / "state", "--recipe", "coprecipitation", "--speed", "10")
        processes.append(proc)
        await rec.wait_for(
            lambda r: r.topic.endswith(f"{UNIT}/status") and r.payload == b"online", timeout=20
        )
        await rec.wait_for(
            lambda r: r.topic.endswith("/telemetry") and r.json()["seq"] >= 3, timeout=20
        )
        proc.kill()
        will = await rec.wait_for(
            lambda r: r.topic.endswith(f"{UNIT}/status") and r.payload == b"offline", timeout=20
        )
    assert will.payload == b"offline"


async def test_telemetry_stored_before_kill_9_goes_out_on_backfill_next_run(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    state = tmp_path / "state"
    mosquitto.stop()
    first = _sim(mosquitto, state, "--recipe", "coprecipitation", "--speed", "20")
    processes.append(first)
    await _until(lambda: len(_stored(state)) >= 30, within_s=60, what="30 messages stored")
    first.kill()
    first.wait(10)
    stored = _stored(state)

    mosquitto.start()
    async with Recorder(mosquitto) as rec:
        second = _sim(mosquitto, state, "--recipe", "smoke", "--fast")
        processes.append(second)
        await rec.wait_for(
            lambda r: r.topic.endswith(f"{UNIT}/status") and r.payload == b"offline", timeout=60
        )
        assert second.wait(30) == 0, second.stderr.read() if second.stderr else ""
    # What the killed run stored is its telemetry from seq 0 on, without a gap...
    assert sorted(seq for _, seq in stored) == list(range(len(stored)))
    assert len({boot for boot, _ in stored}) == 1
    # ...and all of it reached the broker on backfill once the next run connected.
    backfilled = {(b["boot"], b["seq"]) for b in rec.json("backfill")}
    assert stored <= backfilled


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--mqtt", "http://broker", "mqtt:// or mqtts://"),
        ("--mqtt", "mqtt://", "no host"),
        ("--mqtt", "mqtt://user:secret@broker", "credentials"),
        ("--unit-id", "a/b", "unit.id"),
    ],
)
def test_bad_fleet_flags_are_refused_with_the_reason(
    flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", "--recipe", "smoke", flag, value]) == 2
    assert says in capsys.readouterr().err


def test_an_unusable_state_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(
        [
            "sim",
            "--recipe",
            "smoke",
            "--mqtt",
            "mqtt://127.0.0.1:9",
            "--state-dir",
            str(blocker / "x"),
        ]
    )
    assert code == 2
    # The journal and the outbox live there: the run stops before either, naming the directory.
    assert f"cannot use the state directory {blocker / 'x'}" in capsys.readouterr().err
