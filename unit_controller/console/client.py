"""Client of the daemon's control socket: JSON lines, requests matched to responses by id, watch.

Never blocks the event loop, never retries a command on its own, and never lets a lost connection
pass silently: every waiting request and watcher gets `ConnectionLost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MAX_LINE_BYTES: Final = 65536  # a request, as the daemon reads it
# A response: `log 500` of long entries (each command's args included) runs well past a
# request's limit, and a line cut short would read as the daemon gone.
MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
CONNECT_TIMEOUT_S: Final = 5.0
REQUEST_TIMEOUT_S: Final = 30.0
CLOSE_TIMEOUT_S: Final = 2.0


class ConsoleError(Exception):
    """The console cannot go on with what it was doing; the message is one line for people."""


class Unreachable(ConsoleError):
    """No session with the controller: `retry` when waiting may help (it is not running yet or
    is restarting), not when only an administrator can (the socket's permissions)."""

    def __init__(self, text: str, *, retry: bool) -> None:
        super().__init__(text)
        self.retry = retry


class ConnectionLost(ConsoleError):
    """The connection to the controller is gone: nothing more can be sent on it."""


class RequestFailed(ConsoleError):
    """The controller answered a request with ok: false; `response` holds its error and code."""

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(response.error or f"refused ({response.code or 'no reason given'})")


@dataclass(frozen=True, slots=True)
class Response:
    """The controller's answer to one request."""

    id: int
    ok: bool
    error: str | None
    code: str | None
    result: dict[str, Any] | None

    @classmethod
    def from_message(cls, message: Mapping[str, Any], *, request_id: int) -> Response:
        """Read a response line's object; a malformed one becomes ok=False with code 'internal'."""
        ok, error, code = message.get("ok"), message.get("error"), message.get("code")
        result = message.get("result")
        if not isinstance(ok, bool) or not isinstance(result, dict | None):
            error = "the controller sent a malformed response"
            return cls(id=request_id, ok=False, error=error, code="internal", result=None)
        return cls(
            id=request_id,
            ok=ok,
            error=error if isinstance(error, str) else None,
            code=code if isinstance(code, str) else None,
            result=result,
        )


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One line of a watch stream: `stream` is "status" or "event", `data` its object."""

    stream: str
    data: dict[str, Any]


_LOST: Final = object()  # put on the watch queue when the connection goes
_STOPPED: Final = object()  # put on the watch queue by unwatch


class ControlClient:
    """One connection to the control socket; requests may overlap, one watch at a time."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._last_id = 0
        self._watch_id: int | None = None
        self._stream: asyncio.Queue[StreamMessage | object] = asyncio.Queue()
        self._lost = False
        self._gone = asyncio.Event()  # set once the connection is lost or closed

    # --- connection ---------------------------------------------------------------------------
    async def connect(self, path: Path, *, timeout_s: float = CONNECT_TIMEOUT_S) -> dict[str, Any]:
        """Connect and read the greeting; returns the `hello` object, or raises ConsoleError."""
        self.path = path
        try:
            async with asyncio.timeout(timeout_s):
                self._reader, self._writer = await asyncio.open_unix_connection(
                    str(path), limit=MAX_RESPONSE_BYTES
                )
                first = await self._reader.readline()
        except TimeoutError:
            await self.close()
            raise self._unreachable(f"no greeting within {timeout_s:g} s") from None
        except PermissionError as exc:
            await self.close()
            hint = "may this user use it (the socket's group)?"
            raise self._unreachable(exc.strerror or str(exc), hint=hint, retry=False) from None
        except (OSError, ValueError) as exc:
            await self.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise self._unreachable(reason) from None
        hello = _decode(first)
        if hello is not None and hello.get("ok") is False and isinstance(hello.get("error"), str):
            # Running, but it turned this session away (e.g. every session slot taken).
            await self.close()
            refusal = hello["error"][:200]
            raise Unreachable(
                f"the controller at {self.path} refused a session: {refusal}", retry=True
            )
        if hello is None or not isinstance(hello.get("hello"), dict):
            await self.close()
            what = "closed the connection" if not first else "did not greet as expected"
            raise self._unreachable(f"the socket {what}")
        self._read_task = asyncio.create_task(self._read_loop(), name="console-read")
        greeting: dict[str, Any] = hello["hello"]
        return greeting

    def _unreachable(
        self, reason: str, *, hint: str = "is unit-controller running?", retry: bool = True
    ) -> Unreachable:
        text = f"cannot reach the controller at {self.path}: {reason} — {hint}"
        return Unreachable(text, retry=retry)

    async def close(self) -> None:
        """Close the connection (idempotent); waiting requests get ConnectionLost."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await writer.wait_closed()
            except TimeoutError:
                writer.transport.abort()  # a controller that stopped reading: drop what is left
            except OSError:
                pass
        task, self._read_task = self._read_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._set_lost()

    @property
    def connected(self) -> bool:
        """True until the connection is closed or lost."""
        return self._writer is not None and not self._lost

    async def wait_lost(self) -> None:
        """Return once the connection is lost or closed (at once if it never was open)."""
        if self.connected:
            await self._gone.wait()

    # --- requests -----------------------------------------------------------------------------
    async def request(
        self,
        op: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> Response:
        """Send one request and wait for its response; raises ConsoleError on loss or timeout."""
        request_id = self._next_id()
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._send({"id": request_id, "op": op, "args": dict(args or {})})
            try:
                async with asyncio.timeout(timeout_s):
                    return await future
            except TimeoutError:
                raise ConsoleError(
                    f"no answer from the controller to '{op}' within {timeout_s:g} s"
                ) from None
        finally:
            self._pending.pop(request_id, None)

    async def watch(
        self, every_s: float | None = None, *, status: bool = True
    ) -> AsyncIterator[StreamMessage]:
        """Start a watch and yield its status and event lines until `unwatch` or a lost link;
        with `status=False` the controller is asked for its events only.

        Raises RequestFailed if the controller refuses the watch, ConnectionLost when the link goes.
        """
        async for message in await self.subscribe(every_s, status=status):
            yield message

    async def subscribe(
        self, every_s: float | None = None, *, status: bool = True
    ) -> AsyncGenerator[StreamMessage, None]:
        """Start a watch and return, once the controller has taken it, its lines (as `watch`).

        Raises RequestFailed if the controller refuses the watch.
        """
        if self._watch_id is not None:
            raise ConsoleError("a watch is already running on this connection")
        args: dict[str, Any] = {} if every_s is None else {"every_s": every_s}
        if not status:
            args["status"] = False
        request_id = self._next_id()
        self._watch_id = request_id  # set first: stream lines may follow the response at once
        self._stream = asyncio.Queue()
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        # From here the controller may be streaming: `_watch_id` stays until `unwatch`, also
        # when the wait below times out or is cancelled.
        try:
            await self._send({"id": request_id, "op": "watch", "args": args})
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                response = await future
        except TimeoutError:
            raise ConsoleError(
                f"no answer from the controller to 'watch' within {REQUEST_TIMEOUT_S:g} s"
            ) from None
        finally:
            self._pending.pop(request_id, None)
        if not response.ok:
            self._watch_id = None
            raise RequestFailed(response)
        return self._lines(self._stream)

    async def _lines(
        self, queue: asyncio.Queue[StreamMessage | object]
    ) -> AsyncGenerator[StreamMessage, None]:
        while True:
            item = await queue.get()
            if isinstance(item, StreamMessage):
                yield item
            elif item is _STOPPED:
                return
            else:
                raise ConnectionLost(self._lost_text())

    async def unwatch(self) -> None:
        """Stop the running watch, if any; stream lines still in flight are dropped."""
        if self._watch_id is None:
            return
        self._watch_id = None
        self._stream.put_nowait(_STOPPED)  # ends an iterator still waiting on the stream
        if self.connected:
            response = await self.request("unwatch")
            if not response.ok:
                raise RequestFailed(response)

    # --- plumbing -----------------------------------------------------------------------------
    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _lost_text(self) -> str:
        return f"lost the connection to the controller at {self.path}"

    async def _send(self, message: Mapping[str, Any]) -> None:
        if self._lost:
            raise ConnectionLost(self._lost_text())
        if self._writer is None:
            raise ConsoleError("not connected to the controller")
        data = (json.dumps(message, ensure_ascii=False, allow_nan=False) + "\n").encode()
        if len(data) > MAX_LINE_BYTES:
            raise ConsoleError(f"request too long for the control socket ({len(data)} bytes)")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, RuntimeError):
            self._set_lost()
            raise ConnectionLost(self._lost_text()) from None

    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        try:
            while True:
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    return  # end of stream (a torn last line counts as the end too)
                self._dispatch(line)
        except (OSError, ValueError):
            return  # reset by peer, or a line over the protocol's limit
        finally:
            self._set_lost()

    def _dispatch(self, line: bytes) -> None:
        message = _decode(line)
        if message is None:
            return  # not a protocol line: nothing can be matched to it
        message_id = message.get("id")
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            return
        stream = message.get("stream")
        if stream is not None:
            data = message.get("data")
            if message_id == self._watch_id and isinstance(stream, str) and isinstance(data, dict):
                self._stream.put_nowait(StreamMessage(stream=stream, data=data))
            return
        future = self._pending.get(message_id)
        if future is not None and not future.done():
            future.set_result(Response.from_message(message, request_id=message_id))

    def _set_lost(self) -> None:
        self._lost = True
        self._gone.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(self._lost_text()))
        self._pending.clear()
        self._stream.put_nowait(_LOST)


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return message if isinstance(message, dict) else None
