"""The relay board against the Modbus Application Protocol V1.1b3, Modbus over Serial Line
V1.02 and the Waveshare wiki, frame by frame (what mbpoll or any generic master sends)."""

from __future__ import annotations

from pathlib import Path

from hal.sim.emulators.rtu_frames import with_crc
from tests.conformance.conftest import relay_line


def _exception(function: int, code: int) -> bytes:
    return with_crc(bytes([1, function | 0x80, code]))


async def test_a_read_of_quantity_zero_is_exception_03(where: str, tmp_path: Path) -> None:
    async with relay_line(where, tmp_path) as line:
        frame = with_crc(bytes.fromhex("01 01 0000 0000"))
        assert await line.ask(frame, expect=5) == _exception(1, 3)
        frame = with_crc(bytes.fromhex("01 02 0000 07D1"))  # 2001 inputs
        assert await line.ask(frame, expect=5) == _exception(2, 3)


async def test_an_unknown_function_is_exception_01_and_the_next_request_is_answered(
    where: str, tmp_path: Path
) -> None:
    async with relay_line(where, tmp_path) as line:
        assert await line.ask(with_crc(bytes.fromhex("01 2B 0E01 00")), expect=5) == _exception(
            0x2B, 1
        )
        answer = await line.ask(with_crc(bytes.fromhex("01 01 0000 0008")), expect=6)
        assert answer[:3] == bytes.fromhex("01 01 01")
        assert answer == with_crc(answer[:-2])


async def test_fc15_whose_byte_count_does_not_match_is_exception_03_and_changes_nothing(
    where: str, tmp_path: Path
) -> None:
    async with relay_line(where, tmp_path) as line:
        before = await line.ask(with_crc(bytes.fromhex("01 01 0000 0008")), expect=6)
        # 8 coils need 1 byte; this says 2.
        torn = with_crc(bytes.fromhex("01 0F 0000 0008 02 FF 00"))
        assert await line.ask(torn, expect=5) == _exception(15, 3)
        assert await line.ask(with_crc(bytes.fromhex("01 01 0000 0008")), expect=6) == before


async def test_an_address_past_the_last_relay_is_exception_02(where: str, tmp_path: Path) -> None:
    async with relay_line(where, tmp_path) as line:
        frame = with_crc(bytes.fromhex("01 01 0006 0004"))
        assert await line.ask(frame, expect=5) == _exception(1, 2)


async def test_waveshare_version_and_address_registers(where: str, tmp_path: Path) -> None:
    async with relay_line(where, tmp_path) as line:
        version = await line.ask(with_crc(bytes.fromhex("01 03 8000 0001")), expect=7)
        assert version[:3] == bytes.fromhex("01 03 02")
        assert int.from_bytes(version[3:5], "big") >= 100  # V1.00 and later
        # The wiki reads the address of a board of unknown address by broadcast.
        address = await line.ask(with_crc(bytes.fromhex("00 03 4000 0001")), expect=7)
        assert address[:5] == bytes.fromhex("00 03 02 00 01")


async def test_all_relays_toggle_and_flash(where: str, tmp_path: Path) -> None:
    async with relay_line(where, tmp_path) as line:
        read = with_crc(bytes.fromhex("01 01 0000 0008"))
        all_off = with_crc(bytes.fromhex("01 05 00FF 0000"))
        assert await line.ask(all_off, expect=8) == all_off
        assert (await line.ask(read, expect=6))[3] == 0x00
        toggle_7 = with_crc(bytes.fromhex("01 05 0007 5500"))  # a spare relay on the unit
        assert await line.ask(toggle_7, expect=8) == toggle_7
        assert (await line.ask(read, expect=6))[3] == 0x80
        assert await line.ask(toggle_7, expect=8) == toggle_7
        assert (await line.ask(read, expect=6))[3] == 0x00
        flash = with_crc(bytes.fromhex("01 05 0207 0005"))  # relay 7 on for 500 ms
        assert await line.ask(flash, expect=8) == flash
        assert (await line.ask(read, expect=6))[3] == 0x80
        bad_value = with_crc(bytes.fromhex("01 05 0007 1234"))
        assert await line.ask(bad_value, expect=5) == _exception(5, 3)


async def test_a_broadcast_write_is_carried_out_and_not_answered(
    where: str, tmp_path: Path
) -> None:
    async with relay_line(where, tmp_path) as line:
        read = with_crc(bytes.fromhex("01 01 0000 0008"))
        on_7 = with_crc(bytes.fromhex("00 05 0007 FF00"))
        assert await line.ask(on_7, expect=8, within_s=0.5) == b""
        assert (await line.ask(read, expect=6))[3] & 0x80
        await line.ask(with_crc(bytes.fromhex("01 05 0007 0000")), expect=8)


async def test_a_frame_torn_by_a_50_ms_gap_is_dropped(where: str, tmp_path: Path) -> None:
    async with relay_line(where, tmp_path) as line:
        read = with_crc(bytes.fromhex("01 01 0000 0008"))
        await line.send_torn(read, split=4, gap_s=0.05)
        assert await line.ask(b"", expect=6, within_s=0.5) == b""
        answer = await line.ask(read, expect=6)
        assert answer[:3] == bytes.fromhex("01 01 01")
