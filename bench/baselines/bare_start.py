"""The anchor for start-up time and memory: the interpreter floor of a daemon like ours. A bare
Python process that imports asyncio, opens a SQLite file (WAL, one table, as a journal would) and
sends READY=1 to $NOTIFY_SOCKET, then idles on its loop until SIGTERM.

`python bench/baselines/bare_start.py DB` is the process; `BareStart(workdir)` starts it as
`DaemonProc` starts the daemon (exec → READY seconds, `.pid` for its RSS). Run as a file, not
`-m`, so not even the bench package is imported. Does nothing a daemon could skip; never tuned.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _notify(message: bytes) -> None:
    """One datagram to $NOTIFY_SOCKET, as sd_notify(3) sends it (nothing without the variable)."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    address = "\0" + path[1:] if path.startswith("@") else path
    # As sd_notify(3): a listener that is gone is no error of ours.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        sock.sendto(message, address)


async def _serve(db: Path) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS events (ts INTEGER, kind TEXT, body TEXT)")
        conn.commit()
        _notify(b"READY=1\nSTATUS=idle")
        await stop.wait()
        _notify(b"STOPPING=1")
    finally:
        conn.close()


class BareStart:
    """The bare process in `workdir`, started like `bench.procs.DaemonProc`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> float:
        """Start it and wait for READY=1; seconds from exec to READY."""
        # Imported here: the process itself (below) must not import the bench package.
        from bench.procs import NotifyListener

        self.workdir.mkdir(parents=True, exist_ok=True)
        db = self.workdir / "bare.db"
        for stale in (db, db.with_name("bare.db-wal"), db.with_name("bare.db-shm")):
            stale.unlink(missing_ok=True)
        listener = NotifyListener(self.workdir / "notify.sock")
        env = {**os.environ, "NOTIFY_SOCKET": str(listener.path)}
        try:
            started = time.perf_counter()
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE), str(db)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            ready = listener.wait_ready(self.proc)
        except BaseException:
            self.stop()
            raise
        finally:
            listener.close()
        return ready - started

    def stop(self) -> None:
        """SIGTERM, wait, and reap."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> BareStart:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.stop()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1])))
