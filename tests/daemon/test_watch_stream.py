"""The control socket's `watch` stream: the status at once and every `every_s`, each event as it
comes, and no task made per line sent (a watching console costs the loop next to nothing)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

from hal.clock import VirtualClock
from unit_controller.control_socket.args import WatchArgs
from unit_controller.control_socket.ops import Operations, Session
from unit_controller.control_socket.server import ControlServer
from unit_controller.events import StateChanged
from unit_controller.machine import State
from unit_controller.mqtt.payloads import EpochClock

WAIT_S = 30.0


class _Ops:
    """Just what the server asks of the operations for a watch."""

    def __init__(self) -> None:
        self.statuses = 0

    def parse(self, request: Any) -> tuple[None, WatchArgs]:
        return None, WatchArgs.model_validate(request.args)

    def status(self) -> dict[str, Any]:
        self.statuses += 1
        return {"state": "STOPPED", "n": self.statuses}

    async def session_closed(self, session: Session) -> None:
        pass


async def test_a_watch_streams_the_status_then_each_event_as_it_comes(tmp_path: Path) -> None:
    clock = VirtualClock()
    server = ControlServer(
        path=tmp_path / "control.sock",
        make_ops=lambda: cast(Operations, _Ops()),
        epoch=EpochClock(clock=clock),
        hello=lambda: {"unit": "test"},
    )
    await server.start()
    loop = asyncio.get_running_loop()
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kw)

    reader, writer = await asyncio.open_unix_connection(str(server.path))
    try:
        async with asyncio.timeout(WAIT_S):
            await reader.readline()  # hello
            writer.write(b'{"id": 7, "op": "watch", "args": {"every_s": 60}}\n')
            lines = [json.loads(await reader.readline()) for _ in range(2)]
            assert (lines[0]["id"], lines[0]["ok"]) == (7, True)  # the answer to `watch`
            assert lines[1] == {"id": 7, "stream": "status", "data": {"state": "STOPPED", "n": 1}}
            loop.set_task_factory(factory)
            for n in range(3):
                server.event(
                    StateChanged(at=float(n), old=State.STOPPED, new=State.IDLE, cause="x")
                )
                event = json.loads(await reader.readline())
                assert event["stream"] == "event"
                assert event["data"]["kind"] == "state"
    finally:
        loop.set_task_factory(None)
        writer.close()
        await server.close()
    assert made == []
