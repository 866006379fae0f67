"""The emulated port's part in the lockstep clock: bytes on a pty count as on their way while a
reader may still come for them, and no longer once nobody has for a while."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hal.sim.emulators import pty_port
from hal.sim.emulators.pty_port import PtyPort


async def _until_pending(port: PtyPort) -> None:
    """Wait (bounded) for the kernel to hand the written bytes across the pty."""
    for _ in range(2000):
        if port.pending():
            return
        await asyncio.sleep(0.001)
    pytest.fail("the written bytes never showed on the pty")


async def test_unread_bytes_stay_on_their_way_until_nobody_has_read_them_for_a_while(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(pty_port, "_now", lambda: now[0])
    port = PtyPort(directory=tmp_path, name="usb-ezo-ph")
    try:
        assert not port.pending()
        port.write(b"9.512\r")  # a reply no driver reads yet
        await _until_pending(port)
        # Looked at again at once: a loaded host may not have run the reader yet.
        assert port.pending()
        now[0] += 2 * pty_port.STUCK_S
        assert not port.pending()  # nobody came for them: they are not on their way
        port.write(b"9.513\r")
        await _until_pending(port)  # new bytes are on their way again
    finally:
        port.close()
