"""Benchmark: what the fleet link costs the scan, and how fast the outbox drains.

Runs the co-precipitation batch as fast as possible twice, without and with MQTT to a Mosquitto
this script starts on a free loopback port (~11 800 telemetry messages). Prints figures; asserts
nothing. Run: .venv/bin/python bench/bench_fleet.py
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from unit_controller.config import UnitConfig, load_config, with_overrides
from unit_controller.logs import configure_logging
from unit_controller.sim.runner import SimOptions, SimulationRun


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _broker(directory: Path, port: int) -> subprocess.Popen[bytes]:
    config = directory / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "max_queued_messages 0"]
    if os.geteuid() == 0:
        lines.append("user root")
    config.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        ["/usr/sbin/mosquitto", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("mosquitto did not start")


def _batch(config: UnitConfig) -> tuple[float, int, dict[str, object]]:
    run = SimulationRun(
        config=config, options=SimOptions(recipe="coprecipitation", seed=1), out=io.StringIO()
    )
    scans = 0

    def count(_: object) -> None:
        nonlocal scans
        scans += 1

    run.watch(count)
    start = time.perf_counter()
    result = asyncio.run(run.run())
    return time.perf_counter() - start, scans, result.summary


def main() -> None:
    configure_logging("error")
    base = load_config()
    wall, scans, _ = _batch(base)
    print(f"without MQTT: {scans} scans in {wall:.2f} s: {wall / scans * 1e6:.0f} µs per scan")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = _free_port()
        broker = _broker(directory, port)
        try:
            config = with_overrides(
                base, mqtt_url=f"mqtt://127.0.0.1:{port}", state_dir=directory / "state"
            )
            wall_mqtt, scans, summary = _batch(config)
        finally:
            broker.terminate()
            broker.wait(10)
    fleet = summary["mqtt"]
    assert isinstance(fleet, dict)
    print(
        f"with MQTT:    {scans} scans in {wall_mqtt:.2f} s: {wall_mqtt / scans * 1e6:.0f} µs per "
        f"scan, including the wait for the outbox to drain"
    )
    print(
        f"  {fleet['telemetry_messages']} telemetry messages, drained: {fleet['drained']}, "
        f"left: {fleet['left_in_outbox']}, offline published: {fleet['offline_published']}"
    )


if __name__ == "__main__":
    main()
