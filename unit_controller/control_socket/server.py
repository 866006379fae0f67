"""The control socket server: a UNIX socket (mode 0660) speaking JSON lines, one session a client.

A client can only ever hurt its own connection (see connection.py), and nothing here blocks the
scan. The request machinery and the Operations load with the first session, not at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal.log import get_logger
from unit_controller.events import UnitEvent
from unit_controller.mqtt.payloads import EpochClock, event_payload

from .protocol import MAX_LINE_BYTES, ErrorCode, Response

if TYPE_CHECKING:
    from unit_controller.controller import Snapshot

    from .connection import Connection
    from .ops import Operations

log = get_logger(__name__)


class ControlServer:
    """Listens on `path`; each connection gets a Session and the Operations, which `make_ops`
    builds for the first one."""

    def __init__(
        self,
        *,
        path: Path,
        make_ops: Callable[[], Operations],
        epoch: EpochClock,
        hello: Callable[[], dict[str, Any]],
        group: str | None = None,
        max_connections: int = 16,
        idle_timeout_s: float = 1800.0,
    ) -> None:
        self.path = path
        self._max_connections = max_connections
        self._idle_timeout_s = idle_timeout_s
        self._make_ops = make_ops
        self._ops: Operations | None = None
        self._epoch = epoch
        self._hello = hello
        self._group = group
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()

    async def start(self) -> None:
        """Create the socket (replacing a stale one) with mode 0660 and the configured group."""
        try:
            if not self.path.parent.is_dir():
                self.path.parent.mkdir(parents=True)
                # Made here (not by systemd): the socket's group must reach the socket (0660)
                # inside, and nobody else list it, whatever the umask.
                self.path.parent.chmod(0o711)
        except OSError as exc:
            raise OSError(
                f"cannot create the runtime directory {self.path.parent} for the control socket: "
                f"{exc.strerror or exc}"
            ) from None
        if self.path.exists() or self.path.is_symlink():
            if await socket_answers(self.path):
                raise OSError(f"another controller is listening on {self.path}")
            self.path.unlink()
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_LINE_BYTES
        )
        try:
            os.chmod(self.path, 0o660)
            if self._group:
                shutil.chown(self.path, group=self._group)
        except (OSError, LookupError) as exc:
            await self.close()
            raise OSError(
                f"cannot give the control socket {self.path} to its group: {exc}"
            ) from None
        log.info("control.listening", path=str(self.path), group=self._group)

    async def close(self) -> None:
        """Stop listening, end every session, remove the socket."""
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def snapshot(self, snap: Snapshot) -> None:
        """A scan's snapshot (the controller's watcher): nothing to do; status reads it live."""

    def event(self, event: UnitEvent) -> None:
        """A controller event: to every session that watches."""
        payload = event_payload(event, epoch=self._epoch)
        for connection in self._connections:
            connection.event(payload)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self._max_connections:
            # Idle sessions must not crowd out the tech who comes to the unit: the cap, and the
            # idle timeout that frees what a vanished client left open.
            log.warning("control.too_many_sessions", limit=self._max_connections)
            writer.write(
                Response(
                    id=None,
                    ok=False,
                    error=f"too many control sessions ({self._max_connections}): try again later",
                    code=ErrorCode.REFUSED,
                ).line()
            )
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        # The first session loads the request machinery and builds the Operations.
        from .connection import Connection, peer_user
        from .ops import Session

        if self._ops is None:
            self._ops = self._make_ops()
        ops = self._ops
        connection = Connection(
            reader=reader,
            writer=writer,
            ops=ops,
            session=Session(user=peer_user(writer)),
            idle_timeout_s=self._idle_timeout_s,
        )
        self._connections.add(connection)
        log.info("control.connected", user=connection.session.user)
        try:
            await connection.serve(self._hello())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("control.session_failed", user=connection.session.user)
        finally:
            self._connections.discard(connection)
            connection.close()
            try:
                await ops.session_closed(connection.session)
            except asyncio.CancelledError:
                # The server is closing (the daemon stops): the stop ends manual mode itself.
                log.info("control.session_closed_at_stop", source=connection.session.source)
            log.info("control.disconnected", source=connection.session.source)


async def socket_answers(path: Path) -> bool:
    """True when something accepts connections on the socket at `path`."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True
