"""The fault → safe-outputs figures on a tiny scale, and the bench-side stamps they rest on.

The tiny run uses real time and ptys (one xdist worker with the other real-time tests); nothing
here asserts a time.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from bench.core import Context, Figure
from bench.figures import fault_to_safe
from bench.figures.fault_to_safe import ApplyLog, StampedRelayPort, carries_at_least
from hal.outputs import Outputs
from hal.serial.modbus_frames import COIL_OFF
from hal.sim.emulators.rtu_frames import with_crc

HEATING = replace(Outputs.safe(), heater_on_s=3.9, contactor=True)


@pytest.mark.xdist_group("bench")
def test_every_figure_comes_from_a_tiny_run(tmp_path: Path) -> None:
    figures = fault_to_safe.measure(Context(workdir=tmp_path, tiny=True, say=lambda _: None))
    assert set(figures) == set(fault_to_safe.KEYS)
    for figure in figures.values():
        assert isinstance(figure, Figure)
        assert figure.unit == "ms"
        assert math.isfinite(figure.value)
        assert figure.baseline is not None
        assert figure.note
    assert figures["fault_to_safe_p99_ms"].goal is not None
    assert figures["fault_to_safe_serial_p99_ms"].goal is not None


def test_the_apply_log_stamps_the_first_heater_off_contactor_open_after_it_is_armed() -> None:
    log = ApplyLog()
    log.applied(Outputs.safe(), at=1.0)  # not armed: nothing stamped
    assert log.safe_at is None
    log.arm()
    log.applied(HEATING, at=2.0)
    log.applied(replace(HEATING, heater_on_s=0.0), at=3.0)  # contactor still closed
    assert log.safe_at is None
    log.applied(replace(Outputs.safe(), cooling_valve=True), at=4.0)
    log.applied(Outputs.safe(), at=5.0)
    assert log.safe_at == 4.0
    assert log.safe.is_set()


class _Chunks:
    """A port whose reads hand out the given chunks in turn."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    async def read(self) -> bytes:
        return self.chunks.pop(0)

    def write(self, data: bytes) -> None:
        pass


def _fc05(address: int, value: int) -> bytes:
    return with_crc(bytes([1, 5, address >> 8, address & 0xFF, value >> 8, value & 0xFF]))


async def test_the_relay_port_stamps_the_heater_off_write_only_after_the_contactor_off() -> None:
    heater_off, contactor_off = _fc05(0, COIL_OFF), _fc05(1, COIL_OFF)
    chunks = _Chunks(heater_off, contactor_off[:5], contactor_off[5:], b"\x01\x02", heater_off)
    port = StampedRelayPort(chunks, slave=1, heater_relay=0, contactor_relay=1)
    port.arm()
    await port.read()  # a heater-off before the contactor-off: a proportioner gap, not the trip
    assert port.heater_off_at is None
    await port.read()
    await port.read()  # the contactor-off frame, split across two reads
    assert port.contactor_off_at is not None
    assert port.heater_off_at is None
    await port.read()  # an input poll's first bytes
    assert port.heater_off_at is None
    await port.read()
    assert port.heater_off_at is not None
    assert port.heater_off.is_set()


def test_a_tripping_reading_is_told_from_other_replies() -> None:
    assert carries_at_least(b"95.000\r*OK\r", 95.0)
    assert not carries_at_least(b"25.312\r*OK\r", 95.0)
    assert not carries_at_least(b"?i,RTD,2.13\r*OK\r", 95.0)
