"""Text for an 80-column terminal: width, colour only where the terminal can show it, ASCII
stand-ins, and nothing the controller sent that could drive the terminal (control characters)."""

from __future__ import annotations

import codecs
import math
import os
import re
import textwrap
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TextIO

WIDTH: Final = 80
NONE: Final = "—"  # a value that does not exist (no setpoint, no phase), never a bad reading

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# C0 and C1 controls, and what reorders or breaks a line on a terminal: bidi marks, embeddings,
# overrides and isolates, and the Unicode line and paragraph separators (a hostile dashboard
# could reverse or split a line on the field tech's console).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_RESET: Final = "\x1b[0m"
COLOURS: Final = {"red": "\x1b[31m", "green": "\x1b[32m", "yellow": "\x1b[33m", "bold": "\x1b[1m"}

# What stands in for a character an ASCII-only terminal cannot show.
_ASCII: Final = str.maketrans(
    {"°": "deg", "±": "+/-", "≥": ">=", "≤": "<=", "→": "->", "—": "-", "–": "-", "…": "...",
     "×": "x", "µ": "u", "τ": "tau", "⁻": "-", "·": "."}
)  # fmt: skip


# Serial terminals of the VT100 family show no colour: ANSI colour codes would print as junk
# (or be dropped) on the field tech's terminal; every modern emulator takes them.
_MONOCHROME_TERMS = ("vt52", "vt100", "vt102", "vt220", "vt320", "vt420", "vt510")


def _takes_colour(term: str) -> bool:
    base = term.split("-")[0].lower()
    return base not in _MONOCHROME_TERMS or "color" in term.lower()


@dataclass(frozen=True, slots=True)
class Style:
    """How to write for this terminal: ANSI colour or not, UTF-8 or ASCII only, a bell or not."""

    colour: bool = False
    utf8: bool = True
    bell: bool = False

    @classmethod
    def detect(cls, stream: TextIO, *, env: Mapping[str, str] | None = None) -> Style:
        """Colour only on a tty whose TERM is set, not "dumb" and not of the VT100 family, and
        without NO_COLOR; a bell on such a tty (a VT100 too) whatever NO_COLOR says, never into
        a pipe or a file."""
        env = os.environ if env is None else env
        try:
            tty = stream.isatty()
        except (OSError, ValueError):
            tty = False
        term = env.get("TERM", "")
        capable = tty and term not in ("", "dumb")
        return cls(
            colour=capable and "NO_COLOR" not in env and _takes_colour(term),
            utf8=_is_utf8(getattr(stream, "encoding", None)),
            bell=capable,
        )

    def paint(self, text: str, colour: str | None) -> str:
        """`text` in a colour when the terminal takes colour; as is otherwise."""
        if not self.colour or colour is None or not text:
            return text
        return f"{COLOURS[colour]}{text}{_RESET}"

    def out(self, line: str) -> str:
        """A finished line as this terminal can show it (ASCII stand-ins if not UTF-8)."""
        if self.utf8:
            return line
        ascii_line = line.translate(_ASCII)
        return ascii_line.encode("ascii", "replace").decode("ascii")

    @property
    def deg_c(self) -> str:
        """The unit of temperature as this terminal can show it."""
        return "°C" if self.utf8 else "degC"

    @property
    def none(self) -> str:
        """What stands for a value that does not exist (no setpoint, no phase): a dash."""
        return NONE if self.utf8 else "-"


def _is_utf8(encoding: str | None) -> bool:
    if not encoding:
        return False
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


# --- helpers ----------------------------------------------------------------------------------
def clean(value: object) -> str:
    """A value from the controller as one printable line: control characters become '?'."""
    return _CONTROL.sub("?", str(value))


def visible_len(line: str) -> int:
    """Length of a line as the terminal shows it, in columns (colour codes take no room)."""
    return columns(_ANSI.sub("", line))


def columns(text: str) -> int:
    """Terminal columns `text` takes: a wide (CJK, emoji) character two, a combining mark or a
    zero-width one none."""
    return sum(_char_columns(char) for char in text)


def last_character(text: str) -> int:
    """How many code points the last character on screen is: a base and the zero-width marks
    after it (e and its accent go together, as Backspace takes them)."""
    n = 0
    for char in reversed(text):
        n += 1
        if _char_columns(char):
            break
    return n


def _char_columns(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def fit(line: str, width: int = WIDTH) -> str:
    """Cut a line to `width` columns, ending it with '...' when cut (colour is dropped then)."""
    if visible_len(line) <= width:
        return line
    plain, kept, used = _ANSI.sub("", line), [], 0
    for char in plain:
        used += _char_columns(char)
        if used > width - 3:
            break
        kept.append(char)
    return "".join(kept).rstrip() + "..."


def wrap(text: str, *, indent: int = 0, width: int = WIDTH, first_indent: int = 0) -> list[str]:
    """One message as lines of at most `width` columns, the rest indented: nothing is cut."""
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=" " * first_indent,
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
    )
    return lines or [""]


def clock(ts_ms: object) -> str:
    """Local wall time HH:MM:SS of a timestamp in epoch milliseconds ('--:--:--' if unknown)."""
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int | float) or not math.isfinite(ts_ms):
        return "--:--:--"
    try:
        return time.strftime("%H:%M:%S", time.localtime(ts_ms / 1000))
    except (OverflowError, OSError, ValueError):
        return "--:--:--"
