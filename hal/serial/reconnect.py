"""Reopening a port by its stable path with bounded exponential backoff, and clock-based timeouts.

Generic over what "open" returns (EZO streams, a Modbus client); never blocks the event loop and
never reads time except through the Clock it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import serial_asyncio_fast

from hal.clock import Clock
from hal.log import get_logger

log = get_logger(__name__)

T = TypeVar("T")

SerialStreams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# A line longer than this without its terminator is garbage, not a reply still arriving.
MAX_LINE_BYTES = 256


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between open attempts: `initial_s`, times `factor` each failure, at most `max_s`."""

    initial_s: float = 0.5
    max_s: float = 8.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        """The delay before each retry, forever."""
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


async def within(clock: Clock, seconds: float, awaitable: Awaitable[T]) -> T:
    """Await `awaitable` for at most `seconds` of `clock` time; raise TimeoutError after."""
    # asyncio.timeout counts loop (real) time; a ScaledClock or VirtualClock must decide instead.
    work: asyncio.Future[T] = asyncio.ensure_future(awaitable)
    timer: asyncio.Future[None] = asyncio.ensure_future(clock.sleep(seconds))
    pending: set[asyncio.Future[Any]] = {work, timer}
    try:
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        timer.cancel()
    if not work.done():
        work.cancel()
        # asyncio.wait does not raise the work's CancelledError, so a cancel of *this* task
        # while waiting still propagates (suppressing it here would swallow it).
        await asyncio.wait({work})
    if work.cancelled():
        raise TimeoutError(f"no result within {seconds:g} s")
    return work.result()


async def open_serial(path: str, *, baudrate: int = 9600) -> SerialStreams:
    """Open `path` as 8N1 at `baudrate` (the open itself runs in an executor thread)."""
    # pyserial's SerialException (also for "no such file") is an OSError: PortReopener retries.
    # exclusive: a second controller (or a stray terminal program) cannot share the line and
    # interleave its bytes with ours; it gets "could not exclusively lock port" and retries.
    return await serial_asyncio_fast.open_serial_connection(
        url=path, baudrate=baudrate, limit=MAX_LINE_BYTES, exclusive=True
    )


class PortReopener(Generic[T]):
    """Opens one port again and again with backoff; logs when it goes (`<prefix>.port_lost`) and
    when it comes back (`<prefix>.reconnected`)."""

    def __init__(
        self,
        *,
        path: str,
        opener: Callable[[], Awaitable[T]],
        clock: Clock,
        log_prefix: str,
        tag: str = "",
        backoff: Backoff | None = None,
    ) -> None:
        self.path = path
        self._opener = opener
        self._clock = clock
        self._prefix = log_prefix
        self._tag = tag
        self._backoff = backoff or Backoff()
        self._lost_at: float | None = None
        self._lost_reason: str | None = None
        self.reconnects = 0

    @property
    def lost_since(self) -> float | None:
        """Clock time the port was lost at, or None while it is (believed) there."""
        return self._lost_at

    @property
    def lost_reason(self) -> str | None:
        """Why the port is away (the newest failure to open it), or None while it is there."""
        return self._lost_reason if self._lost_at is not None else None

    def lost(self, reason: str) -> None:
        """Tell the reopener the port is gone (read error, EIO, file vanished); logged once."""
        self._lost_reason = reason
        if self._lost_at is None:
            self._lost_at = self._clock.monotonic()
            log.warning(f"{self._prefix}.port_lost", tag=self._tag, path=self.path, reason=reason)

    async def open(self) -> T:
        """Open the path, retrying with backoff until it succeeds (cancel to give up)."""
        delays = self._backoff.delays()
        while True:
            try:
                opened = await self._opener()
            except OSError as exc:
                self.lost(str(exc))
                await self._clock.sleep(next(delays))
                continue
            if self._lost_at is not None:
                self.reconnects += 1
                log.info(
                    f"{self._prefix}.reconnected",
                    tag=self._tag,
                    path=self.path,
                    after_s=round(self._clock.monotonic() - self._lost_at, 1),
                )
                self._lost_at = self._lost_reason = None
            return opened
