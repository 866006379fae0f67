"""One control-socket client: its requests read and answered in order, and its watch stream.

Loaded by the first session, not with the daemon: a unit serves its field tech a few times a
month, and the request models (ops, their arguments, the PIN desk) cost ~10 ms of each start.
A client can only ever hurt its own connection: bad lines get an error and a slow reader loses
stream lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import pwd
import socket
import struct
from typing import Any

from hal.log import get_logger
from hal.schema import ValidationError
from unit_controller.json_limits import JsonRefused, parse_json
from unit_controller.tomlfile import location

from .args import WatchArgs
from .ops import Operations, Session
from .protocol import MAX_LINE_BYTES, ErrorCode, OpError, Request, Response, encode_line

log = get_logger(__name__)

# A client this far behind on stream lines (bytes unsent) is skipped until it catches up.
SLOW_CLIENT_BYTES = 256 * 1024
EVENT_QUEUE = 200


class Connection:
    """One client: reads requests in order, writes responses and stream lines."""

    def __init__(
        self,
        *,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ops: Operations,
        session: Session,
        idle_timeout_s: float,
    ) -> None:
        self._idle_timeout_s = idle_timeout_s
        self.reader = reader
        self.writer = writer
        self.ops = ops
        self.session = session
        self._watch: asyncio.Task[None] | None = None
        self._watch_id: int | str | None = None
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=EVENT_QUEUE)
        self._nudge: asyncio.Future[None] | None = None  # the status stream's wait, if waiting

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self.writer.close()

    def _send(self, line: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(line)

    async def serve(self, hello: dict[str, Any]) -> None:
        self._send(encode_line({"hello": hello}))
        await self.writer.drain()
        while True:
            try:
                line = await self._next_line()
            except TimeoutError:
                self._send(
                    Response(
                        id=None,
                        ok=False,
                        error=f"nothing sent for {self._idle_timeout_s:g} s: closing",
                        code=ErrorCode.REFUSED,
                    ).line()
                )
                await self.writer.drain()
                return
            except (asyncio.LimitOverrunError, ValueError):
                self._send(
                    Response(
                        id=None,
                        ok=False,
                        error=f"line longer than {MAX_LINE_BYTES} bytes: closing",
                        code=ErrorCode.BAD_REQUEST,
                    ).line()
                )
                await self.writer.drain()
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                response = await self._answer(line)
            except Exception as exc:
                # A bug answering one line is that line's error: the session goes on.
                log.exception("control.request_failed", user=self.session.user)
                response = Response(
                    id=None, ok=False, error=f"internal error: {exc!r}", code=ErrorCode.INTERNAL
                )
            if response is not None:
                self._send(response.line())
                await self.writer.drain()

    async def _next_line(self) -> bytes:
        """The next request line; TimeoutError once idle too long (a watcher is never idle)."""
        reading = asyncio.ensure_future(self.reader.readline())
        try:
            while True:
                done, _ = await asyncio.wait({reading}, timeout=self._idle_timeout_s)
                if done:
                    return reading.result()
                if self._watch is None:
                    raise TimeoutError
        finally:
            reading.cancel()

    async def _answer(self, line: bytes) -> Response | None:
        try:
            document = parse_json(line.strip(), max_bytes=MAX_LINE_BYTES, what="the request")
        except JsonRefused as exc:
            return Response(id=None, ok=False, error=str(exc), code=ErrorCode.BAD_REQUEST)
        if not isinstance(document, dict):
            return Response(
                id=None, ok=False, error="a request is a JSON object", code=ErrorCode.BAD_REQUEST
            )
        raw_id = document.get("id")
        echo = raw_id if isinstance(raw_id, int | str) and not isinstance(raw_id, bool) else None
        try:
            request = Request.model_validate(document)
        except ValidationError as exc:
            text = "; ".join(
                f"{location(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
            )
            return Response(id=echo, ok=False, error=text, code=ErrorCode.BAD_REQUEST)
        if request.op in ("watch", "unwatch"):
            return self._watching(request)
        return await self.ops.handle(self.session, request)

    def _watching(self, request: Request) -> Response:
        try:
            _, args = self.ops.parse(request)
        except OpError as exc:
            return Response(id=request.id, ok=False, error=exc.message, code=exc.code)
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if request.op == "unwatch":
            return Response(id=request.id, ok=True, result={"watching": False})
        assert isinstance(args, WatchArgs)
        self._watch_id = request.id
        while not self._events.empty():
            self._events.get_nowait()
        stream = self._stream if args.status else self._stream_events
        self._watch = asyncio.create_task(stream(request.id, args.every_s))
        return Response(id=request.id, ok=True, result={"watching": True})

    def event(self, payload: dict[str, Any]) -> None:
        if self._watch is None:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(payload)
        if self._nudge is not None:
            _wake(self._nudge)

    async def _stream(self, request_id: int | str | None, every_s: float) -> None:
        """The status every `every_s`, and events as they come."""
        loop = asyncio.get_running_loop()
        next_status = loop.time()
        while True:
            if loop.time() >= next_status:
                self._stream_line(request_id, "status", self.ops.status())
                next_status = loop.time() + every_s
            elif not self._events.empty():
                self._stream_line(request_id, "event", self._events.get_nowait())
            else:
                await self._event_or(next_status)
                continue
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()

    async def _event_or(self, when: float) -> None:
        """Until an event comes or the loop's clock reaches `when`: one future and one timer,
        no task and no timeout exception (a watching console costs next to nothing a second)."""
        loop = asyncio.get_running_loop()
        woke: asyncio.Future[None] = loop.create_future()
        self._nudge = woke
        timer = loop.call_at(when, _wake, woke)
        try:
            await woke
        finally:
            timer.cancel()
            self._nudge = None

    async def _stream_events(self, request_id: int | str | None, every_s: float) -> None:
        """Events only, as they come (`watch` with `status: false`); `every_s` is not used."""
        while True:
            self._stream_line(request_id, "event", await self._events.get())
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()

    def _stream_line(self, request_id: int | str | None, kind: str, data: dict[str, Any]) -> None:
        transport = self.writer.transport
        if transport is not None and transport.get_write_buffer_size() > SLOW_CLIENT_BYTES:
            return  # the client is not reading: skip rather than grow without bound
        self._send(encode_line({"id": request_id, "stream": kind, "data": data}))


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def peer_user(writer: asyncio.StreamWriter) -> str:
    """The user name of the process on the other end (SO_PEERCRED), or 'unknown'."""
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return "unknown"
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        return pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        return "unknown"
