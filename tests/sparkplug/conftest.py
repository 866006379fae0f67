"""An independent Sparkplug B decoder for the tests: Eclipse Tahu's JavaScript codec under node.

Installed from npm into tests/sparkplug/decoder (package-lock.json pins it) on first use; the
brokers are the MQTT tests'.
"""

from __future__ import annotations

import base64
import fcntl
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.conftest import mosquitto

__all__ = ["mosquitto", "tahu_decode"]

DECODER = Path(__file__).parent / "decoder"
TahuDecode = Callable[[list[tuple[str, bytes]]], list[dict[str, Any]]]


def _install(npm: str) -> None:
    with open(DECODER / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist's workers share the folder
        if not (DECODER / "node_modules" / "sparkplug-payload").is_dir():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--silent"],
                cwd=DECODER,
                check=True,
                timeout=300,
            )


@pytest.fixture(scope="session")
def tahu_decode() -> TahuDecode:
    """Decode (topic, payload) messages, in arrival order, with Tahu's codec."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed: scripts/test installs Debian's nodejs and npm")
    _install(npm)

    def decode(messages: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        lines = "".join(
            json.dumps({"topic": topic, "payload": base64.b64encode(payload).decode()}) + "\n"
            for topic, payload in messages
        )
        done = subprocess.run(
            [node, str(DECODER / "decode.js")],
            input=lines,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        decoded = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(decoded) == len(messages), done.stderr
        return decoded

    return decode
