"""The console reads an answer longer than a request may be (`log 500` of long entries)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from unit_controller.console.client import ControlClient


async def test_an_answer_far_longer_than_a_request_line_is_read_whole(tmp_path: Path) -> None:
    entries = [{"n": n, "text": "x" * 300} for n in range(500)]  # ~160 kB on one line

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"hello": {"unit": "u1"}}\n')
        request = json.loads(await reader.readline())
        answer = {"id": request["id"], "ok": True, "result": {"entries": entries}}
        writer.write(json.dumps(answer).encode() + b"\n")
        await writer.drain()
        await reader.read()  # until the client leaves
        writer.close()

    path = tmp_path / "control.sock"
    server = await asyncio.start_unix_server(serve, path=str(path))
    async with server:
        client = ControlClient()
        await client.connect(path)
        try:
            response = await client.request("log", {"n": 500})
            assert response.result == {"entries": entries}
        finally:
            await client.close()
