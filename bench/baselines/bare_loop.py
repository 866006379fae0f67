"""The anchor for scan lateness and daemon CPU: a bare asyncio loop that wakes at absolute 100 ms
deadlines (loop.call_at) and does nothing else, run as its own process.

`python -m bench.baselines.bare_loop --seconds 20` prints one JSON line: start lateness (p50,
p99, max ms), wake-ups, and the CPU it used while looping (ns from /proc/self/schedstat).
Never does work a daemon would skip; never tuned to look better than it is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any

SCHEDSTAT = Path("/proc/self/schedstat")
ROOT = Path(__file__).resolve().parents[2]


def cpu_ns() -> int:
    """This process's CPU time in ns (all threads: the loop has only one)."""
    try:
        return int(SCHEDSTAT.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return int((usage.ru_utime + usage.ru_stime) * 1e9)


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


async def run(seconds: float, period_s: float) -> dict[str, Any]:
    """Wake every `period_s` on the absolute grid for `seconds`; lateness and CPU."""
    loop = asyncio.get_running_loop()
    samples = array("d")
    started_cpu, started = cpu_ns(), loop.time()
    deadline = started + period_s
    end = started + seconds
    while deadline <= end:
        woke: asyncio.Future[None] = loop.create_future()
        loop.call_at(deadline, woke.set_result, None)
        await woke
        now = loop.time()
        samples.append(now - deadline)
        # The next deadline on the grid; one missed altogether is skipped, not caught up.
        deadline += period_s
        while deadline < now:
            deadline += period_s
    took = loop.time() - started
    used_ns = cpu_ns() - started_cpu
    ordered = sorted(s * 1000 for s in samples)
    return {
        "samples": len(ordered),
        "p50_lateness_ms": _percentile(ordered, 50),
        "p99_lateness_ms": _percentile(ordered, 99),
        "max_lateness_ms": ordered[-1] if ordered else math.nan,
        "seconds": took,
        "cpu_s": used_ns / 1e9,
        "cpu_percent": 100 * used_ns / 1e9 / took if took > 0 else math.nan,
    }


def run_process(seconds: float, period_s: float = 0.1) -> dict[str, Any]:
    """Run the bare loop as its own process (as the daemon is) for `seconds`; its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.baselines.bare_loop", "--seconds", str(seconds),
         "--period", str(period_s)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run and print the JSON line."""
    parser = argparse.ArgumentParser(prog="bare_loop", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--period", type=float, default=0.1, help="seconds between deadlines")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = asyncio.run(run(args.seconds, args.period))
    result["wall_s"] = time.perf_counter() - started
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
