"""The console's terminal: stdin lines read on a thread, PIN entry without echo, tty, Ctrl-C/Ctrl-Z.

Never blocks the event loop (stdin and tcsetattr wait on threads) and never leaves echo off.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import enum
import io
import os
import signal
import termios
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TextIO


class Interrupt(enum.Enum):
    """Ctrl-C at the prompt, as an item of input."""

    CTRL_C = "ctrl-c"


Item = str | None | Interrupt  # a line, the end of input, or Ctrl-C at the prompt


def tty_fd(stream: TextIO) -> int | None:
    """The file descriptor of `stream` if it is a terminal; None otherwise."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return fd if os.isatty(fd) else None


class TerminalInput:
    """Lines of stdin, read on a daemon thread and handed to the event loop through a queue."""

    def __init__(self, stream: TextIO, *, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._ended = False
        self.tty_fd = tty_fd(stream)

    def start(self) -> None:
        """Start the reader thread (it dies with the process: nothing to join)."""
        threading.Thread(target=self._run, name="console-stdin", daemon=True).start()

    async def get(self) -> Item:
        """The next line (without its newline), None at the end of input, or an interrupt."""
        if self._ended and self._queue.empty():
            return None
        item = await self._queue.get()
        if item is None:
            self._ended = True
        return item

    @property
    def ended(self) -> bool:
        """True once the end of input was read."""
        return self._ended

    def interrupt(self) -> None:
        """Ctrl-C at the prompt: the reader of the next item gets an interrupt."""
        self._queue.put_nowait(Interrupt.CTRL_C)

    @contextlib.asynccontextmanager
    async def no_echo(self) -> AsyncIterator[None]:
        """Typed characters are not shown for a while (on a tty; elsewhere nothing to do)."""
        fd = self.tty_fd
        if fd is None:
            yield
            return
        old = termios.tcgetattr(fd)
        quiet = list(old)
        quiet[3] &= ~termios.ECHO
        # tcsetattr waits for the output to drain: at 115200 baud that is a thread's job.
        await asyncio.to_thread(termios.tcsetattr, fd, termios.TCSAFLUSH, quiet)
        try:
            yield
        finally:
            await asyncio.shield(asyncio.to_thread(termios.tcsetattr, fd, termios.TCSADRAIN, old))

    # --- the thread ---------------------------------------------------------------------------
    def _put(self, item: Item) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:
            return False  # the loop is closed: the console is leaving
        return True

    def _run(self) -> None:
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError, io.UnsupportedOperation):
            self._run_text()
            return
        # os.read, not the stream: a thread blocked inside a buffered reader's lock would stall
        # the interpreter's exit.
        encoding = getattr(self._stream, "encoding", None) or "utf-8"
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        pending = ""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""  # EIO: the terminal hung up
            pending += decoder.decode(chunk, final=not chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                if not self._put(line.rstrip("\r")):
                    return
            if not chunk:
                if pending:
                    self._put(pending.rstrip("\r"))
                self._put(None)
                return

    def _run_text(self) -> None:
        while True:
            try:
                line = self._stream.readline()
            except (OSError, ValueError):
                line = ""
            if not line:
                self._put(None)
                return
            if not self._put(line.rstrip("\r\n")):
                return


# --- signals ----------------------------------------------------------------------------------
@contextlib.contextmanager
def ctrl_c_calls(
    callback: Callable[[], None], *, loop: asyncio.AbstractEventLoop, enabled: bool
) -> Iterator[None]:
    """While inside (and `enabled`), Ctrl-C calls `callback` on the loop instead of raising
    KeyboardInterrupt; where the loop cannot take signals, Ctrl-C stays as it was."""
    handled = False
    if enabled:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, callback)
            handled = True
    try:
        yield
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)


def ignore_ctrl_z() -> None:
    """Ctrl-Z does nothing: a login shell has no job control to come back from, and a stopped
    one would leave a dead terminal."""
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)
