"""What a tech sees while typing: lines printed unasked go above the prompt and what is typed,
which is drawn again; keys edit the line as on any terminal; a bell only where one is welcome.

Pure: a string for the terminal, keys fed by hand; no pty, no clock.
"""

from __future__ import annotations

import io

import pytest

from unit_controller.console.editor import LineEditor
from unit_controller.console.screen import Screen
from unit_controller.console.text import Style

PLAIN = Style(colour=False, utf8=True, bell=False)
BELL = Style(colour=False, utf8=True, bell=True)
PROMPT = "unit> "


class _Keys:
    """A live screen on a string, and its editor; what it handed over."""

    def __init__(self, style: Style = PLAIN, *, live: bool = True) -> None:
        self.out = io.StringIO()
        self.screen = Screen(self.out, style, live=live)
        self.lines: list[str | None] = []
        self.interrupts = 0
        self.editor = LineEditor(
            self.screen, on_line=self.lines.append, on_interrupt=self._interrupted
        )

    def _interrupted(self) -> None:
        self.interrupts += 1

    def shown(self) -> str:
        return self.out.getvalue()

    def mark(self) -> int:
        return len(self.shown())

    def since(self, mark: int) -> str:
        return self.shown()[mark:]


def test_an_announcement_goes_above_the_prompt_and_the_half_typed_line_comes_back() -> None:
    keys = _Keys()
    keys.screen.show_prompt(PROMPT)
    keys.editor.feed("sta")
    mark = keys.mark()
    keys.screen.announce("12:00:00 PROMPT  Black mass charged", bell=True)
    blank = "\r" + " " * len(PROMPT + "sta") + "\r"
    assert keys.since(mark) == f"{blank}12:00:00 PROMPT  Black mass charged\n{PROMPT}sta"
    keys.editor.feed("tus\r")
    assert keys.lines == ["status"]  # the typing went on where it was


def test_no_bell_on_a_dumb_terminal_or_a_pipe_one_on_a_capable_terminal() -> None:
    quiet, ringing = _Keys(PLAIN), _Keys(BELL)
    for keys in (quiet, ringing):
        keys.screen.show_prompt(PROMPT)
        keys.screen.announce("ALARM", bell=True)
        keys.screen.announce("alarm cleared", bell=False)
    assert "\a" not in quiet.shown()
    assert ringing.shown().count("\a") == 1


def test_output_after_enter_starts_on_a_fresh_line_without_erasing() -> None:
    keys = _Keys()
    keys.screen.show_prompt(PROMPT)
    keys.editor.feed("status\r")
    mark = keys.mark()
    keys.screen.say("state   STOPPED")
    assert keys.since(mark) == "state   STOPPED\n"
    assert keys.shown() == f"{PROMPT}status\nstate   STOPPED\n"


def test_backspace_ctrl_u_and_ctrl_w_rub_out_and_arrow_keys_are_ignored() -> None:
    keys = _Keys()
    keys.screen.show_prompt(PROMPT)
    keys.editor.feed("jog pump P-2033\x7f")
    assert keys.screen.typed == "jog pump P-203"
    assert keys.shown().endswith("P-2033\b \b")
    keys.editor.feed("\x1b[A\x1b[D\x1bOB")  # up, left, down: no cursor here
    assert keys.screen.typed == "jog pump P-203"
    keys.editor.feed("\x17")  # ^W: the last word
    assert keys.screen.typed == "jog pump "
    keys.editor.feed("\x15")  # ^U: the whole line
    assert keys.screen.typed == ""
    keys.editor.feed("log\t5\r\n")  # a CR LF terminal: one Enter; a tab is a space
    assert keys.lines == ["log 5"]


def test_backspace_takes_back_what_the_screen_shows_wide_characters_and_accents_too() -> None:
    # Found by a field tech: "drain 600字" and two Backspaces showed "drain 600" but sent
    # "drain 60": one "\b \b" a code point, where 字 takes two columns and an accent none.
    keys = _Keys()
    keys.screen.show_prompt(PROMPT)
    keys.editor.feed("drain 600字")
    mark = keys.mark()
    keys.editor.feed("\x7f")
    assert keys.screen.typed == "drain 600"
    assert keys.since(mark) == "\b \b" * 2  # both of its columns
    keys.editor.feed("\x7f")
    assert keys.screen.typed == "drain 60"
    keys.editor.feed("\x15cafe\u0301")  # é as e and a combining accent: one character
    mark = keys.mark()
    keys.editor.feed("\x7f")
    assert keys.screen.typed == "caf"
    assert keys.since(mark) == "\b \b"
    keys.editor.feed("\x15status🔥🔥\x7f\x7f\r")
    assert keys.lines[-1] == "status"


def test_a_lone_esc_or_a_cut_short_sequence_never_swallows_enter_or_the_next_key() -> None:
    keys = _Keys()
    keys.screen.show_prompt(PROMPT)
    keys.editor.feed("status\x1b\r")  # Esc, then Enter: the line is entered
    assert keys.lines == ["status"]
    keys.editor.feed("\x1b[\r")  # a sequence cut short by Enter: Enter still enters
    assert keys.lines == ["status", ""]
    keys.editor.feed("al\x1b]0;title\x07arms\r")  # a title string is dropped whole
    assert keys.lines[-1] == "alarms"
    keys.editor.feed("al\x1b]0;title\x1b\\arms\r")  # ended by ESC \ (ST) too
    assert keys.lines[-1] == "alarms"
    keys.editor.feed("lo\x1b\x1b[Dg\r")  # Esc, then an arrow key: both dropped, no more
    assert keys.lines[-1] == "log"


def test_ctrl_c_drops_the_line_and_interrupts_ctrl_d_on_an_empty_line_ends_input() -> None:
    keys = _Keys()
    keys.screen.show_prompt(PROMPT)
    keys.editor.feed("stat\x03")
    assert keys.interrupts == 1
    assert keys.screen.typed == ""
    assert keys.shown().endswith(f"{PROMPT}stat^C\n")
    keys.screen.show_prompt(PROMPT)
    keys.editor.feed("x\x04")  # ^D with something typed: nothing
    assert keys.lines == []
    keys.editor.feed("\x7f\x04")
    assert keys.lines == [None]
    keys.editor.feed("status\r")  # after the end, nothing more
    assert keys.lines == [None]


def test_a_pin_is_never_shown_even_when_the_line_is_drawn_again() -> None:
    keys = _Keys()
    keys.screen.show_prompt("PIN: ", secret=True)
    keys.editor.feed("4711")
    keys.screen.announce("12:00:00 ALARM   HIGH level_high_high", bell=False)
    keys.editor.feed("\x0c")  # ^L redraws
    keys.editor.feed("\r")
    assert keys.lines == ["4711"]
    assert "4711" not in keys.shown()
    assert keys.shown().count("PIN: ") == 3


def test_a_line_typed_ahead_is_written_after_the_prompt_that_takes_it() -> None:
    keys = _Keys()
    keys.editor.feed("status\r")  # while a command ran: no prompt shown
    keys.editor.feed("al")
    keys.screen.show_prompt(PROMPT)
    keys.screen.entered("status")
    assert keys.shown().endswith(f"{PROMPT}status\nal")
    assert keys.screen.typed == "al"


def test_a_line_longer_than_the_screen_is_left_and_redrawn_below() -> None:
    keys = _Keys()
    keys.screen.show_prompt(PROMPT)
    keys.editor.feed("x" * 90)
    mark = keys.mark()
    keys.screen.say("an alarm")
    assert keys.since(mark) == f"\nan alarm\n{PROMPT}{'x' * 90}"


def test_the_live_prompt_changes_in_place_and_goes_away_without_a_trace() -> None:
    keys = _Keys()
    keys.screen.show_prompt("  pH 7.013  settling (3 s of 10 s) ")
    mark = keys.mark()
    keys.screen.update_prompt("  pH 7.004  settling (4 s of 10 s) ")
    keys.screen.update_prompt("  pH 7.004  settling (4 s of 10 s) ")  # the same: not redrawn
    assert keys.since(mark) == "\r" + " " * 35 + "\r" + "  pH 7.004  settling (4 s of 10 s) "
    keys.screen.erase_prompt()
    assert keys.shown().endswith("\r" + " " * 35 + "\r")
    assert keys.screen.prompt == ""


def test_without_a_live_line_an_announcement_takes_its_own_line_and_the_prompt_follows() -> None:
    keys = _Keys(live=False)  # the kernel edits: what is typed is unknown here
    keys.screen.show_prompt(PROMPT)
    keys.screen.announce("12:00:00 PROMPT  Sample taken", bell=False)
    assert keys.shown() == f"{PROMPT}\n12:00:00 PROMPT  Sample taken\n{PROMPT}"
    keys.screen.entered("status")  # the kernel echoed it and its Enter
    mark = keys.mark()
    keys.screen.say("state   IDLE")
    assert keys.since(mark) == "state   IDLE\n"


@pytest.mark.parametrize("style", [Style(utf8=False)], ids=["ascii"])
def test_an_ascii_terminal_gets_stand_ins_and_the_erase_fits_them(style: Style) -> None:
    keys = _Keys(style)
    keys.screen.show_prompt("  pH 7.004  steady (±0.004 over 10 s): ")
    keys.screen.say("a line")
    assert keys.shown().isascii()
    blank = " " * len("  pH 7.004  steady (+/-0.004 over 10 s): ")
    assert f"\r{blank}\r" in keys.shown()
