"""The guided pH calibration at the console: which buffer, the live reading on one line, a point
taken only once the reading is steady and the tech says so, and a short outcome.

Talks to the controller through the console's requests only; never calibrates a point the tech
did not accept, and Ctrl-C (the command's cancellation) leaves the probe as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from unit_controller.console.client import ConsoleError, ControlClient, Response, StreamMessage
from unit_controller.console.lines import (
    PH_BUFFERS,
    LineError,
    PhPoint,
    Request,
    parse_line,
    parse_ph_point,
)
from unit_controller.console.render import render_result
from unit_controller.console.render_cal import live_reading
from unit_controller.console.screen import Screen
from unit_controller.console.terminal import Interrupt, Item, TerminalInput
from unit_controller.console.text import wrap
from unit_controller.ph_buffers import ROOM_C_RANGE

# Steady: over the last STEADY_WINDOW_S of the unit's clock (status `ts`), and at least the
# last STEADY_MIN_READINGS readings, every reading lies within ±STEADY_BAND_PH of the middle of
# their range. Why these: a glass electrode moved into a fresh buffer settles exponentially
# (τ 5-30 s); once it moves less than ±0.02 pH in 10 s the error it leaves in the point is
# below the ±0.02 pH a pH phase is judged by (`ph.in_band_fraction` uses ±0.05), and 5
# readings (the EZO reads once a second) keep one lucky pair from passing for steady.
STEADY_WINDOW_S: Final = 10.0
STEADY_BAND_PH: Final = 0.02
STEADY_MIN_READINGS: Final = 5
# A steady reading this far from the buffer's pH is worth a word: the wrong beaker, or a probe
# that needs cleaning (an uncalibrated probe is off by tenths, not by a whole pH).
FAR_FROM_BUFFER_PH: Final = 1.0
# Status lines while the reading is shown: twice a second of wall time gives enough readings in
# the window even on a simulator a few times faster than real time; the bottom line is only
# redrawn when its text changes (calm at 115200 baud).
LIVE_EVERY_S: Final = 0.5
UNWATCH_TIMEOUT_S: Final = 5.0
AT_REST: Final = frozenset({"STOPPED", "IDLE", "COMPLETE", "ABORTED"})  # calibration allowed
TAKE: Final = frozenset({"", "y", "yes"})
WAIT: Final = frozenset({"n", "no", "wait"})


@dataclass(frozen=True, slots=True)
class _Sample:
    at_s: float  # the unit's clock
    ph: float


class SteadyReading:
    """Judges whether the pH reading holds still (see STEADY_*); a bad reading starts it over."""

    def __init__(self) -> None:
        self._window: deque[_Sample] = deque()
        self._since_s: float | None = None  # first good reading of the current run
        self.ph: float | None = None

    def add(self, at_s: float, ph: float | None) -> None:
        """One reading at `at_s` (the unit's clock, s); None for a bad one."""
        if ph is None or not math.isfinite(ph):
            self._window.clear()
            self._since_s = None
            self.ph = None
            return
        if self._window and at_s <= self._window[-1].at_s:
            return  # the same scan's reading again
        if self._since_s is None:
            self._since_s = at_s
        self.ph = ph
        self._window.append(_Sample(at_s=at_s, ph=ph))
        # The window keeps the last STEADY_MIN_READINGS however old: on a simulator many times
        # faster than real time, readings polled in real time lie further apart than it is long.
        while (
            len(self._window) > STEADY_MIN_READINGS
            and self._window[0].at_s < at_s - STEADY_WINDOW_S
        ):
            self._window.popleft()

    @property
    def watched_s(self) -> float:
        """How long the reading has been good (s of the unit's clock)."""
        if self._since_s is None or not self._window:
            return 0.0
        return self._window[-1].at_s - self._since_s

    @property
    def span(self) -> float:
        """How far the readings in the window spread (pH)."""
        values = [sample.ph for sample in self._window]
        return max(values) - min(values) if values else math.inf

    @property
    def middle(self) -> float | None:
        """The middle of the window's readings."""
        values = [sample.ph for sample in self._window]
        return (max(values) + min(values)) / 2 if values else None

    @property
    def steady(self) -> bool:
        """Watched for the whole window, enough readings, all within the band."""
        return (
            self.watched_s >= STEADY_WINDOW_S
            and len(self._window) >= STEADY_MIN_READINGS
            and self.span <= 2 * STEADY_BAND_PH + 1e-9
        )

    def describe(self) -> str:
        """How steady, in a few words for the bottom line."""
        window = f"{STEADY_WINDOW_S:g} s"
        if self.steady:
            return f"steady (±{self.span / 2:.3f} over {window})"
        if self.watched_s < STEADY_WINDOW_S:
            return f"settling ({self.watched_s:.0f} s of {window})"
        if len(self._window) < STEADY_MIN_READINGS:
            # Watched long enough, but readings came slowly (a probe that answers late).
            return f"settling ({len(self._window)} of {STEADY_MIN_READINGS} readings in {window})"
        return f"settling (moves ±{self.span / 2:.3f} in {window}, needs ±{STEADY_BAND_PH:g})"


Ask = Callable[[Request], Awaitable[Response]]


class PhCalibration:
    """One guided calibration: `run` walks the points, `one` takes a single point."""

    def __init__(
        self, *, client: ControlClient, screen: Screen, input_: TerminalInput, ask: Ask
    ) -> None:
        self._client = client
        self._screen = screen
        self._input = input_
        self._ask = ask
        self._taken: list[str] = []
        self._had_points = False  # the probe held a calibration (so a mid) before this one
        self._bad: str | None = None  # why the last reading was bad, while it is
        self.failed = False
        self.ended = False  # a command typed (or the end of input) ended it before done
        self._out = False  # the controller holds starts off for this calibration

    async def run(self) -> None:
        """Every point the tech chooses: mid first, then low and/or high, until done."""
        try:
            await self._run()
        finally:
            await self._probe_back()

    async def _run(self) -> None:
        probe = await self._begin()
        if probe is None:
            return
        self._screen.say(
            *wrap(
                f"pH calibration of {probe}: mid first (it clears low and high), then low and/or "
                "high. A point is taken only when you say so; Ctrl-C stops.",
                indent=2,
            ),
            "  answer e.g. low, low 4.01, low 4.01 21.5 (buffer °C), or done",
        )
        while True:
            default = self._next_default()
            shown = f"{default.point} {default.value:.2f}" if default else "done"
            answer = await self._line(f"point [{shown}]: ")
            if answer is None:
                return
            try:
                point = parse_ph_point(answer, default=default)
            except LineError as exc:
                if self._stops_for(answer):
                    return
                self._screen.say(*wrap(str(exc), indent=2))
                continue
            if point is None:
                self._done()
                return
            await self._point(point)
            if self.ended:
                return

    async def one(self, point: PhPoint) -> None:
        """The one point a `cal ph mid 7.00` line names, guided the same way."""
        try:
            if await self._begin() is not None:
                await self._point(point)
        finally:
            await self._probe_back()

    # --- steps --------------------------------------------------------------------------------
    async def _begin(self) -> str | None:
        """The probe's tag, once calibration may go on; None (said why) when it may not."""
        status = await self._client.request("status")
        state = (status.result or {}).get("state")
        if status.ok and isinstance(state, str) and state not in AT_REST:
            self._refused(
                f"calibration is refused while a batch is under way (state {state}): "
                "stop it or let it complete first"
            )
            return None
        # The probe goes into buffers: no batch may start on its readings meanwhile (a second
        # console started one under a probe sitting in a beaker).
        out = await self._ask(Request("cal_ph_probe_out", {"on": True}))
        if not out.ok:
            self._refused(out.error or "the controller refused to hold starts off")
            return None
        self._out = True
        response = await self._ask(Request("cal_ph_status"))
        if not response.ok:
            self._refused(response.error or "the controller refused cal ph status")
            return None
        result = response.result or {}
        self._had_points = isinstance(result.get("points"), int) and result["points"] > 0
        self._screen.say(*render_result("cal_ph_status", result, self._screen.style))
        return str(result.get("probe") or "the pH probe")

    def _next_default(self) -> PhPoint | None:
        for point in PH_BUFFERS:
            if point not in self._taken:
                return PhPoint(point=point, value=PH_BUFFERS[point])
        return None

    async def _point(self, point: PhPoint) -> None:
        if point.point != "mid" and "mid" not in self._taken and not self._had_points:
            # the controller would refuse it, after the wait for a steady reading
            self._screen.say(f"  {point.point} needs a mid point first: the probe has none")
            return
        if point.temperature_c is None and (warm := await self._reactor_not_at_room()):
            # Refused now, not after minutes waiting for a steady reading (the controller
            # would refuse the point for it then).
            self._refused(warm)
            return
        self._screen.say(
            f"put the probe in the pH {point.value:.2f} buffer (rinse it first); "
            "the reading follows"
        )
        if not await self._settle(point):
            return
        response = await self._ask(Request("cal_ph", point.args()))
        if not response.ok:
            self._refused(response.error or "the controller refused the point")
            if point.point == "mid":
                self._taken.clear()
            return
        if point.point == "mid":
            self._taken.clear()  # a new mid clears low and high
        self._taken.append(point.point)
        self._screen.say(*render_result("cal_ph", response.result or {}, self._screen.style))

    async def _settle(self, point: PhPoint) -> bool:
        """Show the reading live until it is steady and the tech takes it (True); False at the
        end of input."""
        judge = SteadyReading()
        warned = False
        answer: asyncio.Future[Item] = asyncio.ensure_future(self._input.get())
        stream: AsyncGenerator[StreamMessage, None] | None = None
        message: asyncio.Future[StreamMessage] | None = None
        try:
            # Inside the try: a Ctrl-C while the watch is being set up must still end it (it
            # was left streaming, and the console's next request went unanswered).
            stream = await self._client.subscribe(LIVE_EVERY_S)
            message = asyncio.ensure_future(anext(stream))
            self._bad = None
            self._screen.show_prompt(self._live_text(judge))
            while True:
                waits: set[asyncio.Future[Any]] = {answer, message}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if message.done():
                    self._reading(judge, message.result())
                    message = asyncio.ensure_future(anext(stream))
                    middle = judge.middle
                    far = middle is not None and abs(middle - point.value) > FAR_FROM_BUFFER_PH
                    if judge.steady and far and not warned:
                        warned = True
                        self._screen.say(
                            f"  it reads {middle:.2f} in a pH {point.value:.2f} buffer: "
                            "is it the right one?"
                        )
                if not answer.done():
                    continue
                item = answer.result()
                if item is None:
                    self._screen.say("  calibration ended with the input: no point taken")
                    self.ended = True
                    return False
                if item is Interrupt.CTRL_C:
                    return False
                assert isinstance(item, str)
                self._screen.entered(item)
                word = item.strip().lower()
                if word in TAKE and judge.steady:
                    return True
                if word in TAKE:
                    self._screen.say(
                        *wrap(
                            f"  not steady yet: a point is taken once the reading holds "
                            f"±{STEADY_BAND_PH:g} pH for {STEADY_WINDOW_S:g} s (Ctrl-C stops)",
                            indent=2,
                        )
                    )
                elif self._stops_for(item):
                    return False
                elif word not in WAIT:
                    self._screen.say("  Enter or y takes the point once steady, n waits on")
                answer = asyncio.ensure_future(self._input.get())
                self._screen.show_prompt(self._live_text(judge))
        finally:
            tasks = [task for task in (answer, message) if task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if stream is not None:
                await stream.aclose()
            self._screen.erase_prompt()
            await self._unwatch()

    def _reading(self, judge: SteadyReading, message: StreamMessage) -> None:
        if message.stream != "status":
            return
        status = message.data
        ts = status.get("ts")
        if isinstance(ts, int | float) and not isinstance(ts, bool):
            at_s = ts / 1000.0
        else:  # a controller that does not stamp its status: the console's clock, for the window
            at_s = asyncio.get_running_loop().time()
        ph = status.get("ph")
        good = isinstance(ph, int | float) and not isinstance(ph, bool)
        judge.add(at_s, float(ph) if isinstance(ph, int | float) and good else None)
        reasons = status.get("bad")
        self._bad = None
        if not good:
            why = reasons.get("ph") if isinstance(reasons, Mapping) else None
            self._bad = str(why or "no reading")
        self._screen.update_prompt(self._live_text(judge))

    def _live_text(self, judge: SteadyReading) -> str:
        return live_reading(
            ph=judge.ph, bad=self._bad, judgement=judge.describe(), steady=judge.steady
        )

    async def _unwatch(self) -> None:
        if self._client.connected:
            with contextlib.suppress(ConsoleError, TimeoutError):
                async with asyncio.timeout(UNWATCH_TIMEOUT_S):
                    await self._client.unwatch()

    async def _line(self, prompt: str) -> str | None:
        self._screen.show_prompt(prompt)
        item = await self._input.get()
        if not isinstance(item, str):
            self._screen.break_line()
            return None
        self._screen.entered(item)
        return item

    async def _reactor_not_at_room(self) -> str | None:
        """Why TT-101 cannot stand for the buffer's temperature now, or None (as the controller
        judges it: only at room temperature, the probe being in a beaker, not the reactor)."""
        status = await self._client.request("status")
        value = (status.result or {}).get("temperature_c") if status.ok else None
        low, high = ROOM_C_RANGE
        if not isinstance(value, int | float) or isinstance(value, bool) or low <= value <= high:
            return None  # unknown here: the controller judges it at the point
        return (
            f"the reactor's temperature reads {value:.1f} °C, no buffer's: give the buffer's "
            "°C after its pH (e.g. mid 7.00 22)"
        )

    async def _probe_back(self) -> None:
        """Starts may go on again: the calibration is over however it ended (the session's end
        does it too, should this not get through)."""
        if not self._out:
            return
        self._out = False
        with contextlib.suppress(ConsoleError, TimeoutError):
            await self._client.request("cal_ph_probe_out", {"on": False})

    def _stops_for(self, line: str) -> bool:
        """Whether `line` is a console command: it ends the calibration and is carried out
        next (a `stop` or `abort` above all: typed at a reading, it was thrown away while a
        jog went on)."""
        try:
            if parse_line(line) is None:
                return False
        except LineError:
            return False
        self._screen.say(f"  calibration stopped, no point taken: {line.strip()} follows")
        self._input.unget(line)
        self.ended = True
        return True

    def _refused(self, text: str) -> None:
        self.failed = True
        self._screen.say(*wrap(f"error: {text}", indent=len("error: ")))

    def _done(self) -> None:
        taken = ", ".join(self._taken) or "none"
        self._screen.say(f"pH calibration done: points taken here: {taken} (cal ph status)")
