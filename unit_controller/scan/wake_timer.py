"""The scan's wake-up: a Linux timerfd the event loop reads, so a scan starts on time to the
tenth of a millisecond rather than to the millisecond.

asyncio sleeps in epoll, whose timeout is whole milliseconds rounded up: when anything else
wakes the loop shortly before a scan is due (a PUBACK, the outbox's thread, a console), the
loop goes back to sleep for at least one more millisecond, and the scan starts up to 2 ms
late (p99 ~2 ms in a daemon with MQTT and a `watch` client, against ~1.3 ms for a loop that
nothing else wakes). A timerfd becomes readable at its expiry whatever else the loop does.

`os.timerfd_create` where Python has it (3.13+); libc through ctypes before that; the loop's own
timer where neither is there (not Linux), as before.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from hal.log import get_logger

if TYPE_CHECKING:
    from unit_controller.scan.libc_timerfd import LibcTimerfd

log = get_logger(__name__)


class WakeTimer(Protocol):
    """A one-shot wake-up: at most one callback armed at a time."""

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run `callback` in the loop `delay_s` from now (replaces whatever was armed)."""

    def cancel(self) -> None:
        """Disarm: the armed callback (if any) will not run."""

    def close(self) -> None:
        """Disarm and free what the timer holds."""


class LoopTimer:
    """The event loop's own timer (millisecond wake-ups): where no timerfd is there."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run `callback` in the loop `delay_s` from now."""
        self.cancel()
        self._handle = self._loop.call_later(delay_s, callback)

    def cancel(self) -> None:
        """Disarm."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        """Disarm."""
        self.cancel()


class TimerfdTimer:
    """A timerfd on CLOCK_MONOTONIC watched by the loop: wakes it at the expiry to within the
    kernel's timer slack (~50 µs)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._libc: LibcTimerfd | None = None
        if not hasattr(os, "timerfd_create"):
            # ctypes only here, at the first scan's wait: after READY, off the start path.
            from unit_controller.scan.libc_timerfd import LibcTimerfd

            self._libc = LibcTimerfd()
        if self._libc is None:
            self._fd = os.timerfd_create(  # type: ignore[attr-defined,unused-ignore]
                time.CLOCK_MONOTONIC,
                flags=os.TFD_NONBLOCK | os.TFD_CLOEXEC,  # type: ignore[attr-defined,unused-ignore]
            )
        else:
            self._fd = self._libc.create()
        self._callback: Callable[[], None] | None = None
        try:
            loop.add_reader(self._fd, self._expired)
        except BaseException:
            os.close(self._fd)
            raise

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run `callback` in the loop `delay_s` from now."""
        self._callback = callback
        # 0 would disarm the timer: the shortest wait is a nanosecond.
        self._set(max(delay_s, 1e-9))

    def cancel(self) -> None:
        """Disarm (an expiry already read is dropped too)."""
        if self._callback is not None:
            self._callback = None
            self._set(0.0)

    def close(self) -> None:
        """Disarm, stop watching the descriptor and close it."""
        if self._fd < 0:
            return
        self._callback = None
        fd, self._fd = self._fd, -1
        try:
            self._loop.remove_reader(fd)
        finally:
            os.close(fd)

    def _set(self, delay_s: float) -> None:
        if self._libc is None:
            os.timerfd_settime(self._fd, initial=delay_s)  # type: ignore[attr-defined,unused-ignore]
        else:
            self._libc.settime(self._fd, delay_s)

    def _expired(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return  # re-armed or disarmed since the kernel marked it readable
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()


def wake_timer(loop: asyncio.AbstractEventLoop) -> WakeTimer:
    """A timerfd timer where the platform has one, else the loop's own timer."""
    if sys.platform.startswith("linux"):
        try:
            return TimerfdTimer(loop)
        except (OSError, AttributeError, NotImplementedError) as exc:
            log.warning("scan.timerfd_unavailable", reason=str(exc))
    return LoopTimer(loop)
