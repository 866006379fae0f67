"""The long fuzz run: `scripts/fuzz [--inputs N] [--seed S]` (default 10^5 inputs in all).

Prints per surface: tried, accepted, refused, crashed, and state changes made by refused
inputs; exits 1 if anything crashed or a refusal changed the state.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

import structlog

from tests.fuzz.surfaces import SURFACES, fuzz_all


def main(argv: list[str] | None = None) -> int:
    """Run it and print the counts."""
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__)
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs in all")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.inputs < len(SURFACES):
        parser.error(f"--inputs must be at least {len(SURFACES)}")
    # The refusals log a warning each: thousands of lines say nothing here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    started = time.monotonic()
    tallies = asyncio.run(fuzz_all(seed=args.seed, per_surface=args.inputs // len(SURFACES)))
    print(f"{'surface':16} {'tried':>8} {'accepted':>9} {'refused':>8} {'crashed':>8} "
          f"{'changed':>8}")  # fmt: skip
    bad = 0
    for name, t in tallies.items():
        print(f"{name:16} {t.tried:8} {t.accepted:9} {t.refused:8} {t.crashed:8} "
              f"{t.changed_by_refusal:8}")  # fmt: skip
        for crash, n in t.crashes.most_common(5):
            print(f"  crash x{n}: {crash}")
        bad += t.crashed + t.changed_by_refusal
    total = sum(t.tried for t in tallies.values())
    verdict = "no crash, no state changed by a refusal" if not bad else f"{bad} FAILURES"
    print(f"{total} inputs in {time.monotonic() - started:.0f} s; {verdict}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
