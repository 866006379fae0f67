"""`unit-controller emulate` as another tool sees it, and `commission` run against it: raw Modbus
frames on the relay board's port, and a silenced circuit named in the report (exit 3)."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

from hal.sim.emulators.rtu_frames import with_crc
from tests.daemon.harness import Control, Daemon

CLI = [sys.executable, "-m", "unit_controller.cli"]


def _emulate(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "emulate", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _raw(path: str, frame: bytes, expect: int, within_s: float = 5.0) -> bytes:
    """Send `frame` on `path` and read `expect` bytes (blocking: a test, not the controller)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIFLUSH)
        os.write(fd, frame)
        got = b""
        deadline = time.monotonic() + within_s
        while len(got) < expect:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([fd], [], [], max(left, 0.0))
            if not readable:
                break
            got += os.read(fd, expect - len(got))
        return got
    finally:
        os.close(fd)


def test_emulate_serves_the_relay_board_and_commission_names_a_silent_circuit(
    tmp_path: Path,
) -> None:
    emulate = _emulate("--fault", "device_silent:AT-101@0")
    try:
        assert emulate.stdout is not None
        announced = json.loads(emulate.stdout.readline())
        relay = announced["ports"]["relay_board"]
        assert set(announced["ports"]) >= {"TT-101", "AT-101", "P-203", "relay_board"}
        # Exception 03 for a read of quantity 0; 01 for an unknown function, and the next
        # request answered; 03 for an FC15 whose byte count does not match its quantity.
        assert _raw(relay, with_crc(bytes.fromhex("01 01 0000 0000")), 5) == with_crc(
            bytes.fromhex("01 81 03")
        )
        assert _raw(relay, with_crc(bytes.fromhex("01 41 0000")), 5) == with_crc(
            bytes.fromhex("01 C1 01")
        )
        assert _raw(relay, with_crc(bytes.fromhex("01 02 0000 0008")), 6)[:3] == bytes.fromhex(
            "01 02 01"
        )
        assert _raw(relay, with_crc(bytes.fromhex("01 0F 0000 0008 02 FF 00")), 5) == with_crc(
            bytes.fromhex("01 8F 03")
        )

        commission = subprocess.run(
            [*CLI, "commission", "--config", announced["config"], "--json"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert commission.returncode == 3, commission.stderr[-2000:]
        report = json.loads(commission.stdout)
        assert report["ok"] is False
        by_tag = {d["tag"]: d for d in report["devices"]}
        assert by_tag["AT-101"]["found"] is False
        assert "no answer" in by_tag["AT-101"]["problems"][0]
        found = {tag for tag, d in by_tag.items() if d["found"]}
        assert found >= {"TT-101", "P-201", "P-205", "relay_board", "HS-100"}
        assert by_tag["TT-101"]["firmware"] == "2.13"
        assert all(not d["problems"] for tag, d in by_tag.items() if tag != "AT-101")
    finally:
        emulate.send_signal(signal.SIGTERM)
        assert emulate.wait(timeout=30) == 0
    assert not Path(announced["config"]).exists()  # the generated config goes with it


async def test_the_console_asks_the_running_daemon_for_the_same_report(tmp_path: Path) -> None:
    emulate = _emulate()
    daemon: Daemon | None = None
    try:
        assert emulate.stdout is not None
        announced = json.loads(emulate.stdout.readline())
        daemon = Daemon(tmp_path, speed=1.0, args=("--config", announced["config"]))
        await daemon.start()
        async with Control(daemon.socket) as control:
            deadline = time.monotonic() + 60
            while True:  # the drivers take a few seconds to open their ports and start up
                answer = await control.request("commission")
                assert answer["ok"], answer
                report = answer["result"]["report"]
                if report["ok"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        assert report["ok"] is True, report
        by_tag = {d["tag"]: d for d in report["devices"]}
        assert by_tag["AT-101"]["firmware"] == "2.16"
        assert by_tag["P-203"]["reading"] == "max 105 mL/min"
        assert by_tag["HS-100"]["reading"] == "released"
        # The command line's commission, meanwhile, says at once whose the ports are.
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *CLI, "commission", "--config", announced["config"], "--state-dir", str(daemon.state),
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 1, err
        assert b"a unit-controller (pid " in err
        assert b"unit-console, then commission" in err
        assert time.monotonic() - started < 30.0  # not a minute of retries per port
    finally:
        if daemon is not None and daemon.proc is not None:
            daemon.terminate()
        emulate.send_signal(signal.SIGTERM)
        emulate.wait(timeout=30)


async def test_on_the_simulator_the_console_is_told_there_is_nothing_to_find(
    tmp_path: Path,
) -> None:
    daemon = Daemon(tmp_path)
    await daemon.start()
    try:
        async with Control(daemon.socket) as control:
            answer = await control.request("commission")
        assert answer["ok"] is False
        assert "mock backend" in answer["error"]
    finally:
        daemon.terminate()


def test_ctrl_c_at_a_pulse_question_ends_commission_with_one_line(tmp_path: Path) -> None:
    emulate = _emulate()
    leader, follower = os.openpty()
    try:
        assert emulate.stdout is not None
        announced = json.loads(emulate.stdout.readline())
        # At a terminal, as --outputs asks before each pulse (the prompt goes to stderr).
        commission = subprocess.Popen(
            [*CLI, "commission", "--config", announced["config"], "--outputs"],
            stdin=follower,
            stdout=follower,
            stderr=follower,
        )
        seen = _read_until(leader, b"[y/N]", within_s=120.0)
        assert b"[y/N]" in seen, seen[-500:]
        commission.send_signal(signal.SIGINT)
        assert commission.wait(timeout=30) == 130
        seen = _read_until(leader, b"no report", within_s=10.0)
        assert b"interrupted: the survey stopped" in seen, seen
        assert b"Traceback" not in seen
    finally:
        os.close(leader)
        os.close(follower)
        emulate.send_signal(signal.SIGINT)
        emulate.wait(timeout=30)


def _read_until(fd: int, text: bytes, *, within_s: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + within_s
    while text not in seen and time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], 0.5)
        if readable:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the other side closed
                break
    return seen


def test_emulate_sped_up_says_a_real_time_controller_will_see_its_leases_lapse() -> None:
    # Found by a batch operator: `emulate --speed 10` under `run` gave false output faults.
    emulate = _emulate("--speed", "10")
    try:
        assert emulate.stdout is not None
        json.loads(emulate.stdout.readline())  # up and announced
    finally:
        emulate.send_signal(signal.SIGTERM)
        assert emulate.wait(timeout=30) == 0
    assert emulate.stderr is not None
    said = emulate.stderr.read()
    assert "a relay board lease of 10 s lapses after 1 s of real time" in said
    assert "give it --speed 1" in said
