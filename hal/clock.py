"""Clocks: the one source of time for control, timeouts and the simulator.

Never reads wall-clock time for control; `VirtualClock` lets a whole batch run in seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time in seconds and a sleep that honours it."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    """Real monotonic time, for the daemon on a real unit."""

    def monotonic(self) -> float:
        """Seconds from `time.monotonic`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """Simulated time that only moves when the simulation driver advances it."""

    def __init__(self, *, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        """The current simulated time in seconds."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the driver has advanced the clock by `seconds`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._order), future))
        await future

    def advance_to(self, when: float) -> None:
        """Move time forward to `when` and wake every sleeper whose deadline has passed."""
        if when < self._now:
            raise ValueError(f"virtual time cannot go back ({when} < {self._now})")
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= when:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        self.advance_to(self._now + seconds)


class ScaledClock:
    """Real time sped up `speed` times: for device emulators and drivers talking over real ptys.

    With `max_stall_s`, a gap between two readings longer than that (the host stalled) counts as
    only `max_stall_s` of real time, so a 100 ms hiccup at 30x is not 3 s of silent devices.
    Anything that reads the clock at least that often sees no difference.
    """

    def __init__(self, *, speed: float = 1.0, max_stall_s: float | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self._max_stall_s = max_stall_s
        self._real = time.monotonic()
        self._now = 0.0

    def monotonic(self) -> float:
        """Scaled seconds since the clock was made."""
        real = time.monotonic()
        step = real - self._real
        if self._max_stall_s is not None:
            step = min(step, self._max_stall_s)
        self._real = real
        self._now += step * self.speed
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of scaled time (seconds / speed of real time)."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)
