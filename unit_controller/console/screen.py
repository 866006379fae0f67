"""The console's output: whole lines printed above a live bottom line (the prompt and what the
tech has typed so far), which is redrawn after them, so nothing printed unasked corrupts it.

The one writer to the terminal; never writes an escape sequence (only CR, spaces and BEL: a dumb
80-column terminal shows them right) and never writes a BEL unless the style allows one.
"""

from __future__ import annotations

from typing import TextIO

from unit_controller.console.text import WIDTH, Style, columns, visible_len

BELL = "\a"


class Screen:
    """Writes lines for the console; with `live`, also keeps the bottom line (prompt + typed).

    Without `live` (a script, or a terminal whose input the kernel edits) the prompt is written
    once and what is typed is the kernel's: an unasked line then starts on a line of its own.
    """

    def __init__(self, stream: TextIO, style: Style, *, live: bool) -> None:
        self._stream = stream
        self.style = style
        self.live = live
        self.prompt = ""  # shown at the start of the bottom line; "" when none is shown
        self.typed = ""  # what the tech typed on it, not yet entered (live only)
        self.secret = False  # typed text is not shown (a PIN)
        self._shown = 0  # columns of the bottom line now on the terminal

    # --- whole lines --------------------------------------------------------------------------
    def say(self, *lines: str) -> None:
        """Print whole lines above the bottom line, then put the bottom line back."""
        text = "".join(self.style.out(line) + "\n" for line in lines)
        self._write(self._erase() + text + self._bottom())

    def announce(self, *lines: str, bell: bool) -> None:
        """Print lines nobody asked for (a prompt, an alarm); ring when `bell` and allowed."""
        ring = BELL if bell and self.style.bell else ""
        self._write(self._erase() + ring + "".join(self.style.out(x) + "\n" for x in lines))
        self._write(self._bottom())

    # --- the bottom line ----------------------------------------------------------------------
    def show_prompt(self, prompt: str, *, secret: bool = False) -> None:
        """Start a bottom line with `prompt` (what was typed ahead stays after it)."""
        self.secret = secret
        if self.live:
            self._write(self._erase())
        self.prompt = prompt
        self._write(self._bottom())

    def update_prompt(self, prompt: str) -> None:
        """Change the prompt of the bottom line in place (a live reading), if it differs."""
        if prompt == self.prompt:
            return
        if not self.live:
            self.prompt = prompt
            return
        self._write(self._erase())
        self.prompt = prompt
        self._write(self._bottom())

    def rename_prompt(self, old: str, new: str) -> None:
        """The prompt `old` becomes `new`, also on the bottom line if `old` is shown there."""
        if self.prompt == old:
            self.update_prompt(new)

    def erase_prompt(self) -> None:
        """Take the bottom line's prompt away (what was typed stays); without `live`, end the
        line it is on instead."""
        if not self.prompt:
            return
        if not self.live:
            self.break_line()
            return
        self._write(self._erase())
        self.prompt = ""
        self._write(self._bottom())

    def end_line(self, mark: str = "") -> None:
        """The bottom line is done (Enter, Ctrl-C: `mark` is written after it, e.g. "^C")."""
        if self.prompt or self._shown or mark:
            self._write(self.style.out(mark) + "\n")
        self.prompt = ""
        self.typed = ""
        self.secret = False
        self._shown = 0

    def break_line(self) -> None:
        """End the bottom line if anything is on it (Ctrl-C or Ctrl-D at a prompt)."""
        if self.prompt or self._shown:
            self.end_line()

    def entered(self, line: str) -> None:
        """`line` was taken as the answer to the prompt on the bottom line.

        Typed after the prompt, the line is already ended (Enter). Typed ahead while a command
        ran, it is written after the prompt, as if typed there; without `live` the kernel
        echoed it and its Enter.
        """
        if not self.prompt:
            return
        if not self.live:
            self.prompt = ""
            self.secret = False
            self._shown = 0
            return
        answer = "" if self.secret else line
        self._write(self._erase() + self.style.out(self.prompt + answer) + "\n")
        self.prompt = ""
        self.secret = False
        self._write(self._bottom())

    # --- typing (live only) -------------------------------------------------------------------
    def insert(self, text: str) -> None:
        """Characters typed at the end of the bottom line."""
        self.typed += text
        if not self.secret:
            shown = self.style.out(text)
            self._write(shown)
            self._shown += columns(shown)

    def rub_out(self, count: int) -> None:
        """Take back the last `count` typed characters."""
        count = min(count, len(self.typed))
        if count <= 0:
            return
        gone = self.typed[-count:]
        self.typed = self.typed[:-count]
        if self.secret:
            return
        # In columns: a wide character takes two backspaces, a combining mark none (one per
        # code point left the screen showing what was no longer typed).
        count = columns(self.style.out(gone))
        if self._shown > WIDTH:  # wrapped: backspace cannot go up a line; draw it again below
            self._write("\n")
            self._shown = 0
            self._write(self._bottom())
            return
        self._write("\b \b" * count)
        self._shown -= count

    def redraw(self) -> None:
        """Draw the bottom line again (Ctrl-L)."""
        self._write(self._erase() + self._bottom())

    # --- plumbing -----------------------------------------------------------------------------
    def _visible(self) -> str:
        return self.prompt + ("" if self.secret else self.typed)

    def _bottom(self) -> str:
        """The bottom line as it should be shown now (written at the start of a line)."""
        text = self.style.out(self._visible() if self.live else self.prompt)
        self._shown = visible_len(text)
        return text

    def _erase(self) -> str:
        """Blank the bottom line and go to its start: CR and spaces, which any terminal takes.

        A line longer than the screen has wrapped and CR only reaches its last row: it is left
        as it is and the next text starts on a new line instead.
        """
        shown, self._shown = self._shown, 0
        if shown == 0:
            return ""
        if shown >= WIDTH or not self.live:
            return "\n"
        return "\r" + " " * shown + "\r"

    def _write(self, text: str) -> None:
        if not text:
            return
        try:
            self._stream.write(text)
        except UnicodeEncodeError:
            self._stream.write(text.encode("ascii", "replace").decode("ascii"))
        self._stream.flush()
