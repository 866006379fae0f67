"""`unit-console` as a process on a real pseudo-terminal, seen from the technician's side of the
line. Test support only: every wait is on output or exit, and bounded; the process is gone at the
end of the `on_terminal` block, passed or not.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
import termios
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 15.0
CONSOLE = [sys.executable, "-m", "unit_controller.console.repl"]


def console_env(**extra: str) -> dict[str, str]:
    """The environment of a console under test: no NO_COLOR, no systemd directories, TERM dumb
    unless `extra` says otherwise."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "RUNTIME_DIRECTORY")}
    return env | {"TERM": "dumb", "PYTHONUNBUFFERED": "1"} | extra


def _take_terminal() -> None:
    # In the child after setsid(): the pty becomes its controlling terminal, so ^C is SIGINT.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """The console on a pseudo-terminal: what it wrote (CR LF as LF), keys to type."""

    def __init__(self, master: int, proc: asyncio.subprocess.Process) -> None:
        self.master = master
        self.proc = proc
        self.output = ""
        self._seen = 0
        self._more = asyncio.Event()
        self._closed = False
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:
            data = b""  # EIO: every slave end is closed, the console is gone
        if not data:
            self._closed = True
            asyncio.get_running_loop().remove_reader(self.master)
        self.output += data.decode("utf-8", "replace").replace("\r\n", "\n")
        self._more.set()

    def type(self, text: str) -> None:
        """Keys as typed: a line needs its own '\\n'."""
        os.write(self.master, text.encode())

    async def expect(self, text: str, *, within_s: float = WAIT_S) -> str:
        """Wait for `text` after what was already expected; returns the output up to its end."""
        try:
            async with asyncio.timeout(within_s):
                while (at := self.output.find(text, self._seen)) < 0:
                    assert not self._closed, f"console ended before {text!r}:\n{self.output}"
                    self._more.clear()
                    await self._more.wait()
        except TimeoutError:
            raise AssertionError(
                f"{text!r} did not appear within {within_s} s; output since the last match:\n"
                f"{self.output[self._seen :][-2000:]!r}"
            ) from None
        chunk = self.output[self._seen : at + len(text)]
        self._seen = at + len(text)
        return chunk

    async def command(self, line: str, *, prompt: str) -> str:
        """Type a line and return what the console answered, up to the next prompt."""
        self.type(line + "\n")
        chunk = await self.expect(prompt)
        return chunk.removeprefix(line + "\n").removesuffix(prompt)

    async def exit_code(self, *, within_s: float = WAIT_S) -> int:
        """Wait for the console to leave; its exit code."""
        async with asyncio.timeout(within_s):
            return await self.proc.wait()

    def close(self) -> None:
        if not self._closed:
            asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)


@asynccontextmanager
async def on_terminal(sock: Path, *, env: dict[str, str] | None = None) -> AsyncIterator[Terminal]:
    """`unit-console --socket sock` on a fresh pseudo-terminal (its controlling terminal)."""
    master, slave = os.openpty()
    proc = await asyncio.create_subprocess_exec(
        *CONSOLE, "--socket", str(sock),
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env or console_env(),
        start_new_session=True, preexec_fn=_take_terminal,
    )  # fmt: skip
    os.close(slave)
    terminal = Terminal(master, proc)
    try:
        yield terminal
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        terminal.close()
