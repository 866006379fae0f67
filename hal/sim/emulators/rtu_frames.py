"""Modbus RTU framing as a slave device does it: frames end by length or by silence on the line.

A real slave delimits frames by time (Modbus over Serial Line V1.02 §2.5.1.1): a gap longer than
1.5 characters inside a frame makes it incomplete (discarded), and a frame whose function code it
does not know ends at the 3.5-character silence. The CRC is pymodbus's. Pure logic: the caller
says when silence was seen; nothing here reads a clock or a port.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pymodbus.framer import FramerRTU

# Requests whose length the function code fixes: address, function, 4 bytes of PDU, CRC.
FIXED_LENGTH = {1: 8, 2: 8, 3: 8, 4: 8, 5: 8, 6: 8}
# Requests that carry a byte count at offset 6: 7 header bytes + count + CRC.
COUNTED = frozenset({15, 16})
# No RTU frame is longer (Modbus over Serial Line §2.5.1).
MAX_FRAME = 256


def with_crc(frame: bytes) -> bytes:
    """`frame` followed by its Modbus CRC (low byte first on the wire)."""
    return frame + FramerRTU.compute_CRC(frame).to_bytes(2, "big")


def crc_ok(frame: bytes) -> bool:
    """True when the last two bytes of `frame` are the CRC of the rest."""
    if len(frame) < 4:
        return False
    return with_crc(frame[:-2]) == frame


@dataclass(frozen=True, slots=True)
class Frame:
    """One request off the line with a good CRC: slave address, function code, PDU data."""

    slave: int
    function_code: int
    data: bytes

    def words(self, count: int) -> tuple[int, ...]:
        """The first `count` big-endian 16-bit fields of the data."""
        return struct.unpack(f">{count}H", self.data[: 2 * count])


class RtuReceiver:
    """Collects bytes into frames the way a slave's UART state machine does."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._discarding = False  # after a bad frame: drop bytes until the line is silent
        self.dropped = 0  # frames dropped (bad CRC, incomplete at a gap, overlong): for tests

    @property
    def waiting(self) -> bool:
        """True while bytes of an unfinished frame are held (a silence will end them)."""
        return bool(self._buffer) or self._discarding

    def feed(self, chunk: bytes) -> list[Frame]:
        """Take bytes that arrived without a gap; return the frames they complete."""
        if self._discarding:
            return []
        self._buffer.extend(chunk)
        frames: list[Frame] = []
        while self._buffer:
            size = _expected_size(self._buffer)
            if size is None or len(self._buffer) < size:
                if len(self._buffer) > MAX_FRAME:
                    self._drop()
                break
            raw = bytes(self._buffer[:size])
            del self._buffer[:size]
            if not crc_ok(raw):
                # Line noise or a torn frame: a slave resynchronises on the next silence.
                self._drop()
                break
            frames.append(Frame(slave=raw[0], function_code=raw[1], data=raw[2:-2]))
        return frames

    def silence(self) -> Frame | None:
        """The line went quiet: what is held is either a frame of unknown length (returned when
        its CRC is good) or an incomplete one (dropped)."""
        self._discarding = False
        raw, self._buffer = bytes(self._buffer), bytearray()
        if not raw:
            return None
        if _expected_size(raw) is None and len(raw) >= 4 and crc_ok(raw):
            return Frame(slave=raw[0], function_code=raw[1], data=raw[2:-2])
        self.dropped += 1
        return None

    def _drop(self) -> None:
        self.dropped += 1
        self._buffer.clear()
        self._discarding = True


def _expected_size(buffer: bytes | bytearray) -> int | None:
    """The length of the frame `buffer` starts (MAX_FRAME: too little to tell yet; None: a
    function this slave does not know, whose frame ends at silence)."""
    if len(buffer) < 2:
        return MAX_FRAME
    code = buffer[1]
    if code in FIXED_LENGTH:
        return FIXED_LENGTH[code]
    if code in COUNTED:
        return 9 + buffer[6] if len(buffer) >= 7 else MAX_FRAME
    return None
