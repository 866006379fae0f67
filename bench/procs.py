"""Processes a figure measures: a Mosquitto of its own, `unit-controller run` as a real process
(READY timed through its own notify socket), a control-socket client, and /proc readings."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Mosquitto:
    """A Mosquitto on a free loopback port that queues without limit (a loss seen is ours)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The broker's process id."""
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        """mqtt://127.0.0.1:<port>"""
        return f"mqtt://127.0.0.1:{self.port}"

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "max_queued_messages 0",
            "max_inflight_messages 0",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        config.write_text("\n".join(lines) + "\n")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """Stop it (idempotent)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass
class Usage:
    """A process's CPU seconds (user + system) and memory at one moment."""

    cpu_s: float
    rss_mb: float
    pss_mb: float


def usage(pid: int) -> Usage:
    """CPU seconds so far, RSS and PSS (MB) of `pid` from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss_mb = int(fields[21]) * PAGE_BYTES / 1e6
    pss_mb = rss_mb
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                pss_mb = int(line.split()[1]) * 1024 / 1e6
                break
    return Usage(cpu_s=cpu_s, rss_mb=rss_mb, pss_mb=pss_mb)


class NotifyListener:
    """A NOTIFY_SOCKET of our own: the moment a process says READY=1, as systemd would see it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

    def wait_ready(self, proc: subprocess.Popen[bytes], within_s: float = WAIT_S) -> float:
        """Block until READY=1 arrives; its perf_counter time."""
        deadline = time.perf_counter() + within_s
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited ({proc.returncode}) before READY")
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                time.sleep(0.0005)
                continue
            if b"READY=1" in data.split(b"\n"):
                return time.perf_counter()
        raise RuntimeError("no READY=1 within the wait")

    def close(self) -> None:
        """Close and remove the socket."""
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def terminate(proc: subprocess.Popen[bytes], *, wait_s: float) -> None:
    """SIGTERM `proc` (a clean stop), wait up to `wait_s`, SIGKILL after that; reaped."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class DaemonProc:
    """`unit-controller run` on the simulator in `base`, as a real process."""

    def __init__(self, base: Path, *, speed: float = 1.0, args: tuple[str, ...] = ()) -> None:
        self.base = base
        self.state = base / "state"
        self.runtime = base / "run"
        self.speed = speed
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / "daemon.log"
        self.started_at = 0.0
        self.ready_at = 0.0

    @property
    def socket(self) -> Path:
        """The control socket."""
        return self.runtime / "control.sock"

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, *, log_level: str = "warning") -> float:
        """Start it and wait for READY=1; seconds from exec to READY."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.runtime.mkdir(parents=True, exist_ok=True)
        listener = NotifyListener(self.base / "notify.sock")
        command = [
            sys.executable, "-m", "unit_controller.cli", "--log-level", log_level, "run",
            "--speed", str(self.speed), "--state-dir", str(self.state),
            "--runtime-dir", str(self.runtime), *self.args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.endswith("_DIRECTORY")}
        env["NOTIFY_SOCKET"] = str(listener.path)
        try:
            with self.log.open("ab") as log:
                self.started_at = time.perf_counter()
                self.proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, env=env)
            self.ready_at = listener.wait_ready(self.proc)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}; its output ends:\n{self.log_tail(10)}") from None
        except BaseException:
            self.stop()
            raise
        finally:
            listener.close()
        return self.ready_at - self.started_at

    def stop(self) -> None:
        """SIGTERM, wait, and reap (SIGKILL after the wait)."""
        if self.proc is not None:
            terminate(self.proc, wait_s=30)

    def log_tail(self, lines: int = 30) -> str:
        """The end of its output."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Control:
    """A control-socket client: one request, one response (stream lines skipped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Control:
        self.reader, self.writer = await asyncio.open_unix_connection(str(self.path))
        await asyncio.wait_for(self.reader.readline(), WAIT_S)  # hello
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        """One request; its result (raises on a refusal)."""
        line = json.dumps({"id": next(self._ids), "op": op, "args": args}).encode() + b"\n"
        self.writer.write(line)
        await self.writer.drain()
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), WAIT_S)
            if not raw:
                raise ConnectionError("the daemon closed the control socket")
            message: dict[str, Any] = json.loads(raw)
            if "stream" in message:
                continue
            if not message.get("ok"):
                raise RuntimeError(f"{op} refused: {message.get('error')}")
            result: dict[str, Any] = message.get("result") or {}
            return result


async def start_batch(socket_path: Path, recipe: str) -> None:
    """Reset a Stopped unit to Idle and start `recipe` (as the console would)."""
    async with Control(socket_path) as control:
        await control.request("reset")
        deadline = time.monotonic() + WAIT_S
        while (await control.request("status")).get("state") != "IDLE":
            if time.monotonic() > deadline:
                raise RuntimeError("the unit did not reach IDLE after reset")
            await asyncio.sleep(0.05)
        await control.request("start", recipe=recipe)
