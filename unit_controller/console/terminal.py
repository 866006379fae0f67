"""The console's terminal: stdin read on a thread, as lines or (on a terminal) as keys for the
console's own line editing, PIN entry without echo, Ctrl-C/Ctrl-Z.

Never blocks the event loop (stdin and tcsetattr wait on threads) and never leaves the terminal
without echo or in raw mode when the console ends.
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
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TextIO

from unit_controller.console.editor import LineEditor
from unit_controller.console.screen import Screen


class Interrupt(enum.Enum):
    """Ctrl-C at the prompt, as an item of input."""

    CTRL_C = "ctrl-c"


Item = str | None | Interrupt  # a line, the end of input, or Ctrl-C at the prompt
# Characters of a piped line kept; the grammar refuses far shorter lines as too long.
MAX_PIPED_LINE = 65536


def tty_fd(stream: TextIO) -> int | None:
    """The file descriptor of `stream` if it is a terminal; None otherwise."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return fd if os.isatty(fd) else None


class TerminalInput:
    """Lines of stdin, read on a daemon thread and handed to the event loop through a queue.

    With a `screen` that is live and stdin a terminal, the terminal is put in raw mode and the
    console edits lines itself (editor.py): it then knows what is typed, so a line printed
    unasked never tears it. Ctrl-C is then a key, which calls `on_interrupt`.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        loop: asyncio.AbstractEventLoop,
        screen: Screen | None = None,
        on_interrupt: Callable[[], None] | None = None,
    ) -> None:
        self._stream = stream
        self._loop = loop
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._again: deque[Item] = deque()
        self._ended = False
        self.tty_fd = tty_fd(stream)
        self.on_interrupt = on_interrupt
        self._editor: LineEditor | None = None
        self._cooked: list[Any] | None = None  # the terminal's modes before raw mode
        if screen is not None and screen.live and self.tty_fd is not None:
            self._editor = LineEditor(
                screen, on_line=self._queue.put_nowait, on_interrupt=self._interrupted
            )

    @property
    def editing(self) -> bool:
        """True when the console edits lines itself (a live screen on a terminal)."""
        return self._editor is not None

    def start(self) -> None:
        """Start the reader thread (it dies with the process: nothing to join); when editing,
        put the terminal in raw mode first (`restore` puts it back)."""
        if self._editor is not None and self._raw():
            threading.Thread(target=self._run_keys, name="console-keys", daemon=True).start()
            return
        self._editor = None
        threading.Thread(target=self._run, name="console-stdin", daemon=True).start()

    async def restore(self) -> None:
        """Put the terminal's modes back as they were before `start` (idempotent)."""
        fd, cooked, self._cooked = self.tty_fd, self._cooked, None
        if fd is None or cooked is None:
            return
        with contextlib.suppress(termios.error, OSError):
            # waits for the output to drain (at 115200 baud, a thread's job)
            await asyncio.shield(
                asyncio.to_thread(termios.tcsetattr, fd, termios.TCSADRAIN, cooked)
            )

    def _raw(self) -> bool:
        """Raw mode: keys one by one, no echo and no signals from keys (Ctrl-C is a key here,
        in order with what was typed before it); output processing stays (LF → CR LF)."""
        fd = self.tty_fd
        assert fd is not None
        try:
            cooked = termios.tcgetattr(fd)
            raw = termios.tcgetattr(fd)
            raw[0] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR)
            raw[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)
            raw[6][termios.VMIN] = 1
            raw[6][termios.VTIME] = 0
            termios.tcsetattr(fd, termios.TCSANOW, raw)  # no draining: returns at once
        except (termios.error, OSError):
            return False
        self._cooked = cooked
        return True

    def _interrupted(self) -> None:
        if self.on_interrupt is not None:
            self.on_interrupt()
        else:
            self.interrupt()

    async def get(self) -> Item:
        """The next line (without its newline), None at the end of input, or an interrupt."""
        if self._again:
            item: Item = self._again.popleft()
        else:
            if self._ended and self._queue.empty():
                return None
            item = await self._queue.get()
        if item is None:
            self._ended = True
        return item

    def unget(self, item: Item) -> None:
        """Give `item` back: the next `get` returns it (a line typed to stop a watch is a
        command all the same)."""
        self._again.append(item)

    @property
    def ended(self) -> bool:
        """True once the end of input was read."""
        return self._ended

    def interrupt(self) -> None:
        """Ctrl-C at the prompt: the reader of the next item gets an interrupt."""
        self._queue.put_nowait(Interrupt.CTRL_C)

    def end(self) -> None:
        """The end of input from now on (the console is asked to leave)."""
        self._queue.put_nowait(None)

    @contextlib.asynccontextmanager
    async def no_echo(self) -> AsyncIterator[None]:
        """Typed characters are not shown for a while (on a tty; elsewhere nothing to do).

        When the console edits lines itself, its screen hides them (`secret` prompts) instead.
        """
        fd = self.tty_fd
        if fd is None or self._editor is not None:
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

    def _run_keys(self) -> None:
        """Raw keys to the editor on the loop, as they come; None once the terminal is gone."""
        fd, editor = self.tty_fd, self._editor
        assert fd is not None
        assert editor is not None
        encoding = getattr(self._stream, "encoding", None) or "utf-8"
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        while True:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                chunk = b""  # EIO: the terminal hung up
            text = decoder.decode(chunk, final=not chunk)
            try:
                if text:
                    self._loop.call_soon_threadsafe(editor.feed, text)
                if not chunk:
                    self._loop.call_soon_threadsafe(editor.feed, None)
                    return
            except RuntimeError:
                return  # the loop is closed: the console is leaving

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
            text = decoder.decode(chunk, final=not chunk)
            # Only the new text is split, and a line is kept to a bound (longer is refused as
            # too long all the same): a long piped line without a newline costs linear time.
            *lines, rest = text.split("\n")
            if lines:
                lines[0], pending = pending + lines[0], ""
            pending = (pending + rest)[: MAX_PIPED_LINE + 1]
            for line in lines:
                if not self._put(line[: MAX_PIPED_LINE + 1].rstrip("\r")):
                    return
            if not chunk:
                # Piped, a last line without its newline is still a line; at a terminal it is
                # one the tech never pressed Enter on (Ctrl-D twice after typing): not run.
                if pending and self.tty_fd is None:
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


@contextlib.contextmanager
def on_sigterm(
    callback: Callable[[], None], *, loop: asyncio.AbstractEventLoop, enabled: bool
) -> Iterator[None]:
    """While inside (and `enabled`), SIGTERM calls `callback` on the loop, so the console leaves
    as at the end of input and puts the terminal's modes back."""
    handled = False
    if enabled:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, callback)
            handled = True
    try:
        yield
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGTERM)


def ignore_ctrl_z() -> None:
    """Ctrl-Z does nothing: a login shell has no job control to come back from, and a stopped
    one would leave a dead terminal."""
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)
