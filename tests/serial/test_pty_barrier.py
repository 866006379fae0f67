"""The lockstep clock's barrier: its own byte crosses, leaves nothing behind, and bytes written
earlier on another pty arrive. That they arrive *before* it is a kernel hint, not a promise (CI
once saw one write in ten still unseen), so the suite does not assert it; scripts/pty-barrier-rate
measures how often it holds."""

from __future__ import annotations

import os
import time
import tty

from hal.pty_barrier import PtyBarrier
from tests.serial.barrier_rate import main, measure, unread


def test_the_barrier_crosses_and_earlier_bytes_arrive() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    barrier = PtyBarrier()
    try:
        for _ in range(10):
            os.write(slave, b"req")  # a driver's request, on its way to the emulator
            assert barrier.cross(timeout_s=5.0)
        deadline = time.monotonic() + 10.0  # a bound for a loaded host, not a measurement
        while unread(master) < 30 and time.monotonic() < deadline:
            barrier.cross(timeout_s=1.0)
        assert unread(master) == 30
    finally:
        barrier.close()
        os.close(master)
        os.close(slave)


def test_the_barrier_leaves_nothing_of_its_own_behind() -> None:
    barrier = PtyBarrier()
    try:
        for _ in range(5):
            assert barrier.cross(timeout_s=5.0)
        assert unread(barrier._slave) == 0
        assert unread(barrier._master) == 0
    finally:
        barrier.close()


def test_the_rate_script_counts_every_write_once() -> None:
    for rounds in (0, 1, 2):
        count = measure(trials=20, rounds=rounds)
        assert count.tried == 20
        assert 0 <= count.missed <= 20
    assert main(["--trials", "5"]) == 0
