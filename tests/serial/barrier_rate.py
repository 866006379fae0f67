"""How often bytes written before a `PtyBarrier.cross()` are still unseen after it:
`scripts/pty-barrier-rate [--trials N] [--rounds R]`.

The kernel hands pty bytes on in workers that may run side by side, so the barrier is a strong
hint, not a proof. The lockstep clock only needs it to be right nearly always (a miss costs a
small step of simulated time). Run this under the load you care about (CI, two busy loops) to
see how nearly; the suite cannot assert a rate without being flaky on some host.
"""

from __future__ import annotations

import argparse
import array
import fcntl
import os
import termios
import tty
from dataclasses import dataclass

from hal.pty_barrier import PtyBarrier


@dataclass(frozen=True)
class MissCount:
    """Writes tried, and how many the far side had not yet seen when the check came."""

    tried: int
    missed: int


def unread(fd: int) -> int:
    """Bytes readable on `fd` now (FIONREAD)."""
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


def measure(*, trials: int, rounds: int) -> MissCount:
    """Write 3 bytes to a fresh pty, cross with `rounds` (0: no barrier at all), check; `trials`
    times. Each write is waited for before the next, so one miss never counts twice."""
    master, slave = os.openpty()
    tty.setraw(slave)
    barrier = PtyBarrier()
    missed = 0
    try:
        for _ in range(trials):
            os.write(slave, b"req")
            if rounds:
                barrier.cross(rounds=rounds, timeout_s=5.0)
            if unread(master) < 3:
                missed += 1
                _wait_readable(master, 3)
            os.read(master, 64)
    finally:
        barrier.close()
        os.close(master)
        os.close(slave)
    return MissCount(tried=trials, missed=missed)


def _wait_readable(fd: int, size: int) -> None:
    for _ in range(5000):
        if unread(fd) >= size:
            return
        os.sched_yield()
    raise TimeoutError(f"{size} bytes never crossed the pty")


def main(argv: list[str] | None = None) -> int:
    """Print the miss count with no barrier and with the barrier's rounds."""
    parser = argparse.ArgumentParser(prog="scripts/pty-barrier-rate", description=__doc__)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="the barrier's rounds (default 2)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.rounds < 1:
        parser.error("--trials and --rounds must be at least 1")
    for rounds in (0, args.rounds):
        count = measure(trials=args.trials, rounds=rounds)
        label = "no barrier" if rounds == 0 else f"barrier, {rounds} rounds"
        print(f"{label:20} {count.missed:6} of {count.tried} writes unseen after it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
