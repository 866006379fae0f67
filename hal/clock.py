"""Clocks: the one source of time for control, timeouts and the simulator.

Never reads wall-clock time for control; `VirtualClock` lets a whole batch run in seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from hal.pty_barrier import PtyBarrier


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


class _SimulatedTime:
    """Time that moves only when told to, and the sleepers waiting on it."""

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


class VirtualClock(_SimulatedTime):
    """Simulated time that only moves when the simulation driver advances it."""


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


class _CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, knowing whether any job is queued or running."""

    def __init__(self) -> None:
        super().__init__(thread_name_prefix="lockstep")
        self._jobs = 0
        self._lock = threading.Lock()

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        with self._lock:
            self._jobs += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._jobs -= 1

    def working(self) -> bool:
        """True while a job is queued or running."""
        return self._jobs > 0


class LockstepClock(_SimulatedTime):
    """Simulated time that moves only when the whole process waits: no task ready to run, no
    real-time timer about to fire, and nothing `busy` (bytes unread on an emulated port).

    For emulators and drivers talking over real ptys in tests: a loaded host runs the same
    exchange, only slower, instead of seeing replies come late. `run()` is the task that moves
    it; with `speed`, it never runs ahead of `speed` times real time.
    """

    def __init__(
        self,
        *,
        busy: Callable[[], bool] = lambda: False,
        speed: float | None = None,
        horizon_s: float = 0.05,
        max_step_s: float = 0.1,
    ) -> None:
        super().__init__()
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self._busy = [busy]
        self._horizon_s = horizon_s  # a real timer due this soon is work still to come
        # Small steps: bytes the kernel was slow to hand across cost at most this much time
        # before they are seen, never a whole timeout at once.
        self._max_step_s = max_step_s

    def also_busy(self, check: Callable[[], bool]) -> None:
        """Count `check()` returning True as work still going on (ports made later)."""
        self._busy.append(check)

    async def run(self) -> None:
        """Advance to each next deadline once everything waits; runs until cancelled."""
        loop = asyncio.get_running_loop()
        # Work in threads (opening a serial port, file I/O) is work too: count it.
        threads = _CountingExecutor()
        loop.set_default_executor(threads)
        self._busy.append(threads.working)
        barrier = PtyBarrier()
        try:
            await self._advance_forever(loop, barrier)
        finally:
            barrier.close()

    async def _advance_forever(self, loop: asyncio.AbstractEventLoop, barrier: PtyBarrier) -> None:
        real_start, sim_start = loop.time(), self.monotonic()
        while True:
            await self._settle(loop, barrier)
            if not self._sleepers:
                await asyncio.sleep(0.001)  # everything waits on I/O or another task
                continue
            when = self._sleepers[0][0]
            if self.speed is not None:
                early_s = real_start + (when - sim_start) / self.speed - loop.time()
                if early_s > 0:
                    await asyncio.sleep(min(early_s, self._horizon_s))
                    continue
            self.advance_to(max(min(when, self.monotonic() + self._max_step_s), self.monotonic()))

    async def _settle(self, loop: asyncio.AbstractEventLoop, barrier: PtyBarrier) -> None:
        while True:
            await asyncio.sleep(0)
            if self._working(loop):
                continue
            # Bytes just written to a pty reach its other side only when a kernel worker has
            # run: tens of microseconds quiet, milliseconds on a loaded host. Until then no
            # FIONREAD sees them. Our own byte crossing says the earlier ones have. Blocking is
            # deliberate: this task is the clock, and nothing else is waiting to run.
            barrier.cross()
            await asyncio.sleep(0)  # the selector (timeout 0) picks up whatever landed
            if not self._working(loop):
                return

    def _working(self, loop: asyncio.AbstractEventLoop) -> bool:
        # CPython's loop keeps its runnable callbacks in `_ready` and its timers in
        # `_scheduled`; another loop without them is judged by `busy` and the settle time alone.
        ready = getattr(loop, "_ready", ())
        if len(ready) > 0:
            return True
        soon = loop.time() + self._horizon_s
        timers = getattr(loop, "_scheduled", ())
        if any(not t.cancelled() and t.when() <= soon for t in timers):
            return True
        return any(check() for check in self._busy)
