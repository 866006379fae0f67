"""The scan's wake-up timer: a timerfd the loop reads on Linux, the loop's own timer elsewhere.

Real time, but never timed: each test waits for an event with a generous bound, and a "did not
fire" is checked against a later wake-up that did.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest

from unit_controller.scan import wake_timer as wake_timer_module
from unit_controller.scan.wake_timer import LoopTimer, TimerfdTimer, WakeTimer, wake_timer

BOUND_S = 30.0  # only a hung test ever gets near this

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux's")


async def _fired(timer: WakeTimer, delay_s: float, fired: list[str], name: str) -> asyncio.Event:
    done = asyncio.Event()

    def callback() -> None:
        fired.append(name)
        done.set()

    timer.call_later(delay_s, callback)
    return done


@pytest.fixture(params=["timerfd", "loop"])
async def timer(request: pytest.FixtureRequest) -> AsyncIterator[WakeTimer]:
    loop = asyncio.get_running_loop()
    if request.param == "timerfd":
        if not sys.platform.startswith("linux"):
            pytest.skip("timerfd is Linux's")
        made: WakeTimer = TimerfdTimer(loop)
    else:
        made = LoopTimer(loop)
    yield made
    made.close()


async def test_the_callback_runs_once_no_sooner_than_asked(timer: WakeTimer) -> None:
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    armed_at = loop.time()
    done = await _fired(timer, 0.02, fired, "a")
    async with asyncio.timeout(BOUND_S):
        await done.wait()
    # The kernel never wakes a timer early; the loop's clock reads the same monotonic time
    # (its own timer may run up to one clock resolution before its deadline).
    assert loop.time() - armed_at >= 0.02 - loop._clock_resolution  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    assert fired == ["a"]


async def test_a_cancelled_wake_up_never_runs(timer: WakeTimer) -> None:
    fired: list[str] = []
    await _fired(timer, 0.001, fired, "cancelled")
    timer.cancel()
    # Due well after the cancelled one would have been.
    later = await _fired(timer, 0.05, fired, "later")
    async with asyncio.timeout(BOUND_S):
        await later.wait()
    assert fired == ["later"]


async def test_arming_again_replaces_the_armed_wake_up(timer: WakeTimer) -> None:
    fired: list[str] = []
    await _fired(timer, 0.001, fired, "first")
    second = await _fired(timer, 0.03, fired, "second")
    async with asyncio.timeout(BOUND_S):
        await second.wait()
    assert fired == ["second"]


@linux_only
async def test_closing_a_timerfd_frees_its_descriptor_and_may_be_repeated() -> None:
    timer = TimerfdTimer(asyncio.get_running_loop())
    fd = timer._fd
    os.fstat(fd)
    timer.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
    timer.close()


@linux_only
async def test_on_linux_the_scan_wakes_on_a_timerfd() -> None:
    timer = wake_timer(asyncio.get_running_loop())
    try:
        assert isinstance(timer, TimerfdTimer)
    finally:
        timer.close()


async def test_without_a_timerfd_the_loop_timer_does_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable(loop: asyncio.AbstractEventLoop) -> TimerfdTimer:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(wake_timer_module, "TimerfdTimer", unavailable)
    timer = wake_timer(asyncio.get_running_loop())
    try:
        assert isinstance(timer, LoopTimer)
        fired: list[str] = []
        done = await _fired(timer, 0.001, fired, "a")
        async with asyncio.timeout(BOUND_S):
            await done.wait()
        assert fired == ["a"]
    finally:
        timer.close()
