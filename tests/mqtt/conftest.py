"""Fixtures for the MQTT tests: a real Mosquitto per test, plain or TLS, on a free loopback port.

Each broker is killed at teardown, whether the test passed or not; nothing outlives the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.broker import AclMosquitto, Mosquitto


def _broker(workdir: Path, *, tls: bool) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir=workdir, tls=tls)
    try:
        broker.start()
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A started plain-TCP Mosquitto (anonymous access) with persistence, in tmp_path."""
    yield from _broker(tmp_path / "mosquitto", tls=False)


@pytest.fixture
def tls_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A started TLS Mosquitto requiring a client certificate from its test CA (`client_tls`);
    the certificate's CN is the MQTT username."""
    yield from _broker(tmp_path / "tls-mosquitto", tls=True)


@pytest.fixture
def acl_mosquitto(tmp_path: Path) -> Iterator[AclMosquitto]:
    """A started plain-TCP Mosquitto whose ACL lets clients write only under `allowed/`
    (`writable`, read at each start): what it denies, it refuses (MQTT 5 PUBACK 0x87)."""
    broker = AclMosquitto(workdir=tmp_path / "acl-mosquitto", tls=False)
    try:
        broker.start()
        yield broker
    finally:
        broker.kill()
