"""What the console prints: at most 80 columns, colour only where the terminal says it can.

Pure rendering of canned answers; no socket, no terminal.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.console.stub_daemon import ALARMS, BATCH, status
from unit_controller.console.lines import COMMAND_NAMES
from unit_controller.console.render import (
    render_alarms,
    render_batch,
    render_event,
    render_facts,
    render_help,
    render_log,
    render_recipes,
    render_status,
    render_status_line,
)
from unit_controller.console.text import WIDTH, Style, wrap

COLOUR = Style(colour=True, utf8=True)
PLAIN = Style(colour=False, utf8=True)
ASCII = Style(colour=False, utf8=False)

LONG = "x" * 200
WORST_STATUS = status(
    "EXECUTE",
    phase="coprecipitate-with-a-very-long-phase-name",
    recipe="r" * 60,
    batch_id=123456789,
    manual=True,
    awaiting_confirmation="Black mass charged " + LONG,
    pumps_ml_min={f"P-20{i}": 104.99 for i in range(1, 6)},
    bad={"temperature_c": "stale " + LONG, "ph": "no reply"},
    ph_calibration_due=True,
    clock_synchronized=False,
    estop_pressed=True,
    alarms_active=12,
)


class _Stream(io.TextIOWrapper):
    """A stdout that may claim to be a terminal, in an encoding."""

    def __init__(self, *, tty: bool, encoding: str = "utf-8") -> None:
        super().__init__(io.BytesIO(), encoding=encoding)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _everything(style: Style) -> list[str]:
    alarms: list[dict[str, Any]] = [
        *ALARMS,
        {**ALARMS[0], "message": LONG, "id": "i" * 64, "first_out": False},
    ]
    lines = [
        *render_status(WORST_STATUS, style),
        *render_status(status("STOPPED"), style),
        render_status_line(WORST_STATUS, style),
        *render_alarms(alarms, style),
        *render_batch(BATCH, style),
        *render_batch({**BATCH, "recipe": LONG, "final_state": "ABORTED"}, style),
        *render_log([{"ts": 1_700_000_000_000, "kind": "alarm", "text": LONG}], style),
        render_event({"ts": None, "kind": "state", "text": "EXECUTE -> HELD"}, style),
        *render_recipes([{"name": "leach", "description": LONG}], style),
        *render_facts({"verdict": "ok", "notes": [LONG], "slope": {"acid": 98.5}}, style),
        *render_help(None, style),
    ]
    for name in COMMAND_NAMES:
        lines.extend(render_help(name, style))
    return lines


@pytest.mark.parametrize("style", [COLOUR, PLAIN, ASCII], ids=["colour", "plain", "ascii"])
def test_every_render_fits_80_columns(style: Style) -> None:
    for line in _everything(style):
        visible = line
        for code in ("\x1b[0m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[1m"):
            visible = visible.replace(code, "")
        assert len(visible) <= WIDTH, line
        assert "\n" not in line


def test_plain_renders_carry_no_escape_codes() -> None:
    assert not any("\x1b" in line for line in _everything(PLAIN))


def test_ascii_renders_are_ascii_and_say_degc() -> None:
    lines = _everything(ASCII)
    assert all(line.isascii() for line in lines)
    assert any("degC" in line for line in render_status(WORST_STATUS, ASCII))
    assert any("°C" in line for line in render_status(WORST_STATUS, PLAIN))


@pytest.mark.parametrize(
    ("tty", "env", "colour"),
    [
        (False, {"TERM": "xterm-256color"}, False),
        (True, {"TERM": "dumb"}, False),
        (True, {}, False),
        (True, {"TERM": "xterm-256color", "NO_COLOR": "1"}, False),
        (True, {"TERM": "vt100", "NO_COLOR": ""}, False),
        (True, {"TERM": "xterm-256color"}, True),
    ],
    ids=["not-a-tty", "dumb", "no-term", "no-color", "no-color-empty", "colour-tty"],
)
def test_colour_only_on_a_tty_that_says_it_can(
    tty: bool, env: dict[str, str], colour: bool
) -> None:
    style = Style.detect(_Stream(tty=tty), env=env)
    assert style.colour is colour
    alarm_line = render_status(WORST_STATUS, style)
    assert any("\x1b[" in line for line in alarm_line) is colour


def test_not_utf8_stream_gets_ascii_fallback() -> None:
    assert Style.detect(_Stream(tty=False, encoding="ascii"), env={}).utf8 is False
    assert Style.detect(_Stream(tty=False, encoding="ANSI_X3.4-1968"), env={}).utf8 is False
    assert Style.detect(_Stream(tty=False, encoding="UTF-8"), env={}).utf8 is True
    assert ASCII.out("72 °C ≥ 70 °C — held") == "72 degC >= 70 degC - held"


def test_control_characters_from_the_controller_never_reach_the_terminal() -> None:
    nasty = status("HELD", phase="\x1b[2Jwipe", bad={"ph": "bad\rreading\x07"})
    lines = [
        *render_status(nasty, PLAIN),
        render_event({"ts": 0, "kind": "alarm\x1b", "text": "a\x1b]0;title\x07b"}, PLAIN),
    ]
    assert not any(ch in line for line in lines for ch in "\x1b\r\x07")


def test_status_shows_what_a_technician_checks() -> None:
    text = "\n".join(render_status(WORST_STATUS, PLAIN))
    for expected in (
        "EXECUTE (6)",
        "phase coprecipitate",
        "MANUAL",
        "58.2 °C (sp 60.0)",
        "pH 10.99 (sp 11.00)",
        "LL wet  L wet  H dry  HH dry",
        "E-STOP PRESSED",
        "heater 35%",
        "N2 purge",
        "P-201 104.99 mL/min",
        "12 active",
        "type confirm",
        "pH calibration is due",
        "temperature_c stale",
    ):
        assert expected in text, expected


def test_unknown_values_show_as_question_marks_not_numbers() -> None:
    text = "\n".join(
        render_status(
            status("STOPPED", temperature_c=None, ph=None, levels={"low_low": None}), PLAIN
        )
    )
    assert "T       ? °C" in text
    assert "pH ? (sp ?)" in text
    assert "LL ?" in text


def test_batch_record_in_minutes_with_t_and_ph_statistics() -> None:
    text = "\n".join(render_batch(BATCH, PLAIN))
    assert "final COMPLETE" in text
    assert "coprecipitate      10.0   60.0  59.6/60.0/60.4" in text
    assert "10.96/11.00/11.04" in text
    assert "reagents mL: P-203 812.4, P-204 95.0" in text
    assert "alarms: none" in text


def test_help_lists_fit_a_24_line_screen_and_topics_take_two_lines() -> None:
    assert len(render_help(None, PLAIN)) <= 23  # leaves a line for the prompt
    for name in COMMAND_NAMES:
        assert 1 <= len(render_help(name, PLAIN)) <= 2, name


def test_long_messages_wrap_at_80_columns_and_lose_nothing() -> None:
    text = "error: cannot go to manual while a batch is under way (state EXECUTE): " + LONG
    lines = wrap(text, indent=7)
    assert all(len(line) <= WIDTH for line in lines)
    assert "".join(line.strip() for line in lines).replace(" ", "") == text.replace(" ", "")
    assert all(line.startswith(" " * 7) for line in lines[1:])


def test_status_warns_of_a_clock_that_is_not_synchronised() -> None:
    lines = render_status(status("IDLE", clock_synchronized=False), PLAIN)
    assert any("clock" in line and "not synchronised" in line for line in lines)
    for known in (True, None):
        lines = render_status(status("IDLE", clock_synchronized=known), PLAIN)
        assert not any("not synchronised" in line for line in lines)
