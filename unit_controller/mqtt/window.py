"""A window of outbox rows in flight to the broker: refilled as PUBACKs come back, not in batches.

Never acks a row in the outbox before its PUBACK, and never lets a failed or stalled publish
pass unnoticed: the first failure ends the window (and with it the connection, which resends).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from typing import Protocol

from unit_controller.mqtt.outbox import Outbox, OutboxRow

# Slots freed before a waiting producer is woken (at most; an eighth of a small window): it
# then tops the window up in one go instead of waking at every PUBACK, and the window stays
# within this many of full.
REFILL_SLOTS = 16


class Publisher(Protocol):
    """The one call of the MQTT client the window makes (DirectPublisher's; aiomqtt.Client's
    has the same shape)."""

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        /,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (aiomqtt's own signature)
    ) -> None: ...


class PublishWindow:
    """At most `size` publishes waiting for their PUBACK; each acked row is acked in the outbox.

    `put` waits only for a free slot, so the caller reads the next rows while these fly; rows
    put in order are handed to the client in that order (its wire order). A publish still
    unacknowledged after `timeout_s` (or a little more) fails the window, as a per-publish
    timeout would; one watchdog watches the oldest, so no publish carries a timer of its own.
    """

    def __init__(
        self,
        *,
        client: Publisher,
        outbox: Outbox,
        size: int,
        timeout_s: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if size <= 0 or timeout_s <= 0:
            raise ValueError("size and timeout_s must be > 0")
        self._client = client
        self._outbox = outbox
        self._timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self._clock = clock or self._loop.time
        self._room = size
        self._refill = max(1, min(REFILL_SLOTS, size // 8))
        self._waiters: deque[asyncio.Future[bool]] = deque()  # True: a slot was handed over
        self._flying: dict[int, asyncio.Task[None]] = {}  # in flight by row id, oldest first
        self._failure: asyncio.Future[None] = self._loop.create_future()

    @property
    def in_flight(self) -> int:
        """Publishes waiting for their PUBACK."""
        return len(self._flying)

    async def put(self, topic: str, row: OutboxRow, qos: int = 1) -> None:
        """Publish `row` on `topic` once a slot is free; raises the window's first failure.
        At QoS 0 (Sparkplug's data) the row is acked once the client has written it.

        Producers waiting for a slot get them in turn (live telemetry waits behind at most one
        refill of the backlog, never behind all of it).
        """
        if self._failure.done():
            self._failure.result()  # raises it
        if self._room > 0 and not self._waiters:
            self._room -= 1
        else:
            waiter: asyncio.Future[bool] = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                granted = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.result():
                    self._give_back()  # cancelled just after a slot was handed over
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
            if not granted or self._failure.done():
                if granted:
                    self._give_back()
                self._failure.result()  # raises it (or CancelledError once closed)
        # The task starts on a later loop turn, so it finds itself here when it ends.
        self._flying[row.id] = self._loop.create_task(self._send(topic, row, qos))

    def _give_back(self) -> None:
        self._room += 1
        if self._waiters and self._room >= self._refill and not self._failure.done():
            self._grant()

    def _grant(self) -> None:
        """Hand the free slots to the waiting producers, the longest waiting first."""
        while self._room > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._room -= 1
                waiter.set_result(True)

    async def _send(self, topic: str, row: OutboxRow, qos: int) -> None:
        try:
            # No timer per publish (the watchdog in `failed` stands for them all), and a lost
            # connection ends the window through the link, which cancels what is in flight.
            await self._client.publish(topic, row.payload, qos, timeout=math.inf)
        except Exception as exc:
            # Not acked: the row stays stored and goes out again on the next connection.
            self._fail(exc)
            return
        finally:
            self._flying.pop(row.id, None)
            self._give_back()
        self._outbox.ack(row.id)

    def _wake_all(self) -> None:
        """Wake every waiting producer without a slot (the window failed or closed)."""
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(False)

    def _fail(self, exc: BaseException) -> None:
        if not self._failure.done():
            self._failure.set_exception(exc)
        self._wake_all()

    async def failed(self) -> None:
        """Raise the first failed publish, or an MqttError once the oldest publish in flight
        has waited `timeout_s` for its PUBACK (for `_first_failure`)."""
        oldest, since = None, 0.0
        while not self._failure.done():
            await asyncio.wait((self._failure,), timeout=self._timeout_s / 4)
            # The oldest in flight, and since when it has been the oldest: a stall shows as
            # the same one for longer than the timeout (no clock read per publish).
            first = next(iter(self._flying), None)
            if first != oldest:
                oldest, since = first, self._clock()
            elif first is not None and self._clock() - since > self._timeout_s:
                import aiomqtt  # loaded by the link before any publish (see link.py)

                self._fail(aiomqtt.MqttError(f"no PUBACK within {self._timeout_s:g} s"))
        self._failure.result()

    async def drained(self) -> None:
        """Wait until nothing is in flight (or raise the first failure)."""
        while self._flying and not self._failure.done():
            await asyncio.wait(list(self._flying.values()))
        if self._failure.done():
            self._failure.result()

    async def close(self) -> None:
        """Cancel whatever is still in flight (those rows stay stored); harmless twice."""
        # Ended first: a slot freed by a cancelled publish must not start another one.
        if not self._failure.done():
            self._failure.cancel()
        elif not self._failure.cancelled():
            self._failure.exception()  # retrieved: the connection already ended on it or another
        self._wake_all()
        flying = list(self._flying.values())
        for task in flying:
            task.cancel()
        await asyncio.gather(*flying, return_exceptions=True)
