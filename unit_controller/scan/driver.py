"""The one scan loop's pacing: a scan every period of the unit's clock, and the health of the
loop itself (a scan that overran, a loop that stood still). Used by the daemon and the simulator.

Raises `scan_overrun` and `scan_stall` through the controller; changes no output itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from hal.clock import Clock, LockstepClock, ScaledClock, VirtualClock
from hal.log import get_logger
from unit_controller.controller import Snapshot, UnitController
from unit_controller.interlocks import Priority
from unit_controller.scan.timing import ScanTimes
from unit_controller.scan.wake_timer import WakeTimer, wake_timer

log = get_logger(__name__)

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
        times: ScanTimes | None = None,
    ) -> None:
        """`stepped_at`: when what runs before the scan last ran (default: now); `real_time`:
        the host's monotonic seconds, by which stalls, overruns and lateness are judged;
        `times`: where each scan's lateness and duration go (default: a new one)."""
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
        self.times = times or ScanTimes(period_s=period_s)
        self._due: float | None = None  # real time the next scan is due (None: no wait yet)
        self._sleeping: asyncio.Future[None] | None = None
        self._stop_watch: asyncio.Task[bool] | None = None
        # Made at the first real-time wait, in the loop that waits (a timerfd on Linux).
        self._timer: WakeTimer | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._wake_up = self._wake_sleeper  # one bound method for the driver's life

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
        if stop is not None and stop.is_set():
            return False
        # Made before the due time is stamped: the first one loads ctypes (Python 3.11).
        self._timer_in(asyncio.get_running_loop())
        wait_s = max(0.0, self._next_at - clock.monotonic()) / clock_speed(clock)
        self._due = self._real_time() + wait_s
        await self._sleep(wait_s, stop)
        if stop is not None and stop.is_set():
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

    async def _sleep(self, wait_s: float, stop: asyncio.Event | None) -> None:
        """Sleep `wait_s` real seconds, or until `stop` is set. One future a scan, freed as the
        scan starts, and one timer for the driver's life: no task, no timeout exception, no
        reference cycle for the garbage collector (what `wait_for(stop.wait(), …)` cost)."""
        loop = asyncio.get_running_loop()
        if stop is not None and self._stop_watch is None:
            self._stop_watch = loop.create_task(stop.wait(), name="scan-stop-watch")
            self._stop_watch.add_done_callback(self._stop_set)
        timer = self._timer_in(loop)
        woke: asyncio.Future[None] = loop.create_future()
        self._sleeping = woke
        timer.call_later(wait_s, self._wake_up)
        try:
            await woke
        finally:
            timer.cancel()
            self._sleeping = None

    def _timer_in(self, loop: asyncio.AbstractEventLoop) -> WakeTimer:
        if self._timer is None or self._timer_loop is not loop:
            if self._timer is not None:
                self._timer.close()
            self._timer, self._timer_loop = wake_timer(loop), loop
        return self._timer

    def _wake_sleeper(self) -> None:
        if self._sleeping is not None:
            _wake(self._sleeping)

    def _stop_set(self, _: asyncio.Task[bool]) -> None:
        self._wake_sleeper()

    def close(self) -> None:
        """Stop watching the stop event and free the wake-up timer (the scan loop has ended)."""
        if self._stop_watch is not None:
            self._stop_watch.cancel()
            self._stop_watch = None
        if self._timer is not None:
            self._timer.close()
            self._timer, self._timer_loop = None, None

    async def scan(self) -> Snapshot:
        """Step what runs before the scan (a simulated plant), then one scan; a scan that took
        longer than `overrun_alarm_s` of real time raises `scan_overrun`."""
        begun = self._real_time()
        now = self._clock.monotonic()
        dt, self._stepped_at = now - self._stepped_at, now
        if self._before_scan is not None:
            await self._before_scan(now, dt)
        started = self._real_time()
        try:
            return await self._controller.scan()
        finally:
            took_s = self._real_time() - started
            due, self._due = self._due, None
            late_s = None if self._virtual or due is None else begun - due
            self.times.record(late_s=late_s, took_s=took_s)
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


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
