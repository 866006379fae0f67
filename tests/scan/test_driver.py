"""The one scan loop's pacing and health checks (daemon and simulator share it)."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any, cast

from hal.clock import SystemClock, VirtualClock
from unit_controller.controller import UnitController
from unit_controller.scan.driver import SCAN_OVERRUN, SCAN_STALL, ScanDriver


class _Host:
    """The host's real time, moved by the test: a stopped process or a slow scan on demand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Controller:
    """Stands in for the controller: counts scans, records alarms; a scan may take host time."""

    def __init__(self, host: _Host, scan_s: float = 0.0) -> None:
        self.host = host
        self.scans = 0
        self.scan_s = scan_s
        self.alarms: list[dict[str, Any]] = []

    async def scan(self) -> None:
        self.scans += 1
        self.host.now += self.scan_s

    async def raise_alarm(self, **alarm: Any) -> None:
        self.alarms.append(alarm)


def _driver(controller: _Controller, clock: Any, steps: list[float], **kw: float) -> ScanDriver:
    async def before(now: float, dt: float) -> None:
        steps.append(dt)

    return ScanDriver(
        controller=cast(UnitController, controller),
        clock=clock,
        period_s=0.1,
        stall_alarm_s=kw.get("stall_alarm_s", 5.0),
        overrun_alarm_s=kw.get("overrun_alarm_s", 1.0),
        before_scan=before,
        real_time=controller.host,
    )


async def test_on_a_virtual_clock_each_scan_is_one_period_later() -> None:
    clock = VirtualClock()
    controller = _Controller(_Host())
    steps: list[float] = []
    driver = _driver(controller, clock, steps)
    for _ in range(3):
        assert await driver.wait()
        await driver.scan()
    assert controller.scans == 3
    assert abs(clock.monotonic() - 0.3) < 1e-9
    assert [round(dt, 9) for dt in steps] == [0.1, 0.1, 0.1]


async def test_a_slow_scan_raises_scan_overrun_with_its_length_once_a_minute() -> None:
    host = _Host()
    controller = _Controller(host, scan_s=1.5)
    driver = _driver(controller, SystemClock(), [], overrun_alarm_s=1.0)
    for _ in range(3):  # 4.5 s of host time: within the minute
        await driver.scan()
    assert [a["alarm_id"] for a in controller.alarms] == [SCAN_OVERRUN]
    assert "a scan took 1.50 s (limit 1 s)" in controller.alarms[0]["message"]
    host.now += 60.0
    await driver.scan()
    assert len(controller.alarms) == 2


async def test_a_loop_that_stood_still_raises_scan_stall_with_its_length() -> None:
    host = _Host()
    controller = _Controller(host)
    driver = _driver(controller, SystemClock(), [], stall_alarm_s=5.0)
    assert await driver.wait()
    await driver.scan()
    assert controller.alarms == []
    host.now += 15.0  # SIGSTOP for 15 s
    assert await driver.wait()
    (alarm,) = controller.alarms
    assert alarm["alarm_id"] == SCAN_STALL
    # 15 s stopped, less the wait for the next scan the loop asked for
    assert re.search(r"stood still for 1[45]\.\d s", alarm["message"]), alarm["message"]


async def test_wait_returns_false_once_stop_is_set() -> None:
    stop = asyncio.Event()
    stop.set()
    driver = _driver(_Controller(_Host()), SystemClock(), [])
    assert not await driver.wait(stop)


async def test_a_process_stopped_mid_scan_is_a_stall_not_an_overrun() -> None:
    host = _Host()
    controller = _Controller(host, scan_s=12.0)  # SIGSTOP while the scan ran
    driver = _driver(controller, SystemClock(), [], stall_alarm_s=5.0, overrun_alarm_s=1.0)
    await driver.scan()
    assert [a["alarm_id"] for a in controller.alarms] == [SCAN_STALL]
    controller.scan_s = 0.0
    assert await driver.wait()
    await driver.scan()
    assert len(controller.alarms) == 1  # counted once


async def test_a_stop_during_the_wait_ends_it_at_once_with_false() -> None:
    stop = asyncio.Event()
    driver = ScanDriver(
        controller=cast(UnitController, _Controller(_Host())),
        clock=SystemClock(),
        period_s=3600.0,  # the next scan an hour away: only the stop can end this wait
        stall_alarm_s=5.0,
        overrun_alarm_s=1.0,
    )
    assert await driver.wait(stop)  # the first scan is due at once
    waiting = asyncio.create_task(driver.wait(stop))
    await asyncio.sleep(0)
    assert not waiting.done()
    stop.set()
    async with asyncio.timeout(30):
        assert not await waiting
    driver.close()


async def test_waiting_for_scans_makes_no_task_per_scan() -> None:
    loop = asyncio.get_running_loop()
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kw)

    stop = asyncio.Event()
    controller = _Controller(_Host())
    driver = ScanDriver(
        controller=cast(UnitController, controller),
        clock=SystemClock(),
        period_s=0.001,
        stall_alarm_s=5.0,
        overrun_alarm_s=1.0,
    )
    loop.set_task_factory(factory)
    try:
        for _ in range(20):
            assert await driver.wait(stop)
            await driver.scan()
    finally:
        loop.set_task_factory(None)
        driver.close()
    assert controller.scans == 20
    assert made == ["Event.wait"]  # one watch on the stop event for the driver's life


async def test_each_scan_records_how_late_it_started_and_how_long_it_took() -> None:
    host = _Host()
    controller = _Controller(host, scan_s=0.002)
    driver = _driver(controller, SystemClock(), [])
    assert await driver.wait()  # due at once: the host's clock says when
    host.now += 0.004  # the loop got to the scan 4 ms after it was due
    await driver.scan()
    summary = driver.times.summary()
    assert summary["scans"] == 1
    assert summary["lateness_ms"]["max"] == 4.0
    assert summary["scan_ms"]["max"] == 2.0


async def test_a_scan_on_simulated_time_records_no_lateness() -> None:
    controller = _Controller(_Host())
    driver = _driver(controller, VirtualClock(), [])
    for _ in range(3):
        assert await driver.wait()
        await driver.scan()
    summary = driver.times.summary()
    assert summary["scans"] == 3
    assert summary["lateness_ms"] == {"p50": None, "p99": None, "max": None}


async def test_the_wake_up_timer_lives_as_long_as_the_driver_and_no_longer() -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0

    stop = asyncio.Event()
    before = open_fds()
    driver = ScanDriver(
        controller=cast(UnitController, _Controller(_Host())),
        clock=SystemClock(),
        period_s=0.001,
        stall_alarm_s=5.0,
        overrun_alarm_s=1.0,
    )
    try:
        for _ in range(20):
            assert await driver.wait(stop)
            await driver.scan()
        assert open_fds() <= before + 1  # one timer for every wait, not one each
    finally:
        driver.close()
    assert open_fds() == before
