"""systemd's notify protocol (sd_notify): READY, WATCHDOG, STATUS and STOPPING datagrams.

A no-op outside systemd; never blocks and never raises (a lost notification is only logged).
"""

from __future__ import annotations

import os
import socket

from hal.log import get_logger

log = get_logger(__name__)


class SdNotifier:
    """Sends notifications to $NOTIFY_SOCKET (the protocol is stable: one datagram each)."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._address: str | None = None
        self._socket: socket.socket | None = None
        if address:
            # An abstract socket is written with a leading '@' and means a leading NUL.
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        """True under systemd (NOTIFY_SOCKET set)."""
        return self._socket is not None

    def notify(self, *fields: str) -> None:
        """Send `KEY=value` fields in one datagram."""
        if self._socket is None or self._address is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.warning("sdnotify.failed", reason=str(exc), fields=fields)

    def ready(self, status: str) -> None:
        """Start-up is done: config and HAL are up."""
        self.notify("READY=1", f"STATUS={status}")

    def watchdog(self) -> None:
        """The scan loop is alive."""
        self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        """A line for `systemctl status`."""
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        """A clean stop has begun."""
        self.notify("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval_s() -> float | None:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC) when it applies to this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None
