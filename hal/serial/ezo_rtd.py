"""EZO sensors that answer a read with one number: the RTD here, and the base of the pH probe.

`latest()` never waits: it returns the newest good reading (left to go stale when reads fail) or a
'device lost' reading. Never blocks the event loop; time only from the Clock.
"""

from __future__ import annotations

import math

import structlog

from hal.clock import Clock
from hal.reading import BadReason, Reading
from hal.serial.ezo_device import EzoDevice
from hal.serial.ezo_link import READ_S, EzoError, EzoGarbage, EzoLink, EzoLinkError, EzoPortLost
from hal.serial.reconnect import Backoff

log = structlog.get_logger(__name__)

# A device is lost after this many stale limits without an answer (config may say otherwise).
LOST_STALE_FACTOR = 3.0


class EzoSensor(EzoDevice):
    """A circuit polled for one number per read, retried within `attempts` per poll."""

    default_stale_s = 5.0  # a reading older than this is stale (each probe sets its own)

    def __init__(
        self,
        *,
        tag: str,
        path: str,
        clock: Clock,
        stale_s: float | None = None,
        lost_s: float | None = None,
        attempts: int = 3,
        period_s: float = 1.0,
        timeout_s: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        stale_s = self.default_stale_s if stale_s is None else stale_s
        super().__init__(
            tag=tag,
            link=EzoLink(tag=tag, path=path, clock=clock, timeout_s=timeout_s, backoff=backoff),
            clock=clock,
            lost_s=LOST_STALE_FACTOR * stale_s if lost_s is None else lost_s,
            period_s=period_s,
            timeout_s=timeout_s,
        )
        self.stale_s = stale_s
        self._attempts = max(1, attempts)
        self._latest: Reading[float] = Reading.bad(BadReason.NO_READING_YET, clock.monotonic())

    def latest(self) -> Reading[float]:
        """The newest good reading (it ages when reads fail), or bad once the device is lost."""
        return self.lost_reading() or self._latest

    def _read_command(self) -> str:
        return "R"

    async def _before_read(self) -> None:
        """What goes to the circuit before each read (the pH probe's compensation)."""

    async def _poll(self) -> None:
        await self._ensure_initialised()
        await self._before_read()
        command = self._read_command()
        failure: EzoLinkError | None = None
        for _ in range(self._attempts):
            try:
                lines = await self.ask(command, wait_s=READ_S)
                value = _reading(lines, tag=self.tag, command=command)
            except EzoPortLost:
                raise
            except EzoLinkError as exc:
                if isinstance(exc, EzoError):
                    log.warning("ezo.error", tag=self.tag, command=command, code=exc.code)
                failure = exc
                continue
            self._latest = Reading.ok(value, self.clock.monotonic())
            return
        # The newest reading stays as it was and goes stale: the controller treats it as bad.
        log.warning("ezo.read_failed", tag=self.tag, attempts=self._attempts, error=str(failure))


class EzoRtd(EzoSensor):
    """EZO-RTD reactor temperature (°C), a `TemperatureSensor`; run `serve()` as a task."""

    default_stale_s = 5.0


def _reading(lines: list[str], *, tag: str, command: str) -> float:
    """The reading in a reply: the last data line (an earlier one is a stray continuous line)."""
    if not lines:
        raise EzoGarbage("reply without a reading", tag=tag, command=command)
    try:
        value = float(lines[-1])
    except ValueError:
        raise EzoGarbage(
            f"reading {lines[-1]!r} is not a number", tag=tag, command=command
        ) from None
    if not math.isfinite(value):
        raise EzoGarbage(f"reading {lines[-1]!r} is not finite", tag=tag, command=command)
    return value
