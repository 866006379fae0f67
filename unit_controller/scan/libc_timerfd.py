"""timerfd_create and timerfd_settime from libc through ctypes, for Python before 3.13 (which
has no `os.timerfd_*`). Linux only; raises OSError as the calls do."""

from __future__ import annotations

import ctypes
import os

CLOCK_MONOTONIC = 1  # <time.h>: the clock asyncio's loop.time() and time.monotonic() read


class _Timespec(ctypes.Structure):
    # `long` for both: the ABI of glibc's `timerfd_settime` symbol on 32- and 64-bit Linux.
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class LibcTimerfd:
    """timerfd_create/timerfd_settime from libc (Python < 3.13 has no os.timerfd_*)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._create = libc.timerfd_create
        self._create.argtypes = (ctypes.c_int, ctypes.c_int)
        self._create.restype = ctypes.c_int
        self._settime = libc.timerfd_settime
        self._settime.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.POINTER(_Itimerspec),
        )
        self._settime.restype = ctypes.c_int
        self._spec = _Itimerspec()

    def create(self) -> int:
        fd = int(self._create(CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"timerfd_create: {os.strerror(errno)}")
        return fd

    def settime(self, fd: int, delay_s: float) -> None:
        seconds = int(delay_s)
        value = self._spec.it_value
        value.tv_sec = seconds
        value.tv_nsec = int((delay_s - seconds) * 1e9)
        if self._settime(fd, 0, ctypes.byref(self._spec), None) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"timerfd_settime: {os.strerror(errno)}")
