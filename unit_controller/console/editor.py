"""The console's own line editing on a raw terminal: keys become the bottom line on the screen and,
at Enter, whole lines; the console then knows what is typed and can print above it.

Pure key handling on the event loop: never reads the terminal itself and never blocks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final

from unit_controller.console.screen import Screen
from unit_controller.console.text import last_character

MAX_TYPED: Final = 4096  # the grammar refuses lines over 1000 characters; this only bounds memory

ENTER: Final = frozenset("\r\n")
RUB_OUT: Final = frozenset("\x7f\b")  # DEL (most terminals' Backspace) and ^H
CTRL_C, CTRL_D, CTRL_L, CTRL_U, CTRL_W, ESC = "\x03", "\x04", "\x0c", "\x15", "\x17", "\x1b"


class _Escape(enum.Enum):
    NONE = enum.auto()
    START = enum.auto()  # after ESC
    CSI = enum.auto()  # ESC [ ... up to a final byte (arrow keys, Delete, Home)
    SS3 = enum.auto()  # ESC O x (arrow keys in application mode)
    OSC = enum.auto()  # ESC ] ... BEL or ESC \ (a terminal's title or colour string)
    OSC_ESC = enum.auto()  # an ESC inside one: its end, ESC \, or a new sequence


class LineEditor:
    """Keys typed → what the screen's bottom line shows; Enter hands the line over.

    Backspace, Ctrl-U (the whole line) and Ctrl-W (a word) rub out; Ctrl-L redraws; Ctrl-C
    drops the line and calls `on_interrupt`; Ctrl-D on an empty line is the end of input.
    Escape sequences (arrow keys) are swallowed: there is no cursor to move.
    """

    def __init__(
        self,
        screen: Screen,
        *,
        on_line: Callable[[str | None], None],
        on_interrupt: Callable[[], None],
    ) -> None:
        self._screen = screen
        self._on_line = on_line
        self._on_interrupt = on_interrupt
        self._escape = _Escape.NONE
        self._after_cr = False  # a LF right after a CR is the same Enter (CR LF terminals)
        self._ended = False

    def feed(self, text: str | None) -> None:
        """Characters as read from the terminal; None when it is gone (hung up)."""
        if self._ended:
            return
        if text is None:
            self._end()
            return
        run = ""  # printable characters, echoed together
        for char in text:
            if self._escape is not _Escape.NONE and self._escaped(char):
                continue
            after_cr, self._after_cr = self._after_cr, char == "\r"
            if char == "\n" and after_cr:
                continue
            if char.isprintable() or char == "\t":
                run += " " if char == "\t" else char
                continue
            self._insert(run)
            run = ""
            self._key(char)
            if self._ended:
                return
        self._insert(run)

    def _insert(self, run: str) -> None:
        room = MAX_TYPED - len(self._screen.typed)
        if run and room > 0:
            self._screen.insert(run[:room])

    def _key(self, char: str) -> None:
        screen = self._screen
        if char in ENTER:
            line = screen.typed
            screen.end_line()
            self._on_line(line)
        elif char in RUB_OUT:
            screen.rub_out(last_character(screen.typed))
        elif char == CTRL_U:
            screen.rub_out(len(screen.typed))
        elif char == CTRL_W:
            typed = screen.typed
            kept = typed.rstrip()
            kept = kept[: len(kept) - len(kept.split()[-1])] if kept.split() else ""
            screen.rub_out(len(typed) - len(kept))
        elif char == CTRL_C:
            if screen.prompt or screen.typed:
                screen.end_line("^C")
            self._on_interrupt()
        elif char == CTRL_D:
            if not screen.typed:
                self._end()
        elif char == CTRL_L:
            screen.redraw()
        elif char == ESC:
            self._escape = _Escape.START
        # any other control character is ignored: it would only confuse the terminal

    def _escaped(self, char: str) -> bool:
        """Whether `char` belonged to the escape sequence under way. One that cannot (Enter, a
        key after a lone Esc) ends the sequence and is a key of its own: never swallowed."""
        state = self._escape
        if state is _Escape.START:
            self._escape = {"[": _Escape.CSI, "O": _Escape.SS3, "]": _Escape.OSC}.get(
                char, _Escape.NONE
            )
            return self._escape is not _Escape.NONE
        if state is _Escape.OSC_ESC:
            # ESC \ ends the string; ESC and anything else starts a sequence of its own.
            if char == "\\":
                self._escape = _Escape.NONE
                return True
            self._escape = _Escape.START
            return self._escaped(char)
        if state is _Escape.OSC:
            # A title or colour string, up to BEL or ESC \ (the ESC starts a sequence of its own).
            if char in ENTER:
                self._escape = _Escape.NONE
                return False
            if char == ESC:
                self._escape = _Escape.OSC_ESC
            elif char == "\x07":
                self._escape = _Escape.NONE
            return True
        if not " " <= char <= "\x7e":
            self._escape = _Escape.NONE  # no part of a sequence: the sequence is dropped
            return False
        if state is _Escape.SS3 or "\x40" <= char <= "\x7e":
            self._escape = _Escape.NONE  # the final byte
        return True

    def _end(self) -> None:
        self._ended = True
        self._screen.break_line()
        self._on_line(None)
