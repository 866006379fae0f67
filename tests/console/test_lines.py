"""What a technician types and what the console makes of it: requests, local actions, errors.

Pure parsing: no socket, no terminal.
"""

from __future__ import annotations

import pytest

from unit_controller.console.lines import (
    COMMAND_NAMES,
    HELP,
    CalPhGuided,
    Help,
    JsonScalar,
    LineError,
    LogShow,
    Parsed,
    PhPoint,
    Pin,
    Quit,
    Remote,
    Request,
    Watch,
    parse_line,
    parse_ph_point,
)


def _one(op: str, **args: JsonScalar) -> Remote:
    return Remote(command=op, requests=(Request(op=op, args=args),))


def _guarded(command: str, op: str, **args: JsonScalar) -> Remote:
    return Remote(command=command, requests=(Request(op=op, args=args),), guarded=True)


JOG = "jog pump P-203 5"

GOOD: list[tuple[str, Parsed]] = [
    ("status", _one("status")),
    ("  STATUS  ", _one("status")),
    ("alarms", _one("alarms")),
    ("ack all", _one("ack", alarm=None)),
    ("ack ALL", _one("ack", alarm=None)),
    ("ack level_high_high", _one("ack", alarm="level_high_high")),
    (
        "reset",
        Remote(
            command="reset",
            requests=(Request("reset_alarms", {"alarm": None}), Request("reset", {})),
        ),
    ),
    ("start leach", _one("start", recipe="leach")),
    ("Start Leach", _one("start", recipe="leach")),
    ("hold", _one("hold")),
    ("unhold", _one("unhold")),
    # A batch suspended by the fleet is resumed at the unit too (DESIGN §3).
    ("suspend", _one("suspend")),
    ("unsuspend", _one("unsuspend")),
    ("stop", _one("stop")),
    ("abort", _one("abort")),
    ("clear", _one("clear")),
    ("confirm", _one("confirm")),
    ("complete", _one("complete")),
    ("recipes", _one("recipes")),
    ("manual on", _guarded("manual", "manual", on=True)),
    ("manual OFF", _guarded("manual", "manual", on=False)),
    ("unitmode maintenance", _one("unitmode", mode="maintenance")),
    ("unitmode Production", _one("unitmode", mode="production")),
    ("unitmode manual", _guarded("unitmode", "unitmode", mode="manual")),
    ("jog pump P-203 5", _guarded("jog", "jog_pump", pump="P-203", ml=5.0)),
    ("jog  pump  p-203  .5", _guarded("jog", "jog_pump", pump="P-203", ml=0.5)),
    ("jog pump P-201 5 Cylinder", _guarded("jog", "jog_pump", pump="P-201", ml=5.0, cylinder=True)),
    ("heater 50 30", _guarded("heater", "heater", percent=50.0, seconds=30.0)),
    ("heater 0 1.5", _guarded("heater", "heater", percent=0.0, seconds=0.0)),
    ("heater 0 0", _guarded("heater", "heater", percent=0.0, seconds=0.0)),  # a stop
    ("cal ph mid 7.00", _guarded("cal ph", "cal_ph", point="mid", value=7.0)),
    ("CAL PH low 4", _guarded("cal ph", "cal_ph", point="low", value=4.0)),
    ("cal ph", CalPhGuided()),
    ("cal ph mid 7 21.5", _guarded("cal ph", "cal_ph", point="mid", value=7.0, temperature_c=21.5)),
    ("cal ph status", _guarded("cal ph status", "cal_ph_status")),
    ("cal ph clear", _guarded("cal ph clear", "cal_ph_clear")),
    ("cal pump P-203 9.6", _guarded("cal pump", "cal_pump", pump="P-203", measured_ml=9.6)),
    ("log", _one("log", n=20)),
    ("log 5", _one("log", n=5)),
    ("log 500", _one("log", n=500)),
    ("log show 7", LogShow(number=7)),
    ("log SHOW c12", LogShow(ref="c12")),
    ("batch", _one("batch", id=None)),
    ("batch 12", _one("batch", id=12)),
    ("help", Help()),
    ("help Jog", Help(topic="jog")),
    ("quit", Quit()),
    ("exit", Quit()),
    ("watch", Watch()),
    ("watch 60", Watch(seconds=60.0)),
    ("pin", Pin()),
    ("status   # what now?", _one("status")),
]  # fmt: skip


@pytest.mark.parametrize(("line", "expected"), GOOD, ids=[line for line, _ in GOOD])
def test_good_lines_become_requests_or_actions(line: str, expected: Parsed) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize("line", ["", "   ", "# a comment", "  # indented comment", "\t"])
def test_blank_and_comment_lines_are_skipped(line: str) -> None:
    assert parse_line(line) is None


BAD: list[tuple[str, str]] = [
    ("bogus", "unknown command 'bogus'; type help for the list"),
    # A PIN typed where none was asked is never repeated (found by a field tech).
    ("4321", "unknown command (a number, not shown: a PIN goes after `pin`)"),
    # ASCII digits only: a fullwidth or Arabic-Indic digit is no number here.
    ("drain \u0665", "drain seconds must be a number like 600, got '\u0665'"),
    ("jog pump P-203 \uff15 cylinder", "jog volume must be a number like 5, got '\uff15'"),
    ("stauts", "unknown command 'stauts'; did you mean status? type help for the list"),
    ("stat", "unknown command 'stat'; did you mean status? type help for the list"),
    ("batch 99999999999999999999",
     "batch id must be a whole number 1..4611686018427387904, got 99999999999999999999"),
    ("status now", "status takes nothing more, got 'now': status"),
    ("ack", "ack needs one alarm id or all: ack <alarm id> | ack all (alarms lists the ids)"),
    ("ack a b", "ack needs one alarm id or all: ack <alarm id> | ack all (alarms lists the ids)"),
    ("ack a/b", "'a/b' is not an alarm id: ack <alarm id> | ack all (alarms lists the ids)"),
    ("reset all", "reset takes nothing more, got 'all': reset"),
    ("start", "start needs one recipe name: start leach (recipes lists them)"),
    ("start ../etc/x", "'../etc/x' is not a recipe name: start leach (recipes lists them)"),
    ("manual", "manual needs on or off: manual on"),
    ("manual maybe", "manual needs on or off: manual on"),
    ("unitmode", "unitmode needs production, maintenance or manual: unitmode maintenance"),
    ("unitmode repair", "unitmode needs production, maintenance or manual: unitmode maintenance"),
    ("mode", "mode needs local or remote: mode remote (status shows REMOTE when it is)"),
    ("mode here", "mode needs local or remote: mode remote"),
    ("jog", "jog works on a pump: jog pump P-203 5"),
    ("jog heater 5", "jog works on a pump: jog pump P-203 5"),
    ("jog pump P-203", "jog pump needs a pump tag and a volume: jog pump P-203 5"),
    ("jog pump 5", "jog pump needs a pump tag and a volume: jog pump P-203 5"),
    ("jog pump 203 5", "'203' is not a pump tag: jog pump P-203 5"),
    ("jog pump P-203 5 beaker", f"after the volume only 'cylinder' may follow: {JOG} cylinder"),
    ("jog pump P-203 five", "jog volume must be a number like 5, got 'five'"),
    ("jog pump P-203 nan", "jog volume must be a number like 5, got 'nan'"),
    ("jog pump P-203 inf", "jog volume must be a number like 5, got 'inf'"),
    ("jog pump P-203 1e3", "jog volume must be a number like 5, got '1e3'"),
    ("jog pump P-203 -5", "jog volume must be more than 0 mL, got -5"),
    ("jog pump P-203 0", "jog volume must be more than 0 mL, got 0"),
    ("heater 50", "heater needs a percent and seconds: heater 50 30 (percent, seconds)"),
    ("heater 150 3", "heater percent must be 0..100, got 150"),
    ("heater -1 3", "heater percent must be 0..100, got -1"),
    ("heater 50 0", "heater seconds must be more than 0 s, got 0"),
    ("heater 0 banana", "heater seconds must be a number like 30, got 'banana'"),
    ("heater 5,5 3", "heater percent must be a number like 50, got '5,5'"),
    ("cal", "cal needs ph or pump: cal ph mid 7.00 | cal pump P-203 9.6"),
    ("cal orp 7", "cal needs ph or pump: cal ph mid 7.00 | cal pump P-203 9.6"),
    ("cal ph middle 7", "cal ph needs mid, low, high, status or clear: cal ph mid 7.00"),
    ("cal ph mid", "cal ph mid needs the buffer's pH [and °C]: cal ph mid 7.00 [22.5]"),
    ("cal ph high", "cal ph high needs the buffer's pH [and °C]: cal ph high 10.00 [22.5]"),
    ("cal ph mid 7 99", "buffer temperature must be 0..60 °C, got 99"),
    ("cal ph mid 15", "pH value must be 0..14, got 15"),
    # Before a guided calibration, not after the tech has waited for a steady reading.
    ("cal ph mid 4", "a mid buffer must be pH 6 to 8 (e.g. 7.00), got 4"),
    ("cal ph high 7.5", "a high buffer must be above pH 8 (e.g. 10.00), got 7.5"),
    ("cal ph mid 7,00", "pH value must be a number like 7.00, got '7,00'"),
    ("cal ph status now", "cal ph status takes nothing more, got 'now': cal ph status"),
    ("cal pump P-203", "cal pump needs a pump tag and the mL it really gave: cal pump P-203 9.6"),
    ("log 0", "log count must be a whole number 1..500, got 0"),
    ("log 501", "log count must be a whole number 1..500, got 501"),
    ("log 2.5", "log count must be a whole number 1..500, got '2.5'"),
    ("log 5 6", "log takes nothing more, got '6': log [n] | log show <k>"),
    ("log show", "log show needs one entry number: log show 3 (3: as numbered by the last log)"),
    ("log show 0", "log entry must be a whole number 1..500, got 0"),
    ("log show seven", "log entry must be a whole number 1..500, got 'seven'"),
    ("batch x", "batch id must be a whole number 1..4611686018427387904, got 'x'"),
    ("batch 0", "batch id must be a whole number 1..4611686018427387904, got 0"),
    ("watch soon", "watch seconds must be a number like 60, got 'soon'"),
    ("watch -1", "watch seconds must be more than 0 s, got -1"),
    ("help frobnicate", "no command 'frobnicate'; type help for the list"),
    ("pin 1234", "type pin alone, then the PIN when asked (it is not shown): pin"),
    ("\x1b[A", "unknown command '?[a'; type help for the list"),
    ("x" * 1001, "line too long: over 1000 characters (the most a line may be)"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "message"), BAD, ids=[line[:20] for line, _ in BAD])
def test_malformed_lines_get_one_clear_line(line: str, message: str) -> None:
    with pytest.raises(LineError) as caught:
        parse_line(line)
    assert str(caught.value) == message
    assert "\n" not in message
    assert len(message) <= 80


def test_every_command_in_help_is_known_to_the_parser() -> None:
    assert len(HELP) <= 22  # with its heading, the list fits a 24-line screen
    for name in COMMAND_NAMES:
        errors: list[str] = []
        try:
            parse_line(name)
        except LineError as exc:
            errors.append(str(exc))  # needs arguments: the error shows the form
        assert not any("unknown command" in error for error in errors), name


POINTS: list[tuple[str, PhPoint | None]] = [
    ("", PhPoint("low", 4.0)),
    ("low", PhPoint("low", 4.0)),
    (" HIGH ", PhPoint("high", 10.0)),
    ("low 4.01", PhPoint("low", 4.01)),
    ("mid 6.86 21.5", PhPoint("mid", 6.86, 21.5)),
    ("done", None),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "expected"), POINTS, ids=[a or "enter" for a, _ in POINTS])
def test_the_guided_calibration_takes_a_point_its_buffer_or_done(
    answer: str, expected: PhPoint | None
) -> None:
    assert parse_ph_point(answer, default=PhPoint("low", 4.0)) == expected


def test_enter_ends_the_guided_calibration_once_no_point_is_left() -> None:
    assert parse_ph_point("", default=None) is None


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("middle", "answer mid, low or high [pH [°C]], or done: e.g. low 4.01"),
        ("low four", "pH value must be a number like 4.00, got 'four'"),
        ("high 10 99", "buffer temperature must be 0..60 °C, got 99"),
        ("done now", "done takes nothing more, got 'now': done"),
    ],
)
def test_a_wrong_answer_in_the_guided_calibration_says_the_form(answer: str, message: str) -> None:
    with pytest.raises(LineError) as caught:
        parse_ph_point(answer, default=None)
    assert str(caught.value) == message
