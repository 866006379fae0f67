"""The one scan loop's pacing: a scan every period of the unit's clock, and the health of the
loop itself (a scan that overran, a loop that stood still). Used by the daemon and the simulator.

Raises `scan_overrun` and `scan_stall` through the controller; changes no output itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from hal.clock import Clock, LockstepClock, ScaledClock, VirtualClock
from unit_controller.controller import Snapshot, UnitController
from unit_controller.interlocks import Priority

log = structlog.get_logger(__name__)

SCAN_STALL = "scan_stall"
SCAN_OVERRUN = "scan_overrun"
# One overrun alarm a minute at most: a loaded host must not flood the alarm list.
_OVERRUN_ALARM_EVERY_S = 60.0

# What runs just before each scan with the seconds since the last one (a simulated plant steps).
BeforeScan = Callable[[float, float], Awaitable[None]]


def clock_speed(clock: Clock) -> float:
    """How many clock seconds pass per real second (1 on a unit)."""
    return clock.speed if isinstance(clock, ScaledClock) else 1.0


class ScanDriver:
    """Runs the controller's scan every `period_s` of `clock`, and watches the loop's health.

    On a `VirtualClock` time moves only by the scan period (simulations and tests); on a real
    clock the driver waits for each scan time, and after a stall goes on rather than catch up.
    """

    def __init__(
        self,
        *,
        controller: UnitController,
        clock: Clock,
        period_s: float,
        stall_alarm_s: float,
        overrun_alarm_s: float,
        before_scan: BeforeScan | None = None,
        stepped_at: float | None = None,
        real_time: Callable[[], float] = time.monotonic,
    ) -> None:
        """`stepped_at`: when what runs before the scan last ran (default: now); `real_time`:
        the host's monotonic seconds, by which stalls and overruns are judged."""
        self._controller = controller
        self._clock = clock
        self._period_s = period_s
        self._stall_alarm_s = stall_alarm_s
        self._overrun_alarm_s = overrun_alarm_s
        self._before_scan = before_scan
        # Simulated time says nothing of the host's stalls: no stall or overrun alarms on it.
        self._virtual = isinstance(clock, VirtualClock | LockstepClock)
        self._real_time = real_time
        self._next_at = clock.monotonic()
        self._stepped_at = self._next_at if stepped_at is None else stepped_at
        self._woke = real_time()
        self._overrun_alarmed_at = -float("inf")

    async def wait(self, stop: asyncio.Event | None = None) -> bool:
        """Wait for the next scan time; False when `stop` was set meanwhile."""
        clock = self._clock
        if isinstance(clock, VirtualClock):
            clock.advance(self._period_s)
            return stop is None or not stop.is_set()
        if isinstance(clock, LockstepClock):
            # Time moves when every task waits: sleep on it, then look at `stop`.
            await clock.sleep(self._next_at - clock.monotonic())
            self._next_at = max(self._next_at + self._period_s, clock.monotonic())
            return stop is None or not stop.is_set()
        wait_s = max(0.0, self._next_at - clock.monotonic()) / clock_speed(clock)
        if stop is None:
            await asyncio.sleep(wait_s)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait_s)
            if stop.is_set():
                return False
        # Real time the loop did not run beyond the wait it asked for: the process was stopped
        # (SIGSTOP, a debugger) or the host froze; outputs were not renewed meanwhile.
        stalled_s = self._real_time() - self._woke - wait_s
        self._woke = self._real_time()
        if stalled_s >= self._stall_alarm_s:
            await self._stalled(stalled_s)
        now = clock.monotonic()
        self._next_at = max(self._next_at + self._period_s, now)
        return True

    async def scan(self) -> Snapshot:
        """Step what runs before the scan (a simulated plant), then one scan; a scan that took
        longer than `overrun_alarm_s` of real time raises `scan_overrun`."""
        now = self._clock.monotonic()
        dt, self._stepped_at = now - self._stepped_at, now
        if self._before_scan is not None:
            await self._before_scan(now, dt)
        started = self._real_time()
        try:
            return await self._controller.scan()
        finally:
            took_s = self._real_time() - started
            if not self._virtual and took_s >= self._stall_alarm_s:
                # The process was stopped mid-scan (or the scan hung that long): a stall,
                # counted once (the next wait starts from here).
                await self._stalled(took_s)
                self._woke = self._real_time()
            elif not self._virtual and took_s >= self._overrun_alarm_s:
                await self._overran(took_s)

    async def _stalled(self, stalled_s: float) -> None:
        log.warning("scan.stall", seconds=round(stalled_s, 1))
        # Its cause is over: it stays listed (unacknowledged) until someone has looked.
        await self._controller.raise_alarm(
            alarm_id=SCAN_STALL,
            tag="controller",
            priority=Priority.MEDIUM,
            over=True,
            message=f"the scan loop stood still for {stalled_s:.1f} s (process stopped or host "
            "frozen): outputs were not renewed and may have dropped out",
        )

    async def _overran(self, took_s: float) -> None:
        log.warning("scan.overrun", seconds=round(took_s, 3))
        if self._real_time() - self._overrun_alarmed_at < _OVERRUN_ALARM_EVERY_S:
            return
        self._overrun_alarmed_at = self._real_time()
        await self._controller.raise_alarm(
            alarm_id=SCAN_OVERRUN,
            tag="controller",
            priority=Priority.LOW,
            over=True,
            message=f"a scan took {took_s:.2f} s (limit {self._overrun_alarm_s:g} s): the host "
            "is overloaded or a device call blocked the loop",
        )
