"""The task that owns one EZO circuit: connect, re-initialise, poll, serve queued requests.

Judges a device lost after `lost_s` without an answer. Never blocks the event loop; one command at
a time on the wire; time only from the Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from hal.clock import Clock
from hal.log import get_logger
from hal.reading import BadReason, Reading
from hal.serial.ezo_link import (
    COMMAND_S,
    EzoError,
    EzoGarbage,
    EzoLink,
    EzoLinkError,
    EzoPortLost,
    EzoTimeout,
    command_verb,
)
from hal.serial.reconnect import within

log = get_logger(__name__)

T = TypeVar("T")


class EzoWrongCircuit(EzoLinkError):
    """The circuit on the port is another kind than the config says (ports swapped)."""


class EzoDevice:
    """The task that owns one link: connects, re-initialises, serves queued requests between
    polls, and judges the device lost after `lost_s` without an answer."""

    # What the circuit's `i` must name ("RTD", "pH", "PMP"): another circuit's readings (a pH
    # of 7 read as 7 °C) are never taken; "" checks nothing.
    circuit: ClassVar[str] = ""

    def __init__(
        self,
        *,
        tag: str,
        link: EzoLink,
        clock: Clock,
        lost_s: float,
        period_s: float,
        timeout_s: float = 1.0,
    ) -> None:
        self.tag = tag
        self.timeout_s = timeout_s  # how long past its processing time a reply may take
        self.link = link
        self.clock = clock
        self.lost_s = lost_s
        self.period_s = period_s
        self._answered_at = clock.monotonic()  # start-up counts: lost only after lost_s of nothing
        self._lost_logged = False
        # What the last failed exchange looked like: a lost device's reading says which.
        self._failure = "no response"
        self._generation = 0
        self._initialising = False
        self._requests: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]]
        self._requests = asyncio.Queue()
        self._wake = asyncio.Event()

    async def serve(self) -> None:
        """Poll the device forever, reconnecting as needed (run it as a task; cancel to stop).
        Named `serve`, not `run`: `DosingPump.run` is the pump's rate."""
        try:
            await self._serve_forever()
        finally:
            # Stopped: the port closes with us, or its reader outlives the task and reports the
            # port lost when the other end goes (the emulators after a simulated batch). A close
            # that fails is logged, never put in place of why the task ended.
            try:
                await self.link.close()
            except Exception:
                log.exception("ezo.close_failed", tag=self.tag)

    async def _serve_forever(self) -> None:
        while True:
            started = self.clock.monotonic()
            # Cleared before the cycle, not after: a wish made while it runs (a pump told to
            # start) wakes the next one at once instead of waiting out the period.
            self._wake.clear()
            try:
                if not self.link.connected:
                    await self._connect()
                    self._check_circuit()
                    self.answered()
                await self._serve_requests()
                await self._poll()
            except EzoPortLost:
                await self.link.close()
            except EzoLinkError as exc:
                self._note_failure(exc)  # the start-up sequence's too, which `ask` does not see
                verb = command_verb(exc.command)
                now = self.clock.monotonic()
                if (more := self.link.repeats.due("ezo.cycle_failed", verb, now)) is not None:
                    log.warning("ezo.cycle_failed", tag=self.tag, error=str(exc), **more)
            except Exception:
                # A bug must not end the device task quietly (or its siblings in the group):
                # log it and start over on a fresh link.
                log.exception("ezo.cycle_crashed", tag=self.tag)
                await self.link.close()
            self._note_health()
            rest = self.period_s - (self.clock.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await within(self.clock, max(rest, 0.0), self._wake.wait())

    async def ask(
        self,
        text: str,
        *,
        wait_s: float = COMMAND_S,
        timeout_s: float | None = None,
        done_ends: bool = False,
    ) -> list[str]:
        """One command; any reply from the circuit (even *ER) shows it is alive."""
        self._note_health()  # on time even while a poll cycle retries a silent device
        await self._ensure_initialised()
        try:
            lines = await self.link.command(
                text,
                wait_s=wait_s,
                timeout_s=self.timeout_s if timeout_s is None else timeout_s,
                done_ends=done_ends,
            )
        except EzoError:
            self.answered()
            raise
        except (EzoGarbage, EzoTimeout) as exc:
            self._note_failure(exc)
            raise
        self.answered()
        return lines

    def _check_circuit(self) -> None:
        firmware = self.link.firmware
        if not self.circuit or firmware is None:
            return
        if firmware.device.upper() != self.circuit.upper():
            self.link.require_init()  # asked again each cycle: never polled as what it is not
            self._failure = (
                f"answers as EZO-{firmware.device}, the config says EZO-{self.circuit}: wrong port?"
            )
            raise EzoWrongCircuit(self._failure, tag=self.tag, command="i")

    def _note_failure(self, exc: EzoLinkError) -> None:
        if isinstance(exc, EzoWrongCircuit):
            return  # said by _check_circuit
        if isinstance(exc, EzoGarbage):
            self._failure = "garbled replies"
        elif isinstance(exc, EzoTimeout):
            self._failure = "no response"

    async def _ensure_initialised(self) -> None:
        # After a reboot: the start-up sequence, then the device's own state, before anything else.
        if self._initialising:
            return
        self._initialising = True
        try:
            if self.link.needs_init:
                try:
                    await self.link.initialise()
                except EzoError as exc:
                    # It answers, but refuses its start-up (*ER to *OK,1): not "no response".
                    self._failure = f"it refused its start-up: {exc}"
                    raise
                self._check_circuit()
                self.answered()
            if self.link.generation != self._generation:
                generation = self.link.generation
                # Done only once it succeeded: a timeout on the RTD's scale query left a circuit
                # at °F read as °C, flagged good, for good. Until then every poll fails here.
                await self._on_initialised()
                self._generation = generation
        finally:
            self._initialising = False

    def answered(self) -> None:
        """Note that the circuit has just answered."""
        self._answered_at = self.clock.monotonic()

    def lost_reading(self) -> Reading[float] | None:
        """A bad 'device lost' reading once the circuit has been silent beyond `lost_s`, stamped
        with its last answer (the silence is timed from there, not from this judgement)."""
        now = self.clock.monotonic()
        silent = now - self._answered_at
        if silent <= self.lost_s:
            return None
        port = self.link.port_problem
        # The port named (a port problem names it already): which adapter to look at.
        cause = (
            f"port not open ({port})"
            if port is not None
            else f"{self._failure} on {self.link.path}"
        )
        return Reading.bad(
            BadReason.DEVICE_LOST,
            self._answered_at,
            f"no valid answer for {silent:.0f} s (its limit {self.lost_s:g} s): {cause}",
        )

    async def call(self, work: Callable[[], Awaitable[T]], *, timeout_s: float) -> T:
        """Run `work` on the device task between polls (one command at a time on the wire)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._requests.put_nowait((work, future))
        self._wake.set()
        try:
            return await within(self.clock, timeout_s, future)
        except TimeoutError:
            raise EzoTimeout(
                f"device task did not serve the request within {timeout_s:g} s",
                tag=self.tag,
                command="(queued request)",
            ) from None

    async def _connect(self) -> None:
        connecting = asyncio.ensure_future(self.link.connect())
        try:
            while True:
                # Keep judging the device while the port is away, so `device.lost` is on time.
                self._note_health()
                with contextlib.suppress(TimeoutError):
                    await within(self.clock, self.period_s, asyncio.shield(connecting))
                    return
        finally:
            connecting.cancel()

    async def _serve_requests(self) -> None:
        while not self._requests.empty():
            work, future = self._requests.get_nowait()
            if future.done():  # the caller gave up waiting
                continue
            try:
                result = await work()
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                if isinstance(exc, EzoPortLost):
                    raise
            else:
                if not future.done():
                    future.set_result(result)

    def _note_health(self) -> None:
        lost = self.lost_reading()
        if lost is not None and not self._lost_logged:
            self._lost_logged = True
            log.error("device.lost", tag=self.tag, reason=lost.detail)
        elif lost is None and self._lost_logged:
            self._lost_logged = False
            log.info("device.back", tag=self.tag)

    async def _on_initialised(self) -> None:
        """Re-send what the circuit forgets when it restarts."""

    async def _poll(self) -> None:
        """One poll cycle."""
