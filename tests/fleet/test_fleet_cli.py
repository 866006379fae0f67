"""`unit-controller fleet` against a real broker: two simulated units show up with their states;
one killed shows `"online": false` within the keepalive; bad options and no broker say so."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.harness import ROOT as REPO
from tests.daemon.harness import Control, Daemon
from tests.mqtt.broker import Mosquitto
from tests.mqtt.recorder import Received, Recorder, publish

pytestmark = pytest.mark.xdist_group("real_time")

KEEPALIVE_S = 30.0  # [mqtt] keepalive_s of the simulator's example
WAIT_S = 60.0


async def _fleet(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "unit_controller.cli", "fleet", *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), WAIT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _telemetry_of(unit: str) -> Callable[[Received], bool]:
    return lambda r: r.topic.endswith(f"/{unit}/telemetry")


async def _snapshot(broker: Mosquitto) -> list[dict[str, Any]]:
    code, out, err = await _fleet("--mqtt", broker.url, "--once", "--json")
    assert code == 0, err
    units: list[dict[str, Any]] = json.loads(out)
    return units


async def test_two_units_show_up_and_a_killed_one_goes_offline_within_the_keepalive(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    daemons = [
        Daemon(tmp_path / name, speed=1.0, args=("--mqtt", mosquitto.url, "--unit-id", name))
        for name in ("unit-f1", "unit-f2")
    ]
    async with Recorder(mosquitto) as rec:
        for daemon in daemons:
            await daemon.start()
        try:
            for name in ("unit-f1", "unit-f2"):
                await rec.wait_for(_telemetry_of(name), timeout=WAIT_S)
            async with Control(daemons[0].socket) as control:
                await control.request("reset")
                await control.until(lambda s: s["state"] == "IDLE", what="IDLE")
            await rec.wait_for(
                lambda r: r.topic.endswith("/unit-f1/telemetry") and r.json()["state"] == "IDLE",
                timeout=WAIT_S,
            )
            units = {u["unit"]: u for u in await _snapshot(mosquitto)}
            assert set(units) == {"unit-f1", "unit-f2"}
            assert units["unit-f1"]["state"] == "IDLE"
            assert units["unit-f2"]["state"] == "STOPPED"
            for unit in units.values():
                assert unit["online"] is True
                assert unit["phase"] is None
                assert isinstance(unit["alarms"], list)
                assert isinstance(unit["age_s"], float)
                assert {"unit", "online", "state", "phase", "alarms", "age_s"} <= set(unit)

            daemons[1].kill()
            # The broker says so with the unit's Last Will, within the keepalive...
            await rec.wait_for(
                lambda r: r.topic.endswith("/unit-f2/status") and r.payload == b"offline",
                timeout=KEEPALIVE_S,
            )
            # ...and the next snapshot shows it.
            units = {u["unit"]: u for u in await _snapshot(mosquitto)}
            assert units["unit-f2"]["online"] is False
            assert units["unit-f1"]["online"] is True
            # The table shows the same, the offline unit named as such.
            code, table, err = await _fleet("--mqtt", mosquitto.url, "--once")
            assert code == 0, err
            line = next(t for t in table.splitlines() if t.startswith("unit-f2"))
            assert "OFFLINE" in line
        finally:
            # Each is stopped (or killed) even when another does not stop in time.
            stuck: list[subprocess.TimeoutExpired] = []
            for daemon in daemons:
                if daemon.proc is not None and daemon.proc.poll() is None:
                    try:
                        daemon.terminate()
                    except subprocess.TimeoutExpired as exc:
                        stuck.append(exc)
            if stuck:
                raise stuck[0]


async def test_no_broker_and_bad_options_are_named(tmp_path: Path) -> None:
    code, _, err = await _fleet("--mqtt", "mqtt://127.0.0.1:9", "--once")
    assert code == 1
    assert "mqtt://127.0.0.1:9" in err
    code, _, err = await _fleet("--mqtt", "http://broker", "--once")
    assert code == 2
    assert "mqtt://" in err
    code, _, err = await _fleet("--mqtt", "mqtt://localhost", "--root", "fleet/#", "--once")
    assert code == 2
    assert "wildcard" in err
    code, _, err = await _fleet("--mqtt", "mqtts://localhost", "--ca-file", str(tmp_path / "x"))
    assert code == 2
    assert "no such file" in err
    # A file that is there but no certificate is a bad option too, not a broker away.
    (tmp_path / "hostname").write_text("unit-01\n")
    ca = str(tmp_path / "hostname")
    code, _, err = await _fleet("--mqtt", "mqtts://localhost", "--ca-file", ca, "--once")
    assert code == 2
    assert f"--ca-file {ca}: not a usable CA bundle" in err


async def test_tls_to_a_plain_listener_says_the_handshake_failed(mosquitto: Mosquitto) -> None:
    url = f"mqtts://{mosquitto.host}:{mosquitto.port}"
    code, _, err = await _fleet("--mqtt", url, "--once")
    assert code == 1
    assert f"error: broker {url}: " in err
    assert f"the TLS handshake failed: is port {mosquitto.port} a TLS listener?" in err


async def test_over_tls_with_a_client_certificate(tls_mosquitto: Mosquitto) -> None:
    dashboard = tls_mosquitto.client_tls("dashboard")
    await publish(tls_mosquitto, "fleet/v2/unit-t9/status", "online", retain=True, tls=dashboard)
    code, out, err = await _fleet(
        "--mqtt", tls_mosquitto.url, "--once", "--json", "--wait-s", "0.5",
        "--ca-file", str(dashboard.ca_file), "--cert-file", str(dashboard.cert_file),
        "--key-file", str(dashboard.key_file),
    )  # fmt: skip
    assert code == 0, err
    [unit] = json.loads(out)
    assert (unit["unit"], unit["online"], unit["age_s"]) == ("unit-t9", True, None)


async def test_live_it_says_the_broker_is_away_and_stops_cleanly_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "unit_controller.cli", "fleet", "--mqtt", "mqtt://127.0.0.1:9",
        "--refresh-s", "0.2",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(WAIT_S):
            while b"broker away" not in await proc.stdout.readline():
                pass
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.communicate()
    assert proc.returncode == 0
