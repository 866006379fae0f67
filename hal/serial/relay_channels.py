"""The relay board's channels: what each relay should hold, and the device views over them.

A channel records what the controller wants and what the board is believed to hold; the
views give the rest of the HAL the `Coil`, `HeaterSsr` and `DigitalInput` protocols.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from hal.clock import Clock
from hal.reading import Reading
from hal.serial.modbus_frames import Output
from hal.wiring import CoilFunction


class BoardOutputs(Protocol):
    """What the views need from the board."""

    clock: Clock

    def want(self, output: Output, until: float) -> None:
        """Keep `output` on until `until` (inf: while renewed; <= now: off)."""

    def fault_of(self, output: Output) -> str | None:
        """Why the relay of `output` may not hold what it was told, or None."""

    def reading(self, number: int) -> Reading[bool]:
        """Discrete input `number` as last polled."""


# Writes to one relay in a row that the board answered wrongly or not at all before its
# channel is an output fault: one is a glitch of the bus, three (seconds of them) are not.
UNCONFIRMED_WRITES_FAULT = 3


@dataclass(slots=True)
class RelayChannel:
    """One relay: what the controller wants and what the board is believed to hold."""

    output: Output
    relay: int
    tag: str
    lease_s: float  # an on-coil's flash-on, renewed while wanted (the heater: its pulse)
    want_until: float = -math.inf  # on until then (inf: on while renewed); <= now: off
    hw_until: float | None = None  # the board's off time as last written; None: unknown
    # After an exception response, writes of that kind (on or off) wait until then. Only that
    # kind: a refused flash-on renewal must never hold back the off a trip wants.
    refused_until: float = -math.inf
    refused_on: bool = True  # the kind of write refused_until holds back
    written_at: float = -math.inf  # when it was last written
    refused: str | None = None  # the board refused the last write to it
    disagrees: str | None = None  # the read-back does not match what was written
    # Writes in a row the board did not confirm (a wrong echo, no answer), and the last why.
    unconfirmed: int = 0
    unconfirmed_why: str = ""
    failed_at: float = -math.inf  # when a write to it last went unconfirmed
    # Faulted for writes the board never confirms: tried again only then, so that a relay
    # that takes a timeout at every write does not hold the others' renewals back.
    unconfirmed_until: float = -math.inf

    @property
    def fault(self) -> str | None:
        """Why the relay may not hold what it was told, or None."""
        if self.refused or self.disagrees:
            return self.refused or self.disagrees
        if self.unconfirmed >= UNCONFIRMED_WRITES_FAULT:
            # The board still answers its polls, so it is not lost: without this, a relay
            # whose writes never land lapsed off (or stayed on) with nothing said.
            return (
                f"{self.unconfirmed} writes in a row not confirmed by the board "
                f"({self.unconfirmed_why})"
            )
        return None

    def off_due(self, now: float) -> bool:
        """The relay should be off and may still be on (or nobody knows)."""
        if self.want_until > now or (not self.refused_on and now < self.refused_until):
            return False
        return self.hw_until is None or self.hw_until > now

    def on_due(self, now: float, *, renew_after_s: float, heater_tolerance_s: float) -> bool:
        """The relay should be on and its flash-on needs writing (or renewing) now."""
        if self.want_until <= now or (self.refused_on and now < self.refused_until):
            return False
        hw = self.hw_until
        if hw is None or hw <= now:
            return True
        if self.want_until > now + self.lease_s:
            # Capped to one lease: renew well inside its expiry, not on every scan.
            return hw - now <= self.lease_s - renew_after_s
        # A heater pulse: rewrite only when the wanted end moved by more than the tolerance.
        return abs(self.want_until - hw) > heater_tolerance_s


class CoilView:
    """A board coil as the `Coil` protocol."""

    def __init__(self, board: BoardOutputs, function: CoilFunction, tag: str) -> None:
        self.tag = tag
        self._board = board
        self._function = function

    def set(self, on: bool) -> None:
        """Desired state; the board's task writes it (an on-coil as a renewed lease)."""
        self._board.want(self._function, math.inf if on else -math.inf)

    def fault(self) -> str | None:
        """Why the relay may not hold what it was told (refused write, read-back), or None."""
        return self._board.fault_of(self._function)


class HeaterView:
    """The heater SSR as the `HeaterSsr` protocol."""

    def __init__(self, board: BoardOutputs, tag: str) -> None:
        self.tag = tag
        self._board = board

    def pulse(self, on_s: float) -> None:
        """On for `on_s` seconds from now as a hardware-timed flash-on; 0 switches off now."""
        now = self._board.clock.monotonic()
        self._board.want(None, now + on_s if on_s > 0 else -math.inf)

    def fault(self) -> str | None:
        """Why the SSR's relay channel may not hold what it was told, or None."""
        return self._board.fault_of(None)


class InputView:
    """One discrete input as the `DigitalInput` protocol."""

    def __init__(self, board: BoardOutputs, number: int, tag: str) -> None:
        self.tag = tag
        self._board = board
        self._number = number

    def latest(self) -> Reading[bool]:
        """The newest polled state, or a bad reading once the board is lost."""
        return self._board.reading(self._number)
