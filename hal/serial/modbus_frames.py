"""The Waveshare-style Modbus RTU relay/IO board: its address map, FC05 frames and errors.

Pure data and encoding shared by the driver and its emulator; never touches a port.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import StrEnum

from pymodbus.pdu import ModbusPDU

from hal.wiring import BoardWiring, CoilFunction, EstopWiring, LevelPoint

# FC05 values: the standard on/off, plus the board's timed "flash-on" at FLASH_BASE + n whose
# value is the on-time in 100 ms units (the relay switches itself off: DESIGN §2, §7).
COIL_ON = 0xFF00
COIL_OFF = 0x0000
FLASH_BASE = 0x0200
FLASH_UNIT_S = 0.1
# The board takes a flash time up to 0x7FFF units (Waveshare wiki); the driver never asks near it.
FLASH_MAX_UNITS = 0x7FFF
# One character at 8N1 is 10 bits on the wire.
BITS_PER_CHAR = 10


def char_time_s(baudrate: int) -> float:
    """Seconds one character takes on the wire (1.04 ms at 9600 baud)."""
    return BITS_PER_CHAR / baudrate


def flash_units(on_s: float) -> int:
    """The FC05 flash-on value for `on_s` seconds: 100 ms units, at least 1, at most 16 bits."""
    # Round up: a lease that ends a little late is renewed anyway; one that ends early chatters.
    units = math.ceil(round(on_s / FLASH_UNIT_S, 6))
    return max(1, min(FLASH_MAX_UNITS, units))


class WriteCoilValue(ModbusPDU):
    """FC05 with its raw 16-bit value, request and echo alike.

    pymodbus's `WriteSingleCoilRequest` only knows on/off; the board's flash-on needs the value
    itself, and checking the echo of a write needs it too.
    """

    function_code = 5
    rtu_frame_size = 8

    def __init__(
        self, *, address: int = 0, value: int = COIL_OFF, dev_id: int = 0, transaction_id: int = 0
    ) -> None:
        super().__init__(dev_id=dev_id, transaction_id=transaction_id, address=address)
        self.value = value

    def encode(self) -> bytes:
        """Address and value, big-endian."""
        self.verifyAddress()
        return struct.pack(">HH", self.address, self.value)

    def decode(self, data: bytes) -> None:
        """Address and value, big-endian."""
        self.address, self.value = struct.unpack(">HH", data[:4])


class RelayBoardError(Exception):
    """A request to the relay board failed; the message says how, for a person to act on."""


class RelayBoardTimeout(RelayBoardError):
    """No valid answer in time: silence, a wrong CRC (dropped) or a port that went away."""


class RelayBoardExceptionResponse(RelayBoardError):
    """The board answered with a Modbus exception (e.g. 0x02, illegal data address)."""

    def __init__(self, *, function_code: int, exception_code: int) -> None:
        super().__init__(
            f"relay board refused function 0x{function_code:02X} "
            f"with exception 0x{exception_code:02X}"
        )
        self.function_code = function_code
        self.exception_code = exception_code


class RelayBoardBadResponse(RelayBoardError):
    """An answer that is not the one asked for (garbage that framed, a late answer)."""


class Estop(StrEnum):
    """The E-stop's role name, usable where a level point is (`board.input("estop")`)."""

    ESTOP = "estop"


Output = CoilFunction | None  # None = the heater SSR
InputRole = LevelPoint | Estop


@dataclass(frozen=True, slots=True)
class RelayBoardMap:
    """Which board relay drives which output and which discrete input reads which switch."""

    relays: dict[int, Output]
    inputs: dict[int, InputRole]
    tags: dict[Output | InputRole, str]

    @classmethod
    def from_wiring(cls, wiring: BoardWiring) -> RelayBoardMap:
        """Resolve relay and input numbers from the unit's wiring; duplicates are refused."""
        relays: dict[int, Output] = {wiring.heater().relay: None}
        tags: dict[Output | InputRole, str] = {None: wiring.heater_tag}
        for function in wiring.coil_functions():
            relay = wiring.coil(function).relay
            if relay in relays:
                raise ValueError(f"relay {relay} is wired twice ({function} and {relays[relay]})")
            relays[relay] = function
            tags[function] = wiring.coil_tag(function)
        estop = wiring.devices[wiring.estop_tag]
        assert isinstance(estop, EstopWiring)
        inputs: dict[int, InputRole] = {estop.input: Estop.ESTOP}
        tags[Estop.ESTOP] = wiring.estop_tag
        for point in LevelPoint:
            number = wiring.level_switch(point).input
            if number in inputs:
                raise ValueError(f"input {number} is wired twice ({point} and {inputs[number]})")
            inputs[number] = point
            tags[point] = wiring.level_tag(point)
        return cls(relays=relays, inputs=inputs, tags=tags)

    def relay_of(self, output: Output) -> int:
        """Relay number of `output` (None = the heater)."""
        return next(n for n, o in self.relays.items() if o == output)


@dataclass(frozen=True, slots=True)
class RelayBoardTiming:
    """How the driver paces the bus and judges the board (seconds of its Clock)."""

    timeout_s: float = 0.2  # one request's answer (a write takes ~20 ms at 9600 baud)
    retries: int = 2  # more attempts after a timeout or garbled answer, within one cycle
    poll_period_s: float = 0.1  # inputs are read this often; writes go out at once
    readback_period_s: float = 1.0  # the relays' states are read back this often (FC01)
    readback_settle_s: float = 0.5  # a relay written or timing out this recently is not judged
    coil_lease_s: float = 10.0  # the heater channel's cap (each coil has its own lease_s) ...
    renew_after_s: float = 3.0  # ... renewed this long after it was written
    heater_tolerance_s: float = 0.25  # a heater pulse moved less than this is not rewritten
    lost_after_s: float = 3.0  # no valid answer this long: inputs bad, outputs assumed off
    reopen_min_s: float = 0.5  # backoff when the port has vanished
    reopen_max_s: float = 8.0

    def __post_init__(self) -> None:
        if not 0 < self.renew_after_s < self.coil_lease_s:
            raise ValueError(
                f"renew_after_s must be in (0, coil_lease_s={self.coil_lease_s}), "
                f"got {self.renew_after_s}"
            )
        if self.timeout_s <= 0 or self.retries < 0 or self.poll_period_s <= 0:
            raise ValueError("timeout_s and poll_period_s must be > 0 and retries >= 0")
