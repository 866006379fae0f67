"""Benchmark: can `unit-controller fleet` keep up with a big fleet on one core?

Starts a Mosquitto on a free loopback port, the load generator (bench/fleet_load.py: N units at
1 Hz, QoS 1, each message stamped when sent) and the live fleet view (the real command, its
table redrawn every second to /dev/null: every row rendered, more than a terminal shows) with
`--stats-file`. Reports the view's CPU (% of one core), the worst second's lag p99 and the
largest lag (receipt - stamp), and the units it saw. Goal (issue 16): 1,000 units at 1 Hz on
one core with under 2 s of lag. Prints JSON; exit 1 if the goal is missed.

    .venv/bin/python bench/bench_fleet_view.py [--units 1000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import Mosquitto, usage

ROOT = Path(__file__).resolve().parents[1]
LAG_GOAL_S = 2.0
CPU_GOAL_PERCENT = 100.0


def measure(*, units: int, seconds: float, rate_hz: float = 1.0) -> dict[str, Any]:
    """Run the three processes for `seconds` of load; the figures."""
    with (
        tempfile.TemporaryDirectory(prefix="uc-fleet-bench-") as work,
        Mosquitto(Path(work) / "mosquitto") as broker,
    ):
        stats = Path(work) / "stats.json"
        view = subprocess.Popen(
            [sys.executable, "-m", "unit_controller.cli", "fleet", "--mqtt", broker.url,
             "--stats-file", str(stats)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not stats.exists():
                assert view.poll() is None, "the fleet view exited"
                assert time.monotonic() < deadline, "the fleet view wrote no stats"
                time.sleep(0.05)
            load = subprocess.Popen(
                [sys.executable, "-m", "bench.fleet_load", "--port", str(broker.port),
                 "--units", str(units), "--rate-hz", str(rate_hz), "--seconds", str(seconds)],
                cwd=ROOT, stdout=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(1.5)  # the generator connects and publishes the retained messages
            cpu0, t0 = usage(view.pid).cpu_s, time.monotonic()
            worst_p99, worst_max, seconds_seen, units_seen = 0.0, 0.0, 0, 0
            last_at = None
            while load.poll() is None:
                time.sleep(0.25)
                try:
                    figures = json.loads(stats.read_text())
                except (OSError, ValueError):
                    continue
                if figures["at"] == last_at:
                    continue
                last_at = figures["at"]
                lag = figures["lag"]
                units_seen = max(units_seen, figures["units"])
                if lag["count"]:
                    seconds_seen += 1
                    worst_p99 = max(worst_p99, lag["p99_s"])
                    worst_max = max(worst_max, lag["max_s"])
            cpu1, t1 = usage(view.pid).cpu_s, time.monotonic()
            out, _ = load.communicate(timeout=60)
            sent = json.loads(out)["sent"]
            received = json.loads(stats.read_text())["received"]
        finally:
            view.terminate()
            view.wait(30)
    cpu_percent = 100.0 * (cpu1 - cpu0) / (t1 - t0)
    return {
        "units": units,
        "rate_hz": rate_hz,
        "seconds": seconds,
        "telemetry_sent": sent,
        "messages_received": received,
        "units_seen": units_seen,
        "view_cpu_percent": round(cpu_percent, 1),
        "lag_p99_worst_second_s": round(worst_p99, 3),
        "lag_max_s": round(worst_max, 3),
        "seconds_with_telemetry": seconds_seen,
        "goal": f"lag < {LAG_GOAL_S:g} s and CPU < {CPU_GOAL_PERCENT:g} % of one core",
        "pass": worst_max < LAG_GOAL_S and cpu_percent < CPU_GOAL_PERCENT and units_seen == units,
    }


def main(argv: list[str] | None = None) -> int:
    """The command line; prints the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate-hz", type=float, default=1.0)
    args = parser.parse_args(argv)
    figures = measure(units=args.units, seconds=args.seconds, rate_hz=args.rate_hz)
    print(json.dumps(figures, indent=2))
    return 0 if figures["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
