"""EZO sensors that answer a read with one number: the RTD here, and the base of the pH probe.

`latest()` never waits: it returns the newest good reading (left to go stale when reads fail) or a
'device lost' reading. Never blocks the event loop; time only from the Clock.
"""

from __future__ import annotations

import math

from hal.clock import Clock
from hal.log import get_logger
from hal.reading import BadReason, Reading
from hal.serial.ezo_device import EzoDevice
from hal.serial.ezo_link import (
    READ_S,
    EzoError,
    EzoGarbage,
    EzoLink,
    EzoLinkError,
    EzoPortLost,
    command_verb,
    ezo_number,
)
from hal.serial.reconnect import Backoff

log = get_logger(__name__)

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
        # What the circuit answered to the last poll instead of a reading (*ER, garbage), until
        # a reading comes: a reading gone stale that way names it.
        self._answered_instead: str | None = None

    def latest(self) -> Reading[float]:
        """The newest good reading (it ages when reads fail); bad once the device is lost, or
        once it is stale because the circuit answers an error instead (named)."""
        lost = self.lost_reading()
        if lost is not None:
            return lost
        latest, instead = self._latest, self._answered_instead
        if instead is not None:
            age = self.clock.monotonic() - latest.at
            if not latest.good or age > self.stale_s:
                since = f"; last reading {age:.0f} s ago" if latest.good else ""
                return Reading.bad(BadReason.DEVICE_ERROR, latest.at, f"{instead}{since}")
        return latest

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
                now = self.clock.monotonic()
                if isinstance(exc, EzoError) and (
                    (more := self.link.repeats.due("ezo.error", command_verb(command), now))
                    is not None
                ):
                    log.warning("ezo.error", tag=self.tag, command=command, code=exc.code, **more)
                failure = exc
                continue
            self._latest = Reading.ok(value, self.clock.monotonic())
            self._answered_instead = None
            return
        # It may answer, but not with a reading: once the last one goes stale, the reading says
        # what it answers (a circuit that says nothing is judged lost instead).
        self._answered_instead = _instead_of_a_reading(failure, command, self._attempts)
        # The newest reading stays as it was and ages: stale, the controller treats it as bad.
        # Said once, then every few minutes while it lasts (a read that lands forgets it).
        now = self.clock.monotonic()
        more = self.link.repeats.due("ezo.read_failed", command_verb(command), now)
        if more is not None:
            log.warning(
                "ezo.read_failed", tag=self.tag, attempts=self._attempts, error=str(failure), **more
            )


class EzoRtd(EzoSensor):
    """EZO-RTD reactor temperature (°C), a `TemperatureSensor`; run `serve()` as a task."""

    circuit = "RTD"
    default_stale_s = 5.0

    async def _on_initialised(self) -> None:
        # The scale is kept in the circuit across power-off; one left at °F or K would read a
        # 20 °C reactor as 68 or 293 "°C". Set it only when it is not °C (an EEPROM write).
        try:
            lines = await self.ask("S,?")
        except EzoError as exc:  # a firmware without the query: its readings are taken as °C
            log.warning("ezo.rtd_scale_unknown", tag=self.tag, error=str(exc))
            return
        scale = next((line.split(",")[-1] for line in lines if line.upper().startswith("?S,")), "")
        if scale.lower() != "c":
            await self.ask("S,c")
            log.warning("ezo.rtd_scale_set", tag=self.tag, was=scale or None)


def _instead_of_a_reading(failure: EzoLinkError | None, command: str, tries: int) -> str | None:
    """What the circuit answered to `command` instead of a reading, or None if nothing."""
    if isinstance(failure, EzoError):
        said = " ".join((*failure.reasons, failure.code))
    elif isinstance(failure, EzoGarbage):
        said = "garbage"
    else:
        return None
    return f"the circuit answered {said} to {command}, {tries} tries in a row"


def _reading(lines: list[str], *, tag: str, command: str) -> float:
    """The reading in a reply: the last data line (an earlier one is a stray continuous line)."""
    if not lines:
        raise EzoGarbage("reply without a reading", tag=tag, command=command)
    try:
        value = ezo_number(lines[-1])
    except ValueError:
        raise EzoGarbage(
            f"reading {lines[-1]!r} is not a number", tag=tag, command=command
        ) from None
    if not math.isfinite(value):
        raise EzoGarbage(f"reading {lines[-1]!r} is not finite", tag=tag, command=command)
    return value
