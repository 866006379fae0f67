"""`unit-controller emulate` as another tool sees it, and `commission` run against it: raw Modbus
frames on the relay board's port, and a silenced circuit named in the report (exit 3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

from hal.sim.emulators.rtu_frames import with_crc

CLI = [sys.executable, "-m", "unit_controller.cli"]


def _raw(path: str, frame: bytes, expect: int, within_s: float = 5.0) -> bytes:
    """Send `frame` on `path` and read `expect` bytes (blocking: a test, not the controller)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIFLUSH)
        os.write(fd, frame)
        got = b""
        deadline = time.monotonic() + within_s
        os.set_blocking(fd, False)
        while len(got) < expect and time.monotonic() < deadline:
            try:
                got += os.read(fd, expect - len(got))
            except BlockingIOError:
                time.sleep(0.01)
        return got
    finally:
        os.close(fd)


def test_emulate_serves_the_relay_board_and_commission_names_a_silent_circuit(
    tmp_path: Path,
) -> None:
    emulate = subprocess.Popen(
        [*CLI, "emulate", "--json", "--fault", "device_silent:AT-101@0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
