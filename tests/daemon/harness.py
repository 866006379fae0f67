"""A daemon in temp directories as a real process, a raw control-socket client, and a console
on a pseudo-terminal. Test support only: every wait is bounded, nothing sleeps blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.recipe_parts import FILL_TO_LSL
from unit_controller.recipes.loader import RECIPES_DIR

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 30.0

# A short batch with an operator prompt: fill to LSL, wait for the tech, drain.
SAMPLE_RECIPE = (
    """\
name = "sample"
description = "Fill, wait for the tech to take a sample, drain."
starts_with = "empty"
"""
    + FILL_TO_LSL
    + """
[[phases]]
name = "sample"
timeout_min = 30.0
agitator = true
until = { confirm = "Sample taken" }

[[phases]]
name = "drain"
timeout_min = 8.0
drain = true
until = { level_below = "low_low" }
"""
)


class Daemon:
    """`unit-controller run` on the simulator in its own state and runtime directories."""

    def __init__(
        self,
        base: Path,
        *,
        speed: float = 100.0,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = args
        self.extra_env = env or {}
        self.state = base / "state"
        self.runtime = base / "run"
        self.recipes = base / "recipes"
        self.speed = speed
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / "daemon.log"
        if not self.recipes.exists():
            shutil.copytree(RECIPES_DIR, self.recipes)
            (self.recipes / "sample.toml").write_text(SAMPLE_RECIPE, encoding="utf-8")

    @property
    def socket(self) -> Path:
        """The control socket."""
        return self.runtime / "control.sock"

    @property
    def journal(self) -> Path:
        """The journal file."""
        return self.state / "journal.sqlite3"

    def spawn(self, *, terminal: int | None = None, nohup: bool = False) -> None:
        """Start the process (it takes a moment to open its socket: see `start`); `terminal`:
        a pty's fd for its stdin, stdout and stderr, as when run from a shell (else a log);
        `nohup`: started ignoring SIGHUP, as `nohup` starts it."""
        command = [
            sys.executable, "-m", "unit_controller.cli", "--log-level", "info", "run",
            "--speed", str(self.speed), "--state-dir", str(self.state),
            "--runtime-dir", str(self.runtime), "--recipes-dir", str(self.recipes), *self.args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.endswith("_DIRECTORY")}
        env |= self.extra_env
        hup = (lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if nohup else None
        if terminal is not None:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, stdin=terminal, stdout=terminal, stderr=terminal, env=env
            )
            return
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=log, env=env, preexec_fn=hup
            )

    async def start(self, *, terminal: int | None = None, nohup: bool = False) -> None:
        """Start the process and wait until its socket answers."""
        self.spawn(terminal=terminal, nohup=nohup)
        assert self.proc is not None
        deadline = time.monotonic() + WAIT_S
        while True:
            assert self.proc.poll() is None, f"the daemon exited:\n{self.log_tail()}"
            try:
                async with Control(self.socket):
                    return
            except OSError:
                assert time.monotonic() < deadline, f"no control socket:\n{self.log_tail()}"
                await asyncio.sleep(0.05)

    def terminate(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM (or `sig`) and wait; the exit code. One that does not stop in time is killed
        (and the timeout raised): a test never leaves a daemon running behind it."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT_S)
            raise

    def kill(self) -> None:
        """SIGKILL and reap."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(WAIT_S)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the daemon's output."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Control:
    """A raw control-socket client: one request, one response."""

    def __init__(self, path: Path, *, client: str | None = None) -> None:
        self.path = path
        self.client = client
        self._ids = itertools.count(1)
        self.hello: dict[str, Any] = {}

    async def __aenter__(self) -> Control:
        self.reader, self.writer = await asyncio.open_unix_connection(str(self.path))
        self.hello = json.loads(await asyncio.wait_for(self.reader.readline(), WAIT_S))["hello"]
        if self.client:
            response = await self.request("identify", client=self.client, user="test")
            assert response["ok"], response
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def send_line(self, line: bytes) -> dict[str, Any]:
        """Send raw bytes (a line) and read the next response that is not a stream line."""
        self.writer.write(line)
        await self.writer.drain()
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), WAIT_S)
            assert raw, "the daemon closed the connection"
            message: dict[str, Any] = json.loads(raw)
            if "stream" not in message:
                return message

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        """One request; the response."""
        payload = {"id": next(self._ids), "op": op, "args": args}
        return await self.send_line(json.dumps(payload).encode() + b"\n")

    async def status(self) -> dict[str, Any]:
        """The unit's status."""
        response = await self.request("status")
        assert response["ok"], response
        result: dict[str, Any] = response["result"]
        return result

    async def start_batch(self, recipe: str = "smoke") -> None:
        """From STOPPED: reset, wait for IDLE, start `recipe` (each step must be accepted)."""
        reset = await self.request("reset")
        assert reset["ok"], reset
        await self.until(lambda s: s["state"] == "IDLE", what="idle")
        started = await self.request("start", recipe=recipe)
        assert started["ok"], started

    async def until(
        self, done: Callable[[dict[str, Any]], bool], *, what: str, within_s: float = WAIT_S
    ) -> dict[str, Any]:
        """Follow the daemon's `watch` stream until `done(status)`; fails after `within_s`."""
        status = await self.status()
        if done(status):
            return status
        watch = await self.request("watch", every_s=0.2)
        assert watch["ok"], watch
        try:
            async with asyncio.timeout(within_s):
                while True:
                    message = json.loads(await self.reader.readline())
                    if message.get("stream") == "status":
                        status = dict(message["data"])
                        if done(status):
                            break
        except TimeoutError:
            raise AssertionError(f"not {what} within {within_s} s: {status}") from None
        # Stop the stream; `send_line` skips stream lines still on their way.
        stopped = await self.request("unwatch")
        assert stopped["ok"], stopped
        return status


class ConsoleOnPty:
    """`unit-console` on a real pseudo-terminal, as a field tech's laptop would see it."""

    def __init__(self, socket_path: Path, *, term: str = "dumb") -> None:
        self.socket_path = socket_path
        self.term = term
        self.output = ""
        self._seen = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._master = -1

    def __enter__(self) -> ConsoleOnPty:
        master, slave = os.openpty()
        env = os.environ | {"TERM": self.term, "COLUMNS": "80", "LINES": "24"}
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "unit_controller.console.repl",
                "--socket",
                str(self.socket_path),
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        os.set_blocking(master, False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT_S)
        if self._master >= 0:
            os.close(self._master)
            self._master = -1

    def type(self, line: str) -> None:
        """Type a line and Enter."""
        os.write(self._master, line.encode() + b"\r")

    def _read(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while chunk := os.read(self._master, 4096):
                self.output += chunk.decode(errors="replace")

    async def expect(self, text: str, *, within_s: float = WAIT_S) -> str:
        """Wait until `text` appears after what was already matched; the output up to it."""
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self._master, readable.set)
        try:
            async with asyncio.timeout(within_s):
                while True:
                    self._read()
                    index = self.output.find(text, self._seen)
                    if index >= 0:
                        chunk = self.output[self._seen : index + len(text)]
                        self._seen = index + len(text)
                        return chunk
                    readable.clear()
                    await readable.wait()
        except TimeoutError:
            raise AssertionError(
                f"{text!r} did not appear within {within_s} s; output so far:\n"
                f"{self.output[self._seen :][-1500:]}"
            ) from None
        finally:
            loop.remove_reader(self._master)
