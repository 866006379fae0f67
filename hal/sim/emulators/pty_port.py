"""A pseudo-terminal that plays a device's serial port, at a stable symlink that can vanish.

The emulator holds the master side; a driver opens `path` (like /dev/serial/by-id/...). Never
blocks the event loop: the master fd is non-blocking and read through `loop.add_reader`.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import os
import termios
import time
import tty
from pathlib import Path

from hal.log import get_logger

log = get_logger(__name__)

_READ_CHUNK = 4096
# Real seconds the same bytes may sit unread on a pty and still count as on their way: a reader
# a loaded host has not run yet, not one that stopped reading.
STUCK_S = 0.02
_now = time.monotonic  # real time, by which a stuck reader is judged


class PortUnplugged(Exception):
    """The port was closed for good while a reader waited on it."""


class PtyPort:
    """One emulated serial port: a pty pair and a symlink to its slave, unpluggable at will."""

    def __init__(self, *, directory: Path, name: str) -> None:
        self.path = str(directory / name)
        self._buffer = bytearray()
        self._data = asyncio.Event()
        self._master = -1
        self._slave = -1
        self._closed = False
        self._last_unread = (0, 0)
        self._unread_since = 0.0  # real time when the unread counts last changed
        self.slave_name = ""
        self.plugs = 0
        self._plug()

    @property
    def plugged(self) -> bool:
        """True while the pty exists and `path` points at it."""
        return self._master >= 0

    def _plug(self) -> None:
        master, slave = os.openpty()
        # Raw: no echo, no CR/NL translation; the bytes are the device's bytes.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.slave_name = os.ttyname(slave)
        # Re-point atomically so a driver never sees a half-made link.
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(self.slave_name, tmp)
        os.replace(tmp, self.path)
        asyncio.get_running_loop().add_reader(master, self._readable)
        self.plugs += 1

    def _readable(self) -> None:
        try:
            chunk = os.read(self._master, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            # EIO: nobody holds the slave. We keep our own slave fd open, so this is rare.
            return
        if chunk:
            self._buffer.extend(chunk)
            self._data.set()

    def _unplug(self) -> None:
        if not self.plugged:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        # Closing the master hangs up the slave: the driver's fd reads EOF/EIO from now on.
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        self._buffer.clear()

    def unplug(self) -> None:
        """Pull the USB adapter: the pty closes and `path` disappears."""
        self._unplug()
        log.info("pty.unplugged", path=self.path)

    def replug(self) -> None:
        """Plug it back in: a new pty, with `path` pointing at it."""
        if self._closed:
            raise PortUnplugged(f"{self.path} is closed")
        self._unplug()
        self._plug()
        log.info("pty.replugged", path=self.path, slave=self.slave_name)

    def close(self) -> None:
        """Remove the port for good; waiting readers get PortUnplugged."""
        self._closed = True
        self._unplug()
        self._data.set()

    def pending(self) -> bool:
        """True while bytes are on their way across the pty, either way (for a LockstepClock).

        Bytes that sit unread, the same count, for `STUCK_S` of real time have nobody reading
        them (a driver that stopped, an emulator told to be silent): they are not on their way.
        Sooner than that a loaded host may simply not have run their reader yet.
        """
        counts = (self._unread(self._master), self._unread(self._slave))
        now = _now()
        if counts != self._last_unread:
            self._last_unread = counts
            self._unread_since = now
            return any(counts)
        return any(counts) and now - self._unread_since < STUCK_S

    def drop_unread(self) -> None:
        """Drop bytes the driver side has not read, as reopening a USB adapter does."""
        if self.plugged:
            with contextlib.suppress(OSError):
                termios.tcflush(self._slave, termios.TCIFLUSH)

    @staticmethod
    def _unread(fd: int) -> int:
        if fd < 0:
            return 0
        count = array.array("i", [0])
        try:
            fcntl.ioctl(fd, termios.FIONREAD, count)
        except OSError:
            return 0
        return count[0]

    def write(self, data: bytes) -> None:
        """Send bytes to the driver; dropped while unplugged or if nobody reads (like a UART)."""
        if not self.plugged or not data:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._master, data)

    async def read(self) -> bytes:
        """Wait for bytes from the driver and return all received so far."""
        while not self._buffer:
            if self._closed:
                raise PortUnplugged(f"{self.path} is closed")
            self._data.clear()
            await self._data.wait()
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def read_until(self, separator: bytes = b"\r") -> bytes:
        """Wait for one `separator`-terminated message and return it without the separator."""
        while True:
            index = self._buffer.find(separator)
            if index >= 0:
                message = bytes(self._buffer[:index])
                del self._buffer[: index + len(separator)]
                return message
            if self._closed:
                raise PortUnplugged(f"{self.path} is closed")
            self._data.clear()
            await self._data.wait()
