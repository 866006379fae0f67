"""A Waveshare-style Modbus RTU relay/IO board on a pseudo-terminal, driving a SimulatedUnit.

Answers real RTU frames (pymodbus framing and CRC) with wire-speed timing on the Clock, and
misbehaves on command; never blocks the event loop and never outlives a flash-on's time.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import structlog
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsResponse,
    ReadDiscreteInputsResponse,
    WriteMultipleCoilsResponse,
)

from hal.clock import Clock
from hal.mock.unit import SimulatedUnit
from hal.serial.modbus_frames import (
    COIL_OFF,
    COIL_ON,
    FLASH_BASE,
    FLASH_UNIT_S,
    Estop,
    RelayBoardMap,
    WriteCoilValue,
    char_time_s,
)
from hal.sim.emulators.pty_port import PortUnplugged

log = structlog.get_logger(__name__)

# A real board starts answering a few ms after the request's last byte.
TURNAROUND_S = 0.004
# More buffered bytes than any request: line noise, dropped like a real board does.
_MAX_BUFFER = 256


class EmulatorPort(Protocol):
    """What the emulator needs of its port (`hal.sim.emulators.pty_port.PtyPort` is one)."""

    async def read(self) -> bytes:
        """Wait for bytes from the driver."""
        ...

    def write(self, data: bytes) -> None:
        """Send bytes to the driver (dropped while unplugged)."""
        ...


@dataclass(frozen=True, slots=True)
class Handled:
    """One request the board answered (or was told to garble), for tests to look at."""

    at: float
    function_code: int
    address: int
    value: int | None  # FC05: the raw value; otherwise None


class RelayBoardEmulator:
    """The board: `relays` coils and `inputs` discrete inputs, wired to `unit` by `channels`."""

    def __init__(
        self,
        *,
        port: EmulatorPort,
        unit: SimulatedUnit,
        clock: Clock,
        channels: RelayBoardMap,
        slave: int = 1,
        baudrate: int = 9600,
        relays: int = 8,
        inputs: int = 8,
        seed: int = 0,
    ) -> None:
        self.port = port
        self.unit = unit
        self.clock = clock
        self.channels = channels
        self.slave = slave
        self.relay_count = relays
        self.input_count = inputs
        self._char_s = char_time_s(baudrate)
        decoder = DecodePDU(True)
        # FC05 decoded with its raw value: the flash-on time is in it.
        decoder.register(WriteCoilValue)
        self._framer = FramerRTU(decoder)
        self._until = [-math.inf] * relays  # per relay: on until (inf = latched on)
        self._rng = random.Random(seed)
        self._silent = False
        self._garbage = 0
        self._bad_crc = 0
        self._refused: set[int] = set()
        self._stuck: dict[int, bool] = {}
        self.handled: deque[Handled] = deque(maxlen=1000)

    # -- misbehaviour on command -------------------------------------------------------------

    def silent(self, on: bool) -> None:
        """Stop (or resume) answering; a silent board also ignores commands."""
        self._silent = on

    def garbage(self, count: int = 1) -> None:
        """Answer the next `count` requests with line noise instead of a frame."""
        self._garbage += count

    def refuse_relay(self, relay: int, on: bool = True) -> None:
        """Answer every write to `relay` with an exception (DEVICE_FAILURE), or stop doing so."""
        if on:
            self._refused.add(relay)
        else:
            self._refused.discard(relay)

    def stick_relay(self, relay: int, held: bool | None) -> None:
        """Relay `relay` holds `held` whatever is written (a welded or open contact driver);
        None frees it. Writes are still acknowledged: only a read-back shows it."""
        if held is None:
            self._stuck.pop(relay, None)
        else:
            self._stuck[relay] = held

    def bad_crc_next(self, n: int) -> None:
        """Answer the next `n` requests with a corrupted CRC (the driver must drop them)."""
        self._bad_crc += n

    # -- state ---------------------------------------------------------------------------------

    def relay_on(self, relay: int) -> bool:
        """True while relay `relay` is energised (latched or within its flash-on time)."""
        if relay in self._stuck:
            return self._stuck[relay]
        return self.clock.monotonic() < self._until[relay]

    def writes(self, since: float = -math.inf) -> list[Handled]:
        """Every FC05 handled at or after clock time `since`, oldest first."""
        return [h for h in self.handled if h.function_code == 5 and h.at >= since]

    # -- serving -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Answer requests until cancelled (or the port is closed for good)."""
        buffer = b""
        while True:
            try:
                chunk = await self.port.read()
            except PortUnplugged:
                return
            buffer = (buffer + chunk)[-_MAX_BUFFER:]
            while buffer:
                try:
                    used, request = self._framer.handleFrame(buffer, 0, 0)
                except ModbusException:
                    used, request = len(buffer), None  # undecodable: a real board drops it
                buffer = buffer[used:]
                if request is None:
                    break  # incomplete (wait for more) or dropped (bad CRC, noise)
                if request.dev_id != self.slave or self._silent:
                    continue  # another slave's frame, or a dead board: no answer at all
                await self._answer(request)

    async def _answer(self, request: ModbusPDU) -> None:
        response = self._execute(request)
        response.dev_id = self.slave
        frame = self._framer.buildFrame(response)
        request_len = len(self._framer.buildFrame(request))
        self.handled.append(
            Handled(
                at=self.clock.monotonic(),
                function_code=request.function_code,
                address=request.address,
                value=request.value if isinstance(request, WriteCoilValue) else None,
            )
        )
        # The request took its time on the wire (the pty delivered it at once), then the board
        # thinks, then the answer takes its time: ~20 ms for a write at 9600 baud.
        await self.clock.sleep((request_len + len(frame)) * self._char_s + TURNAROUND_S)
        if self._garbage:
            self._garbage -= 1
            frame = bytes(self._rng.randrange(256) for _ in range(len(frame) + 3))
        elif self._bad_crc:
            self._bad_crc -= 1
            frame = frame[:-1] + bytes([frame[-1] ^ 0xA5])
        self.port.write(frame)

    def _execute(self, request: ModbusPDU) -> ModbusPDU:
        code = request.function_code
        if code in (1, 2):
            size = self.relay_count if code == 1 else self.input_count
            if request.count < 1 or request.address + request.count > size:
                return _refuse(code, ExcCodes.ILLEGAL_ADDRESS)
            span = range(request.address, request.address + request.count)
            if code == 1:
                return ReadCoilsResponse(bits=[self.relay_on(n) for n in span])
            return ReadDiscreteInputsResponse(bits=[self._input(n) for n in span])
        if isinstance(request, WriteCoilValue):
            return self._write_single(request)
        if code == 15:
            if request.address + len(request.bits) > self.relay_count:
                return _refuse(code, ExcCodes.ILLEGAL_ADDRESS)
            for offset, on in enumerate(request.bits):
                self._drive(request.address + offset, -math.inf if not on else math.inf)
            return WriteMultipleCoilsResponse(address=request.address, count=len(request.bits))
        return _refuse(code, ExcCodes.ILLEGAL_FUNCTION)

    def _write_single(self, request: WriteCoilValue) -> ModbusPDU:
        address, value = request.address, request.value
        if address % FLASH_BASE in self._refused and address < FLASH_BASE + self.relay_count:
            return _refuse(5, ExcCodes.DEVICE_FAILURE)
        if address < self.relay_count:
            if value not in (COIL_ON, COIL_OFF):
                return _refuse(5, ExcCodes.ILLEGAL_VALUE)
            self._drive(address, math.inf if value == COIL_ON else -math.inf)
        elif FLASH_BASE <= address < FLASH_BASE + self.relay_count:
            if value == 0:
                return _refuse(5, ExcCodes.ILLEGAL_VALUE)
            self._drive(address - FLASH_BASE, self.clock.monotonic() + value * FLASH_UNIT_S)
        else:
            return _refuse(5, ExcCodes.ILLEGAL_ADDRESS)
        return WriteCoilValue(address=address, value=value)

    def _drive(self, relay: int, until: float) -> None:
        """Switch relay `relay` until clock time `until` and pass it on to the unit's device."""
        self._until[relay] = until
        if relay in self._stuck:
            until = math.inf if self._stuck[relay] else -math.inf  # the contact does not follow
        if relay not in self.channels.relays:
            return  # a spare relay: it clicks, nothing is wired to it
        output = self.channels.relays[relay]
        on_s = until - self.clock.monotonic()
        if output is None:
            self.unit.heater.pulse(max(0.0, on_s))
        elif on_s <= 0:
            self.unit.coils[output].drive(False)
        else:
            self.unit.coils[output].drive(True, for_s=None if math.isinf(on_s) else on_s)

    def _input(self, number: int) -> bool:
        role = self.channels.inputs.get(number)
        if role is None:
            return False  # an unwired input reads open
        device = self.unit.estop if role is Estop.ESTOP else self.unit.levels[role]
        reading = device.latest()
        # A switch the simulator has no state for yet reads open, as an unpowered contact does.
        return bool(reading.value) if reading.good else False


def _refuse(function_code: int, code: ExcCodes) -> ModbusPDU:
    return ExceptionResponse(function_code, int(code))
