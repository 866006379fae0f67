"""Lines from a terminal in its own (cooked) mode, and from a pipe: Ctrl-D runs nothing typed."""

from __future__ import annotations

import asyncio
import os

from unit_controller.console.terminal import TerminalInput


async def _items(reader_fd: int, typed: list[bytes], writer_fd: int) -> list[str | None]:
    stream = os.fdopen(reader_fd, "r", encoding="utf-8", closefd=False)
    terminal = TerminalInput(stream, loop=asyncio.get_running_loop())
    terminal.start()
    for chunk in typed:
        # The line discipline keeps them apart: a read ends at each newline or Ctrl-D.
        os.write(writer_fd, chunk)
    items: list[str | None] = []
    while True:
        item = await asyncio.wait_for(terminal.get(), 10.0)
        assert item is None or isinstance(item, str)
        items.append(item)
        if item is None:
            return items


async def test_ctrl_d_twice_after_typing_at_a_terminal_runs_nothing() -> None:
    master, slave = os.openpty()
    try:
        # `status` entered; `mode remote` typed, never entered: Ctrl-D, Ctrl-D.
        items = await _items(slave, [b"status\n", b"mode remote\x04", b"\x04"], master)
    finally:
        os.close(master)
        os.close(slave)
    assert items == ["status", None]


async def test_a_piped_script_whose_last_line_has_no_newline_still_runs_it() -> None:
    read, write = os.pipe()
    try:
        os.write(write, b"status\nalarms")
        os.close(write)
        stream = os.fdopen(read, "r", encoding="utf-8", closefd=False)
        terminal = TerminalInput(stream, loop=asyncio.get_running_loop())
        terminal.start()
        items = [await asyncio.wait_for(terminal.get(), 10.0) for _ in range(3)]
    finally:
        os.close(read)
    assert items == ["status", "alarms", None]
