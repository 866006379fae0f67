"""The lockstep clock's barrier: once its own byte has crossed, bytes written earlier on another
pty are readable there."""

from __future__ import annotations

import array
import fcntl
import os
import termios
import tty

from hal.pty_barrier import PtyBarrier


def _unread(fd: int) -> int:
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


def test_bytes_written_before_the_barrier_are_readable_after_it() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    barrier = PtyBarrier()
    try:
        for n in range(1, 11):
            os.write(slave, b"req")  # a driver's request, on its way to the emulator
            assert barrier.cross(timeout_s=5.0)
            assert _unread(master) == 3 * n
    finally:
        barrier.close()
        os.close(master)
        os.close(slave)


def test_the_barrier_leaves_nothing_of_its_own_behind() -> None:
    barrier = PtyBarrier()
    try:
        for _ in range(5):
            assert barrier.cross(timeout_s=5.0)
        assert _unread(barrier._slave) == 0
        assert _unread(barrier._master) == 0
    finally:
        barrier.close()
