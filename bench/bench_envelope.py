"""Benchmark: wall time of the design-envelope run the issue judges control by, and its figures.

Run: .venv/bin/python bench/bench_envelope.py [runs] [jobs]  (default 8 plants, every core).
Prints figures; asserts nothing (speed targets are checked here, never in tests).
"""

from __future__ import annotations

import sys
import time

from unit_controller.config import load_config
from unit_controller.logs import configure_logging
from unit_controller.sim.envelope_runner import EnvelopeOptions, default_jobs, run_envelope

# Issue 9 target: `envelope --recipe coprecipitation --runs 8 --seed 1` in under 5 min on 2 cores.
TARGET_S = 300.0


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else default_jobs()
    configure_logging("error")
    options = EnvelopeOptions(recipe="coprecipitation", runs=runs, seed=1, jobs=jobs)
    start = time.perf_counter()
    report = run_envelope(load_config(), options)
    wall = time.perf_counter() - start
    summary = report["summary"]
    print(f"envelope coprecipitation: {runs} plants × 2 controllers on {jobs} process(es)")
    print(f"  {wall:.1f} s wall, {wall / (2 * runs):.1f} s per batch")
    print(
        f"  complete {summary['complete']}/{runs}, true pH in band median "
        f"{summary['median_true_in_band']:.3f} worst {summary['worst_true_in_band']:.3f}, "
        f"worst IAE ratio pH {summary['worst_iae_ratio_ph']} "
        f"(control {summary['worst_iae_ratio_ph_control']})"
    )
    if runs == 8:
        verdict = "within" if wall < TARGET_S else "OVER"
        print(f"  {verdict} the {TARGET_S:.0f} s target (8 plants, 2 cores)")


if __name__ == "__main__":
    main()
