"""A Waveshare Modbus RTU relay/IO board on a pseudo-terminal, driving a SimulatedUnit.

Follows the Modbus Application Protocol Specification V1.1b3 (function codes, quantity limits,
exception codes), Modbus over Serial Line V1.02 (silence-delimited frames, broadcast) and the
Waveshare "Modbus RTU Relay" wiki (the board's own commands and registers): see the table in
`_WAVESHARE` and each handler's comment. Wire-speed timing on the Clock; misbehaves on command.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from hal.clock import Clock
from hal.log import get_logger
from hal.mock.unit import SimulatedUnit
from hal.serial.modbus_frames import (
    COIL_OFF,
    COIL_ON,
    FLASH_BASE,
    FLASH_MAX_UNITS,
    FLASH_UNIT_S,
    Estop,
    RelayBoardMap,
    char_time_s,
)
from hal.sim.emulators.pty_port import PortUnplugged
from hal.sim.emulators.rtu_frames import Frame, RtuReceiver, with_crc

log = get_logger(__name__)

# A real board starts answering a few ms after the request's last byte.
TURNAROUND_S = 0.004
# Silence that ends a frame, in real (wire) time: the spec's 1.5/3.5 characters are 1.6/3.6 ms
# at 9600 baud, shorter than a loaded host can time; a pty delivers a client's frame in one
# piece, so only a client that really paused mid-frame crosses this.
WIRE_GAP_S = 0.02
BROADCAST = 0

# Function codes (Modbus Application Protocol V1.1b3 §6) and exception codes (§7).
READ_COILS, READ_INPUTS, READ_HOLDING, WRITE_COIL, WRITE_REGISTER, WRITE_COILS = 1, 2, 3, 5, 6, 15
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE = 1, 2, 3, 4
MAX_READ_BITS = 2000  # FC01/FC02 quantity 1..0x07D0 (§6.1, §6.2)
MAX_WRITE_BITS = 0x07B0  # FC15 quantity 1..0x07B0 (§6.11)
MAX_READ_REGISTERS = 125  # FC03 quantity 1..0x007D (§6.3)

# The Waveshare board's own addresses and values (wiki "Modbus RTU Relay", "Development
# protocol"): FC05 on 0x00FF switches every relay; 0x5500 toggles; 0x02xx flash-on and 0x04xx
# flash-off count in 100 ms; holding register 0x4000 is the device address, 0x8000 the firmware
# version (0x00C8 = V2.00), 0x2000 the baud rate and parity.
ALL_RELAYS = 0x00FF
TOGGLE = 0x5500
FLASH_OFF_BASE = 0x0400
ADDRESS_REGISTER = 0x4000
VERSION_REGISTER = 0x8000
BAUD_REGISTER = 0x2000
_WAVESHARE = {
    "all relays": f"FC05 0x{ALL_RELAYS:04X}: FF00 on, 0000 off, 5500 toggle",
    "toggle": f"FC05 relay n: 0x{TOGGLE:04X} flips it",
    "flash on": f"FC05 0x{FLASH_BASE:04X}+n: on now, off after value x 100 ms",
    "flash off": f"FC05 0x{FLASH_OFF_BASE:04X}+n: off now, on after value x 100 ms",
    "address": f"FC03/FC06 0x{ADDRESS_REGISTER:04X}: the slave address (1..247)",
    "version": f"FC03 0x{VERSION_REGISTER:04X}: firmware version x 100",
    "baud": f"FC03/FC06 0x{BAUD_REGISTER:04X}: parity (high byte), baud code (low byte)",
}


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


class _Refused(Exception):
    """The request gets a Modbus exception response with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass(slots=True)
class _Relay:
    """One relay: `on` until clock time `until`, then the other way for good."""

    on: bool = False
    until: float = math.inf

    def now(self, at: float) -> bool:
        return self.on if at < self.until else not self.on


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
        version: int = 200,
        seed: int = 0,
    ) -> None:
        self.port = port
        self.unit = unit
        self.clock = clock
        self.channels = channels
        self.slave = slave
        self.relay_count = relays
        self.input_count = inputs
        self.version = version
        self.baud_register = 0x0000  # 9600 8N1, the board's default
        self._char_s = char_time_s(baudrate)
        self._relays = [_Relay() for _ in range(relays)]
        self._receiver = RtuReceiver()
        self._rng = random.Random(seed)
        self._silent = False
        self._garbage = 0
        self._bad_crc = 0
        self._refused: set[int] = set()
        self._stuck: dict[int, bool] = {}
        self._misechoed: set[int] = set()
        # Function codes answered with ILLEGAL_FUNCTION, as a board without them would.
        self.unsupported: set[int] = set()
        # Relays whose writes get no answer at all (the board still answers everything else).
        self.deaf_relays: set[int] = set()
        self._timers: dict[int, asyncio.Task[None]] = {}
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

    def misecho_relay(self, relay: int, on: bool = True) -> None:
        """Answer every write to `relay` with an echo of another value, leaving the relay as it
        was (a board whose firmware garbles that channel), or stop doing so."""
        if on:
            self._misechoed.add(relay)
        else:
            self._misechoed.discard(relay)

    def bad_crc_next(self, n: int) -> None:
        """Answer the next `n` requests with a corrupted CRC (the driver must drop them)."""
        self._bad_crc += n

    # -- state ---------------------------------------------------------------------------------

    def relay_on(self, relay: int) -> bool:
        """True while relay `relay` is energised (latched or within its flash time)."""
        if relay in self._stuck:
            return self._stuck[relay]
        return self._relays[relay].now(self.clock.monotonic())

    def writes(self, since: float = -math.inf) -> list[Handled]:
        """Every FC05 handled at or after clock time `since`, oldest first."""
        return [h for h in self.handled if h.function_code == WRITE_COIL and h.at >= since]

    @property
    def dropped_frames(self) -> int:
        """Frames dropped as a slave drops them: bad CRC, torn by a gap, overlong."""
        return self._receiver.dropped

    # -- serving -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Answer requests until cancelled (or the port is closed for good)."""
        try:
            while True:
                try:
                    if self._receiver.waiting:
                        # The wire's silence is real time, whatever the plant's clock does.
                        chunk = await asyncio.wait_for(self.port.read(), WIRE_GAP_S)
                    else:
                        chunk = await self.port.read()
                except TimeoutError:
                    frame = self._receiver.silence()
                    if frame is not None:
                        await self._serve(frame)
                    continue
                except PortUnplugged:
                    return
                for frame in self._receiver.feed(chunk):
                    await self._serve(frame)
        finally:
            for timer in self._timers.values():
                timer.cancel()

    async def _serve(self, frame: Frame) -> None:
        if self._silent or frame.slave not in (self.slave, BROADCAST):
            return  # another slave's frame, or a dead board: no answer at all
        if frame.function_code == WRITE_COIL and self.deaf_relays:
            address = frame.words(1)[0]
            if address != ALL_RELAYS and address & 0xFF in self.deaf_relays:
                return  # that channel's firmware hangs: no answer, the relay as it was
        try:
            reply = self._execute(frame)
        except _Refused as refused:
            reply = bytes([frame.function_code | 0x80, refused.code])
        if frame.slave == BROADCAST and not self._answers_broadcast(frame):
            return  # broadcast writes are carried out, never answered (Serial Line §2.1)
        answer = with_crc(bytes([frame.slave]) + reply)
        # The request took its time on the wire (the pty delivered it at once), then the board
        # thinks, then the answer takes its time: ~20 ms for a write at 9600 baud.
        request_len = len(frame.data) + 4
        await self.clock.sleep((request_len + len(answer)) * self._char_s + TURNAROUND_S)
        if self._garbage:
            self._garbage -= 1
            answer = bytes(self._rng.randrange(256) for _ in range(len(answer) + 3))
        elif self._bad_crc:
            self._bad_crc -= 1
            answer = answer[:-1] + bytes([answer[-1] ^ 0xA5])
        self.port.write(answer)

    def _answers_broadcast(self, frame: Frame) -> bool:
        # The wiki reads and sets the address (and sets the baud rate) of a board of unknown
        # address by broadcast (00 03 40 00 ..., 00 06 40 00 ..., 00 06 20 00 ...), and the
        # board answers those; its relay commands by broadcast are carried out unanswered.
        return len(frame.data) >= 2 and frame.words(1)[0] in (ADDRESS_REGISTER, BAUD_REGISTER)

    def _execute(self, frame: Frame) -> bytes:
        code = frame.function_code
        handler = {
            READ_COILS: self._read_bits,
            READ_INPUTS: self._read_bits,
            READ_HOLDING: self._read_registers,
            WRITE_COIL: self._write_coil,
            WRITE_REGISTER: self._write_register,
            WRITE_COILS: self._write_coils,
        }.get(code)
        if handler is None or code in self.unsupported:
            raise _Refused(ILLEGAL_FUNCTION)  # §7: a function code the slave does not support
        return handler(frame)

    def _note(self, frame: Frame, address: int, value: int | None = None) -> None:
        self.handled.append(Handled(self.clock.monotonic(), frame.function_code, address, value))

    def _read_bits(self, frame: Frame) -> bytes:
        # §6.1/§6.2: quantity out of 1..2000 is exception 03, then an address range past the
        # last coil/input is exception 02.
        address, count = frame.words(2)
        self._note(frame, address)
        if not 1 <= count <= MAX_READ_BITS:
            raise _Refused(ILLEGAL_VALUE)
        size = self.relay_count if frame.function_code == READ_COILS else self.input_count
        if address + count > size:
            raise _Refused(ILLEGAL_ADDRESS)
        read = self.relay_on if frame.function_code == READ_COILS else self._input
        bits = [read(n) for n in range(address, address + count)]
        packed = bytes(
            sum(1 << i for i, bit in enumerate(bits[start : start + 8]) if bit)
            for start in range(0, count, 8)
        )
        return bytes([frame.function_code, len(packed)]) + packed

    def _read_registers(self, frame: Frame) -> bytes:
        address, count = frame.words(2)
        self._note(frame, address)
        if not 1 <= count <= MAX_READ_REGISTERS:
            raise _Refused(ILLEGAL_VALUE)
        registers = {
            ADDRESS_REGISTER: self.slave,
            VERSION_REGISTER: self.version,
            BAUD_REGISTER: self.baud_register,
        }
        if count != 1 or address not in registers:
            raise _Refused(ILLEGAL_ADDRESS)
        return bytes([READ_HOLDING, 2]) + struct.pack(">H", registers[address])

    def _write_register(self, frame: Frame) -> bytes:
        address, value = frame.words(2)
        self._note(frame, address, value)
        if address == ADDRESS_REGISTER:
            if not 1 <= value <= 247:
                raise _Refused(ILLEGAL_VALUE)
            self.slave = value  # the board keeps its new address in flash
        elif address == BAUD_REGISTER:
            if (value & 0xFF) > 7 or (value >> 8) > 2:
                raise _Refused(ILLEGAL_VALUE)
            self.baud_register = value  # takes effect at the next power-up
        else:
            raise _Refused(ILLEGAL_ADDRESS)
        return bytes([WRITE_REGISTER]) + frame.data[:4]

    def _write_coil(self, frame: Frame) -> bytes:
        address, value = frame.words(2)
        self._note(frame, address, value)
        now = self.clock.monotonic()
        relay = address & 0xFF
        if address == ALL_RELAYS:
            targets = list(range(self.relay_count))
        elif relay < self.relay_count and address - relay in (0, FLASH_BASE, FLASH_OFF_BASE):
            targets = [relay]
        else:
            raise _Refused(ILLEGAL_ADDRESS)
        if any(self._is_refused(t) for t in targets):
            raise _Refused(DEVICE_FAILURE)
        if relay in self._misechoed and address != ALL_RELAYS:
            return bytes([WRITE_COIL]) + frame.data[:2] + ((value ^ 0xFFFF) & 0xFFFF).to_bytes(2)
        if address >= FLASH_BASE and address != ALL_RELAYS:
            if not 0 < value <= FLASH_MAX_UNITS:
                raise _Refused(ILLEGAL_VALUE)
            # A flash counts in 100 ms units: on (or off) now, the other way after the time.
            self._switch(relay, address < FLASH_OFF_BASE, until=now + value * FLASH_UNIT_S)
        elif value in (COIL_ON, COIL_OFF):
            for target in targets:
                self._switch(target, value == COIL_ON, until=math.inf)
        elif value == TOGGLE:
            for target in targets:
                self._switch(target, not self._relays[target].now(now), until=math.inf)
        else:
            raise _Refused(ILLEGAL_VALUE)  # §6.5: only FF00 and 0000 (and the board's 5500)
        return bytes([WRITE_COIL]) + frame.data[:4]

    def _write_coils(self, frame: Frame) -> bytes:
        # §6.11: quantity 1..0x07B0 and a byte count of ceil(quantity / 8), else exception 03;
        # nothing is written when the request is refused.
        address, count = frame.words(2)
        self._note(frame, address)
        byte_count = frame.data[4] if len(frame.data) > 4 else -1
        if not 1 <= count <= MAX_WRITE_BITS or byte_count != (count + 7) // 8:
            raise _Refused(ILLEGAL_VALUE)
        if len(frame.data) != 5 + byte_count:
            raise _Refused(ILLEGAL_VALUE)
        if address + count > self.relay_count:
            raise _Refused(ILLEGAL_ADDRESS)
        if any(self._is_refused(address + n) for n in range(count)):
            raise _Refused(DEVICE_FAILURE)
        packed = frame.data[5:]
        for n in range(count):
            on = bool(packed[n // 8] >> (n % 8) & 1)
            self._switch(address + n, on, until=math.inf)
        return bytes([WRITE_COILS]) + frame.data[:4]

    def _is_refused(self, relay: int) -> bool:
        """Refused on command, or by the simulated unit's relay_refused fault on its device."""
        if relay in self._refused:
            return True
        if relay not in self.channels.relays:
            return False
        output = self.channels.relays[relay]
        device = self.unit.heater if output is None else self.unit.coils[output]
        return device.refused

    def _switch(self, relay: int, on: bool, *, until: float) -> None:
        """Relay `relay` goes `on` (or off) until clock time `until`, then the other way; the
        unit's device follows unless the contact is stuck."""
        self._relays[relay] = _Relay(on=on, until=until)
        timer = self._timers.pop(relay, None)
        if timer is not None:
            timer.cancel()
        self._drive(relay, on, until)
        if not on and not math.isinf(until):  # a flash-off: it comes back on by itself
            self._timers[relay] = asyncio.get_running_loop().create_task(
                self._back_on(relay, until)
            )

    async def _back_on(self, relay: int, at: float) -> None:
        await self.clock.sleep(at - self.clock.monotonic())
        self._timers.pop(relay, None)
        self._drive(relay, True, math.inf)

    def _drive(self, relay: int, on: bool, until: float) -> None:
        """Pass relay `relay`'s new state on to the unit's device wired to it."""
        if relay in self._stuck:
            on, until = self._stuck[relay], math.inf  # the contact does not follow
        if relay not in self.channels.relays:
            return  # a spare relay: it clicks, nothing is wired to it
        output = self.channels.relays[relay]
        on_s = until - self.clock.monotonic() if on else 0.0
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
