"""What the console prints: at most 80 columns, colour only where the terminal says it can.

Pure rendering of canned answers; no socket, no terminal.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.console.stub_daemon import ALARMS, BATCH, LOG, status
from unit_controller.console.announce import announcement
from unit_controller.console.lines import COMMAND_NAMES, help_entries
from unit_controller.console.render import (
    render_alarms,
    render_batch,
    render_event,
    render_facts,
    render_help,
    render_log,
    render_recipes,
    render_result,
    render_status,
    render_status_line,
)
from unit_controller.console.render_cal import live_reading
from unit_controller.console.render_log import render_entry
from unit_controller.console.text import WIDTH, Style, clock, wrap

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


CAL_PH: dict[str, Any] = {
    "probe": "AT-101", "points": 2, "calibrated": True, "acid_slope_pct": 97.8,
    "base_slope_pct": 100.0, "offset_mv": 0.59, "verdict": "ok", "problems": [],
    "summary": "2 point(s), acid slope 97.8 %, base slope 100.0 %, offset +0.6 mV: ok",
    "point": "low", "value": 4.0, "temperature_c": 21.5, "calibrated_points": ["mid", "low"],
}  # fmt: skip
ANNOUNCED: list[dict[str, Any]] = [
    {"ts": 1_700_000_000_000, "kind": "alarm", "text": "", "alarm_id": "level_high_high",
     "tag": "LSHH-101", "transition": "raised", "priority": "high", "state": "unack_active",
     "first_out": True, "message": "high-high level switch wet: inflows stopped"},
    {"ts": 1_700_000_000_000, "kind": "prompt", "text": "waiting for confirmation: Black mass "
     "charged", "prompt": "Black mass charged"},
    {"ts": 1_700_000_000_000, "kind": "alarm", "text": "", "alarm_id": "level_high_high",
     "tag": "LSHH-101", "transition": "returned", "priority": "high", "state": "latched",
     "first_out": True, "message": "high-high level switch wet: inflows stopped"},
]  # fmt: skip


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
        *render_log([*LOG, {**LOG[1], "args": {"recipe": LONG}}], style),
        *(line for n, entry in enumerate(LOG, 1) for line in render_entry(entry, n, style)),
        *render_result("cal_ph", CAL_PH | {"problems": [LONG]}, style),
        *render_result("cal_ph_status", CAL_PH | {"points": 3, "problems": [LONG]}, style),
        *render_result("cal_ph_clear", {"probe": "AT-101", "points": 0}, style),
        *render_result(
            "cal_pump", {"pump": "P-203", "measured_ml": 9.6, "calibrated": True}, style
        ),
        style.out(
            live_reading(ph=7.0041, bad=None, judgement="steady (±0.004 over 10 s)", steady=True)
        ),
    ]
    for event in (*ANNOUNCED, {**ANNOUNCED[0], "message": LONG}):
        said = announcement(event, style)
        assert said is not None
        lines.extend(style.out(line) for line in said[0])  # as the screen writes them
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
        (True, {"TERM": "vt100"}, False),
        (True, {"TERM": "vt220"}, False),
        (True, {"TERM": "linux"}, True),
    ],
    ids=[
        "not-a-tty",
        "dumb",
        "no-term",
        "no-color",
        "no-color-empty",
        "colour-tty",
        "vt100",
        "vt220",
        "linux",
    ],
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
        "phase   coprecipitate",
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


def test_a_bad_temperature_does_not_run_into_the_ph() -> None:
    lost = status(
        "HELD",
        temperature_c=None,
        bad={"temperature_c": "device_lost: no response for 62 s"},
    )
    lines = render_status(lost, PLAIN)
    t_row = next(line for line in lines if line.startswith("T "))
    assert t_row.rstrip().endswith("(sp —)"), t_row
    assert "pH" not in t_row
    assert any(line.startswith("pH      ") for line in lines), lines


def test_a_jog_alone_is_not_shown_as_every_output_off() -> None:
    jogging = status("STOPPED", manual=True, pumps_ml_min={"P-201": 105.0})
    text = "\n".join(render_status(jogging, PLAIN))
    assert "all off" not in text
    assert "dosing only (pumps below)" in text
    assert "P-201 105.00 mL/min" in text
    assert "all off" in "\n".join(render_status(status("STOPPED"), PLAIN))


def test_what_does_not_exist_is_a_dash_and_a_bad_reading_says_bad() -> None:
    stopped = status(
        "STOPPED",
        temperature_c=None,
        ph=None,
        levels={"low_low": None, "low": True, "high": False, "high_high": False},
        estop_pressed=None,
        bad={"temperature_c": "stale", "ph": "no reply", "level_low_low": "no reply"},
    )
    text = "\n".join(render_status(stopped, PLAIN))
    assert "phase   —\n" in text  # no batch: no phase
    assert "T       bad (stale) (sp —)" in text  # a bad reading is not a missing value
    assert "pH bad (no reply) (sp —)" in text
    assert "LL bad  L wet" in text
    assert "E-stop bad" in text
    assert "?" not in text
    ascii_text = "\n".join(render_status(stopped, ASCII))
    assert "phase   -\n" in ascii_text
    assert "(sp -)" in ascii_text
    line = render_status_line(status("STOPPED", ts=1_700_000_000_000), PLAIN)
    assert line.endswith("STOPPED  alarms 1  T 21.5/— °C  pH 10.99/—  —")
    assert "  T bad/— °C  pH bad/—  —" in render_status_line(stopped, PLAIN)


def test_a_command_event_keeps_its_own_words_a_journal_row_is_built_from_its_fields() -> None:
    event = {"ts": 1_700_000_000_000, "kind": "command", "text": "pump calibration P-203 9.6 mL",
             "command": "cal pump", "source": "console:tech", "ok": True}  # fmt: skip
    assert render_event(event, PLAIN).endswith("command  pump calibration P-203 9.6 mL")
    row = {**event, "args": {"pump": "P-203", "measured_ml": 9.6}, "error": None,
           "result": {"pump": "P-203", "measured_ml": 9.6, "calibrated": True}}  # fmt: skip
    assert render_event(row, PLAIN).endswith(
        "command  cal pump pump=P-203 measured_ml=9.6 by console:tech: ok, pu..."
    )


def test_phase_progress_says_n_of_m_time_in_and_least_time_left() -> None:
    leach = status(
        "EXECUTE",
        phase="leach",
        phase_no=3,
        phase_count=6,
        phase_elapsed_s=12 * 60 + 30,
        phase_remaining_s=47 * 60 + 10,
        phase_waits_on_event=True,
    )
    assert "phase   leach (3 of 6)  12 min in, ≥ 48 min left" in render_status(leach, PLAIN)
    timed = leach | {"phase_waits_on_event": False, "phase_remaining_s": 4000.0}
    assert "phase   leach (3 of 6)  12 min in, 1 h 07 min left" in render_status(timed, PLAIN)
    prompt = leach | {
        "phase_remaining_s": None,
        "phase_elapsed_s": 40.0,
        "awaiting_confirmation": "Black mass charged",
    }
    lines = render_status(prompt, PLAIN)
    assert "phase   leach (3 of 6)  40 s in, waiting for: Black mass charged" in lines
    level = leach | {"phase_remaining_s": 0.0}
    assert "phase   leach (3 of 6)  12 min in, waiting on a level or temperature" in render_status(
        level, PLAIN
    )
    line = render_status_line(leach | {"ts": 1_700_000_000_000, "alarms_active": 1}, PLAIN)
    # most important first: the phase's progress is what 80 columns may cut
    expected = "EXECUTE  alarms 1  T 58.2/60.0 °C  pH 10.99/11.00  leach 3/6 ≥48m left"
    assert line == f"{clock(1_700_000_000_000)}  {expected}"
    assert len(line) == WIDTH
    assert render_status_line(leach, ASCII).isascii()


def test_watch_lines_are_stamped_with_the_units_clock_not_the_consoles() -> None:
    ahead = 4_102_444_800_000  # 2100-01-01: a simulator far ahead of the wall clock
    line = render_status_line(status("EXECUTE", phase="heat", ts=ahead), PLAIN)
    assert line.startswith(clock(ahead) + "  EXECUTE")
    assert render_status_line(status("EXECUTE", ts=None), PLAIN).startswith("--:--:--")


def test_batch_record_in_minutes_with_t_and_ph_statistics() -> None:
    text = "\n".join(render_batch(BATCH, PLAIN))
    assert "final COMPLETE" in text
    assert "coprecipitate      10.0   60.0  59.6/60.0/60.4" in text
    assert "10.96/11.00/11.04" in text
    assert "reagents mL: P-203 812.4, P-204 95.0" in text
    assert "alarms: none" in text


def test_help_lists_fit_a_24_line_screen_and_topics_say_everything() -> None:
    assert len(render_help(None, PLAIN)) <= 23  # leaves a line for the prompt
    for name in COMMAND_NAMES:
        lines = render_help(name, PLAIN)
        assert 1 <= len(lines) <= 8, name
        said = " ".join(line.strip() for line in lines)
        for entry in help_entries(name):  # every word of each form, nothing cut
            assert f"{entry.usage}: {entry.summary}" in said, name
            assert entry.detail in said, name
    assert "cal pump <tag> <ml>" in " ".join(render_help("cal", PLAIN))


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


def test_log_lists_one_line_per_entry_numbered_newest_first_and_shows_any_whole() -> None:
    lines = render_log(LOG, PLAIN)
    assert len(lines) == len(LOG)
    assert [line[:3] for line in lines] == ["  4", "  3", "  2", "  1"]
    assert f"  3 {clock(LOG[1]['ts'])} command  reset by console:tech: ok, state=IDLE" == lines[1]
    assert lines[2].startswith(f"  2 {clock(LOG[2]['ts'])} command  start recipe=leach by ")
    assert lines[2].endswith("...")  # cut at 80: `log show 2` has the rest
    whole = render_entry(LOG[2], 2, PLAIN)
    assert whole[0].startswith("entry 2 (c2)  2023-11-14 ")
    assert whole[0].endswith("  command")
    text = "\n".join(whole)
    assert "once the reactor has been checked after the E-stop" in text  # nothing cut
    assert "  args: recipe=leach" in text
    assert "  result: —" in text
    assert "  detail: reset by console:tech" in render_entry(LOG[1], 3, PLAIN)
    event = "\n".join(render_entry(LOG[3], 1, PLAIN))
    assert "  transition: raised" in event
    assert "  first_out: True" in event


def test_calibration_outcomes_are_short_and_say_what_was_measured() -> None:
    low = render_result("cal_ph", CAL_PH, PLAIN)
    assert low == [
        "AT-101 low 4.00 at 21.5 °C taken: ok",
        "  offset +0.6 mV, acid slope 97.8 %; points in: mid, low",
    ]
    mid = render_result("cal_ph", CAL_PH | {"point": "mid", "value": 7.0,
                                            "calibrated_points": ["mid"]}, PLAIN)  # fmt: skip
    assert mid[1] == "  offset +0.6 mV; points in: mid"  # no slope is measured at mid alone
    warn = render_result("cal_ph", CAL_PH | {"verdict": "warn",
                                             "problems": ["acid slope 92.0 % outside 95–105 %"]},
                         PLAIN)  # fmt: skip
    assert "usable, but the electrode is ageing" in warn[0]  # wrapped, not cut
    assert warn[-2] == "  offset +0.6 mV, acid slope 97.8 %; points in: mid, low"
    assert warn[-1] == "  acid slope 92.0 % outside 95–105 %"
    assert render_result("cal_ph_status", {"probe": "AT-101", "points": 0}, PLAIN) == [
        "AT-101 is not calibrated (no points): cal ph walks you through it"
    ]
    # After mid alone the circuit answers its default slopes: not shown as if measured.
    assert render_result("cal_ph_status", CAL_PH | {"points": 1, "base_slope_pct": 100.0},
                         PLAIN) == [
        "AT-101: 1 point, offset +0.6 mV, no slope yet (mid point only): ok"
    ]  # fmt: skip
    assert render_result("cal_ph_status", CAL_PH | {"points": 2, "base_slope_pct": 100.0},
                         PLAIN) == [
        "AT-101: 2 points, offset +0.6 mV, acid slope 97.8 %: ok"  # no base slope without high
    ]  # fmt: skip
    assert render_result("cal_pump", {"pump": "P-203", "measured_ml": 9.6, "calibrated": True},
                         PLAIN) == ["P-203 calibrated to 9.6 mL for its last run"]  # fmt: skip
    newer = {"pump": "P-203", "measured_ml": 9.6, "calibrated": True, "nominal_ml": 10.0}
    assert render_result("cal_pump", newer, PLAIN) == [
        "P-203 calibrated to 9.6 mL for its last run (it had counted 10 mL: -4.0 %)"
    ]


def test_announcements_say_what_happened_and_ring_only_for_what_needs_someone() -> None:
    when = clock(1_700_000_000_000)
    raised, prompt, returned = (announcement(event, PLAIN) for event in ANNOUNCED)
    assert raised == (
        [f"{when} ALARM   HIGH level_high_high (LSHH-101): high-high level switch wet:",
         "                 inflows stopped"],
        True,
    )  # fmt: skip
    assert prompt == ([f"{when} PROMPT  Black mass charged: type confirm once done"], True)
    assert returned == (
        [f"{when} alarm   level_high_high (LSHH-101) cause gone, still latched: ack",
         "                 level_high_high, then reset"],
        False,
    )  # fmt: skip
    acked = {**ANNOUNCED[0], "transition": "acknowledged"}
    assert announcement(acked, PLAIN) is None
    assert announcement({"ts": 0, "kind": "state", "text": "IDLE -> STARTING"}, PLAIN) is None
    nested = {"ts": 1_700_000_000_000, "kind": "prompt", "text": "", "data": {"prompt": "X"}}
    assert announcement(nested, PLAIN) == ([f"{when} PROMPT  X: type confirm once done"], True)
    # A tech's jog cut short elsewhere (another session's stop) reaches the console running it.
    stopped = {
        "ts": 1_700_000_000_000,
        "kind": "command",
        "text": "jog P-204 at 31.1 of 1000 mL stopped by stop",
        "data": {"command": "manual_stopped", "source": "manual mode", "ok": True},
    }
    assert announcement(stopped, PLAIN) == (
        [f"{when} MANUAL  jog P-204 at 31.1 of 1000 mL stopped by stop"],
        True,
    )
    other = {**stopped, "data": {"command": "hold", "source": "console:x", "ok": True}}
    assert announcement(other, PLAIN) is None


def test_a_batch_says_whether_it_runs_or_was_cut_short() -> None:
    running = render_batch({**BATCH, "final_state": None, "end_ts": None, "running": True}, PLAIN)
    assert running[0].endswith("running")
    assert "-> now" in running[1]
    cut = render_batch(
        {
            **BATCH,
            "final_state": "interrupted",
            "end_ts": 1_700_000_000_000,
            "detected_ts": 1_700_021_600_000,
        },
        PLAIN,
    )
    assert cut[0].endswith("final interrupted")
    assert cut[2].startswith("  last record ")
    assert "interruption found" in cut[2]
    # Open in the journal but not this daemon's batch: never called running.
    stale = render_batch({**BATCH, "final_state": None, "running": False}, PLAIN)
    assert "running" not in stale[0]
    # Ended by this run while the journal cannot write: how it ended, and that it is unsaved.
    unsaved = render_batch({**BATCH, "final_state": "COMPLETE", "unsaved": True}, PLAIN)
    assert unsaved[0].endswith("final COMPLETE (not journaled yet)")


def test_a_heater_or_drain_stop_reads_as_one() -> None:
    assert render_result("heater", {"percent": 0.0, "seconds": 0.0}, PLAIN) == ["heater off"]
    assert render_result("heater", {"percent": 50.0, "seconds": 30.0}, PLAIN) == [
        "heater 50.0% for 30.0 s (interlocks still apply)"
    ]
    assert render_result("drain", {"seconds": 0.0}, PLAIN) == ["drain closed"]


def test_status_says_why_the_purge_is_open_outside_a_batch_and_what_ends_it() -> None:
    outputs = {**status("ABORTED")["outputs"], "purge_valve": True}
    lines = render_status(status("ABORTED", reactor_charged=True, outputs=outputs), PLAIN)
    said = " ".join(line.strip() for line in lines)
    assert "purge open: the reactor may hold acid" in said
    assert "heel_drain_s" in said
    assert all(len(line) <= 80 for line in lines)
    # In a batch the purge is the recipe's: nothing to explain.
    busy = status("EXECUTE", phase="coprecipitate", reactor_charged=True, outputs=outputs)
    assert not any("may hold acid" in line for line in render_status(busy, PLAIN))


def test_a_commission_report_is_wrapped_never_cut() -> None:
    reason = "not answering on /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"
    device = {
        "tag": "AT-101",
        "kind": "EZO-pH",
        "found": False,
        "problems": [f"{reason} (device_lost: port not open (no such file))"],
    }
    result = {"report": {"unit": "unit-01", "ok": False, "devices": [device]}}
    lines = render_result("commission", result, PLAIN)
    assert all(len(line) <= WIDTH for line in lines)
    said = " ".join(line.strip() for line in lines)
    assert "(device_lost: port not open (no such file))" in said


def test_a_batchs_alarms_are_wrapped_and_repeats_said_once() -> None:
    repeated = [{"id": "output_fault", "raised_s": 0.0}] * 5
    kept = BATCH["record"]
    assert isinstance(kept, dict)
    record = {**kept, "alarms": [*repeated, {"id": "estop", "raised_s": 312.0}]}
    lines = render_batch({**BATCH, "record": record}, PLAIN)
    assert all(len(line) <= WIDTH for line in lines)
    said = " ".join(line.strip() for line in lines)
    assert "output_fault at 0.0 min (5 times, last at 0.0)" in said
    assert "estop at 5.2 min" in said  # what ended the batch, never cut off


def test_a_reset_that_left_a_latch_its_input_holds_says_so() -> None:
    style = PLAIN
    lines = render_result(
        "reset_alarms", {"count": 1, "held": ["temperature_high_high (TT-101)"]}, style
    )
    assert lines[0] == "reset 1 alarm"
    assert "still latched, its input unreadable: temperature_high_high (TT-101)" in " ".join(lines)
    assert render_result("reset_alarms", {"count": 2, "held": []}, style) == ["reset 2 alarms"]


def test_a_jog_under_a_standing_abort_trip_says_the_trip_stands() -> None:
    jog = {"pump": "P-202", "ml": 5.0, "ml_min": 105.0, "seconds": 2.9}
    assert render_result("jog_pump", jog, PLAIN) == [
        "jog P-202: 5.0 mL at 105.0 mL/min, about 2.9 s"
    ]
    lines = render_result("jog_pump", jog | {"standing": "temperature_high_high (TT-101)"}, PLAIN)
    assert lines[1] == "note: standing (it does not stop this pump): temperature_high_high (TT-101)"


def test_an_alarms_state_is_never_cut_off_a_long_head() -> None:
    # Found by a field tech: "* 01:34:53  HIGH  level_high_high (LSHH-101)  latched: reset when
    # the cause i..." cut the instruction that mattered.
    style = Style(colour=False, utf8=True, bell=False)
    latched = {**ALARMS[0], "state": "latched"}
    lines = render_alarms([latched], style)
    assert any(line.endswith("latched: reset when the cause is gone") for line in lines), lines
    assert all(len(line) <= 80 and not line.endswith("...") for line in lines), lines
