"""The console's grammar: one typed line → requests for the controller, a local action or an error.

Pure and synchronous: never touches the socket, the terminal or the clock; every error is one line.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from unit_controller.ph_buffers import BUFFER_C_RANGE, buffer_problem

MAX_LINE_CHARS: Final = 1000
LOG_MAX: Final = 500
PH_RANGE: Final = (0.0, 14.0)
# The usual buffer of each calibration point: what `cal ph` offers when none is typed.
PH_BUFFERS: Final = {"mid": 7.00, "low": 4.00, "high": 10.00}

JsonScalar = str | int | float | bool | None


class LineError(ValueError):
    """A line that cannot be carried out; the message is one line: what is wrong and the form."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request to the controller: an op of the control-socket protocol and its args."""

    op: str
    args: Mapping[str, JsonScalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Remote:
    """A command the controller carries out: its requests in order (`reset` sends two).

    `guarded` commands (manual and calibration) may need the PIN and are refused during a batch.
    """

    command: str
    requests: tuple[Request, ...]
    guarded: bool = False


@dataclass(frozen=True, slots=True)
class Help:
    """Show the command list, or one command's help."""

    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Quit:
    """Leave the console."""


@dataclass(frozen=True, slots=True)
class Watch:
    """Follow status and events until the batch ends or stops, Enter, or `seconds` elapse."""

    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Pin:
    """Ask for the PIN that unlocks manual and calibration commands."""


@dataclass(frozen=True, slots=True)
class LogShow:
    """Show one entry of the last `log` listing whole: by its number there, or its ref."""

    number: int | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class PhPoint:
    """One pH calibration point: which, the buffer's pH, and its temperature if given."""

    point: str  # mid, low or high
    value: float
    temperature_c: float | None = None

    def args(self) -> dict[str, JsonScalar]:
        """The `cal_ph` request's arguments."""
        args: dict[str, JsonScalar] = {"point": self.point, "value": self.value}
        if self.temperature_c is not None:
            args["temperature_c"] = self.temperature_c
        return args


@dataclass(frozen=True, slots=True)
class CalPhGuided:
    """`cal ph` alone: the guided calibration, point by point as the tech chooses."""


Parsed = Remote | Help | Quit | Watch | Pin | LogShow | CalPhGuided


@dataclass(frozen=True, slots=True)
class HelpEntry:
    """One line of `help`, and the longer words of `help <name>`."""

    names: tuple[str, ...]
    usage: str
    summary: str
    detail: str = ""


# One row per line of `help` (at most 22, so the list and its heading fit a 24-line screen).
HELP: Final[tuple[HelpEntry, ...]] = (
    HelpEntry(("status",), "status", "state, phase, T, pH, levels, outputs, alarms",
              "One screen of the unit as the controller sees it now."),
    HelpEntry(("alarms",), "alarms", "alarms that are not normal, most urgent first",
              "First-out alarms are marked '*'; latched ones need ack and reset."),
    HelpEntry(("ack",), "ack <id>|all", "acknowledge one alarm id or all of them",
              "Acknowledging does not reset a latch: use reset once the cause is gone."),
    HelpEntry(("reset",), "reset", "reset latched alarms, then PackML reset",
              "Resets latched alarms whose cause is gone, then STOPPED/COMPLETE -> IDLE."),
    HelpEntry(("start",), "start <recipe>", "start a batch from IDLE (see recipes)",
              "Example: start leach. The unit must be IDLE with no interlock in effect."),
    HelpEntry(("hold", "unhold", "suspend", "unsuspend", "complete"),
              "hold | unhold | complete", "hold safe / carry on / declare done",
              "Hold keeps T safe, stops dosing; complete ends the batch as done (held too). "
              "suspend | unsuspend: the same for a cause outside the unit (no feed)."),
    HelpEntry(("stop", "abort", "clear"), "stop | abort | clear", "stop; abort now; clear abort",
              "Stop ends the batch in order; abort ends it at once; clear leaves ABORTED."),
    HelpEntry(("confirm",), "confirm", "answer the waiting prompt (black mass charged)",
              "Only when status shows a prompt waiting; says what was confirmed."),
    HelpEntry(("recipes",), "recipes", "the recipes this unit can run"),
    HelpEntry(("watch",), "watch [seconds]", "follow the batch; Enter or Ctrl-C stops",
              "Ends by itself at COMPLETE, STOPPED, ABORTED or HELD, or after the seconds. "
              "A command typed meanwhile (abort, confirm) stops it and is carried out."),
    HelpEntry(("log",), "log [n] | log show <k>", "the last n entries (20), or entry k whole",
              f"log lists at most {LOG_MAX}, numbered 1 = newest; log show 3: the third newest."),
    HelpEntry(("batch",), "batch [id]", "a batch record (default: the latest)",
              "Phases with times in minutes and T/pH min/mean/max, reagents, alarms."),
    HelpEntry(("manual",), "manual on|off", "manual mode for jog and heater (PIN)",
              "Refused while a batch is executing. Interlocks stay in force."),
    HelpEntry(("unitmode",), "unitmode production|maintenance|manual", "the PackML unit mode",
              "Maintenance and manual keep batches from starting; only with no batch under way. "
              "Manual needs the PIN."),
    HelpEntry(("mode",), "mode local|remote", "who may operate the unit: here, or the fleet too",
              "Remote lets fleet (MQTT) commands act. A crash, a power loss or an E-stop sets "
              "local: look at the reactor, then set remote again."),
    HelpEntry(("jog",), "jog pump <tag> <ml> [cylinder]", "dose a volume with one pump (manual)",
              "jog pump P-203 5: 5 mL into the reactor (over LSL, agitator on); "
              "jog pump P-203 5 cylinder: into a measuring cylinder instead."),
    HelpEntry(("heater", "drain"), "heater <%> <s> | drain <s>", "heat, or drain, for a while",
              "heater 50 30: the heater at 50 % for 30 s, the agitator with it; drain 600: the "
              "drain valve open 10 min (drain off closes it). Manual on; interlocked."),
    HelpEntry(("cal",), "cal ph [mid|low|high pH]", "calibrate pH, guided (buffer °C optional)",
              "Buffers mid first (it clears low/high). cal ph status: the state; cal ph clear. "
              "A command typed meanwhile (stop, abort) ends it and is carried out."),
    HelpEntry(("cal",), "cal pump <tag> <ml>", "a pump's volume as measured (calibration)"),
    HelpEntry(("pin",), "pin", "enter the PIN for manual and calibration",
              "Asked for by itself when a command needs it; not echoed."),
    HelpEntry(("commission",), "commission", "check every instrument: found, firmware, calibration",
              "Asks the running drivers; `unit-controller commission --outputs` (daemon stopped) "
              "also pulses each relay and pump."),
    HelpEntry(("help", "quit", "exit"), "help [command] | quit",
              "this list, or more on one; quit leaves (Ctrl-D)"),
)  # fmt: skip

COMMAND_NAMES: Final = tuple(dict.fromkeys(name for entry in HELP for name in entry.names))

# ASCII digits only: \d takes any script's (a fullwidth ５ opened the drain for 5 s).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_RECIPE = re.compile(r"[a-z0-9_-]{1,40}")  # as the controller takes them (lower case)
_ALARM_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(text: str, *, limit: int = 40) -> str:
    """`text` safe to print inside an error: control characters as '?', long text cut."""
    text = _CONTROL.sub("?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def help_entries(topic: str) -> list[HelpEntry]:
    """The help rows of one command name (case-insensitive); empty if there is none."""
    name = topic.lower()
    return [entry for entry in HELP if name in entry.names]


def _number(text: str, *, what: str, example: str) -> float:
    if _NUMBER.fullmatch(text) is None:
        raise LineError(f"{what} must be a number like {example}, got '{shown(text)}'")
    value = float(text)
    if not math.isfinite(value):  # e.g. 400 digits
        raise LineError(f"{what} must be a number like {example}, got '{shown(text)}'")
    return value


def _positive(text: str, *, what: str, example: str, unit: str) -> float:
    value = _number(text, what=what, example=example)
    if value <= 0:
        raise LineError(f"{what} must be more than 0 {unit}, got {text}")
    return value


def _whole(text: str, *, what: str, low: int, high: int | None) -> int:
    bounds = f"{low}..{high}" if high is not None else f">= {low}"
    if _WHOLE.fullmatch(text) is None:
        raise LineError(f"{what} must be a whole number {bounds}, got '{shown(text)}'")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise LineError(f"{what} must be a whole number {bounds}, got {value}")
    return value


def _tag(text: str, *, form: str) -> str:
    if _TAG.fullmatch(text) is None:
        raise LineError(f"'{shown(text)}' is not a pump tag: {form}")
    return text.upper()


def _no_more(command: str, rest: Sequence[str], *, form: str | None = None) -> None:
    if rest:
        extra = shown(" ".join(rest))
        raise LineError(f"{command} takes nothing more, got '{extra}': {form or command}")


def _remote(
    command: str, op: str, args: Mapping[str, JsonScalar] | None = None, *, guarded: bool = False
) -> Remote:
    request = Request(op=op, args=dict(args or {}))
    return Remote(command=command, requests=(request,), guarded=guarded)


# Commands that are one request with no arguments, named as the op.
_PLAIN: Final = frozenset(
    {
        "status",
        "alarms",
        "recipes",
        "commission",
        "confirm",
        "hold",
        "unhold",
        "suspend",
        "unsuspend",
        "stop",
        "abort",
        "clear",
        "complete",
    }
)


def parse_line(line: str) -> Parsed | None:
    """Parse one input line; None for a blank or comment line; raises LineError when malformed."""
    if len(line) > MAX_LINE_CHARS:
        # No count: what reaches here was cut to a bound already (a 14,000-character paste
        # read "4096 characters"), so only "over the limit" is true.
        raise LineError(f"line too long: over {MAX_LINE_CHARS} characters (the most a line may be)")
    words = line.split("#", 1)[0].split()
    if not words:
        return None
    command, rest = words[0].lower(), words[1:]
    if command in _PLAIN:
        _no_more(command, rest)
        return _remote(command, command)
    parser = _PARSERS.get(command)
    if parser is None:
        raise LineError(_unknown(command))
    return parser(rest)


def _unknown(command: str) -> str:
    if command.isdigit():
        # Most likely a PIN typed where none was asked (a script's `manual on` then the PIN):
        # never repeated on the screen, in a log or a script's output.
        return "unknown command (a number, not shown: a PIN goes after `pin`)"
    # A command it begins (`stat` is status, not start) before one merely spelled alike.
    begun = [name for name in COMMAND_NAMES if name.startswith(command)]
    close = (
        begun[:1]
        if len(begun) == 1
        else difflib.get_close_matches(command, COMMAND_NAMES, n=1, cutoff=0.7)
    )
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown command '{shown(command)}'; {hint}type help for the list"


def _help(rest: Sequence[str]) -> Parsed:
    _no_more("help", rest[1:], form="help [command]")
    if not rest:
        return Help()
    if not help_entries(rest[0]):
        raise LineError(f"no command '{shown(rest[0])}'; type help for the list")
    return Help(topic=rest[0].lower())


def _quit(rest: Sequence[str]) -> Parsed:
    _no_more("quit", rest)
    return Quit()


def _pin(rest: Sequence[str]) -> Parsed:
    if rest:
        raise LineError("type pin alone, then the PIN when asked (it is not shown): pin")
    return Pin()


def _watch(rest: Sequence[str]) -> Parsed:
    _no_more("watch", rest[1:], form="watch [seconds]")
    if not rest:
        return Watch()
    seconds = _positive(rest[0], what="watch seconds", example="60", unit="s")
    return Watch(seconds=seconds)


def _ack(rest: Sequence[str]) -> Parsed:
    form = "ack <alarm id> | ack all (alarms lists the ids)"
    if len(rest) != 1:
        raise LineError(f"ack needs one alarm id or all: {form}")
    target = None if rest[0].lower() == "all" else rest[0]
    if target is not None and _ALARM_ID.fullmatch(target) is None:
        raise LineError(f"'{shown(target)}' is not an alarm id: {form}")
    return _remote("ack", "ack", {"alarm": target})


def _reset(rest: Sequence[str]) -> Parsed:
    _no_more("reset", rest)
    # A technician's "reset" means both: latched alarms first, then the PackML command.
    return Remote(
        command="reset",
        requests=(Request(op="reset_alarms", args={"alarm": None}), Request(op="reset", args={})),
    )


def _start(rest: Sequence[str]) -> Parsed:
    form = "start leach (recipes lists them)"
    if len(rest) != 1:
        raise LineError(f"start needs one recipe name: {form}")
    name = rest[0].lower()
    if _RECIPE.fullmatch(name) is None:
        raise LineError(f"'{shown(rest[0])}' is not a recipe name: {form}")
    return _remote("start", "start", {"recipe": name})


def _manual(rest: Sequence[str]) -> Parsed:
    if len(rest) != 1 or rest[0].lower() not in ("on", "off"):
        raise LineError("manual needs on or off: manual on")
    return _remote("manual", "manual", {"on": rest[0].lower() == "on"}, guarded=True)


def _unit_mode(rest: Sequence[str]) -> Parsed:
    modes = ("production", "maintenance", "manual")
    if len(rest) != 1 or rest[0].lower() not in modes:
        raise LineError("unitmode needs production, maintenance or manual: unitmode maintenance")
    mode = rest[0].lower()
    return _remote("unitmode", "unitmode", {"mode": mode}, guarded=mode == "manual")


def _authority(rest: Sequence[str]) -> Parsed:
    if not rest:  # asked, not told: where the answer is
        raise LineError("mode needs local or remote: mode remote (status shows REMOTE when it is)")
    if len(rest) != 1 or rest[0].lower() not in ("local", "remote"):
        raise LineError("mode needs local or remote: mode remote")
    return _remote("mode", "authority", {"mode": rest[0].lower()})


def _jog(rest: Sequence[str]) -> Parsed:
    form = "jog pump P-203 5"
    if not rest or rest[0].lower() != "pump":
        raise LineError(f"jog works on a pump: {form}")
    if len(rest) not in (3, 4):
        raise LineError(f"jog pump needs a pump tag and a volume: {form}")
    cylinder = len(rest) == 4
    if cylinder and rest[3].lower() != "cylinder":
        raise LineError(f"after the volume only 'cylinder' may follow: {form} cylinder")
    tag = _tag(rest[1], form=form)
    ml = _positive(rest[2], what="jog volume", example="5", unit="mL")
    args: dict[str, str | float | bool] = {"pump": tag, "ml": ml}
    if cylinder:
        args["cylinder"] = True
    return _remote("jog", "jog_pump", args, guarded=True)


def _heater(rest: Sequence[str]) -> Parsed:
    form = "heater 50 30 (percent, seconds)"
    if len(rest) != 2:
        raise LineError(f"heater needs a percent and seconds: {form}")
    percent = _number(rest[0], what="heater percent", example="50")
    if not 0 <= percent <= 100:
        raise LineError(f"heater percent must be 0..100, got {rest[0]}")
    if percent == 0:  # a stop: never refused over its seconds, but a word there is a typo
        _number(rest[1], what="heater seconds", example="30")
        return _remote("heater", "heater", {"percent": 0.0, "seconds": 0.0}, guarded=True)
    seconds = _positive(rest[1], what="heater seconds", example="30", unit="s")
    return _remote("heater", "heater", {"percent": percent, "seconds": seconds}, guarded=True)


def _drain(rest: Sequence[str]) -> Parsed:
    form = "drain 600 (seconds), or drain off"
    if len(rest) != 1:
        raise LineError(f"drain needs seconds or off: {form}")
    if rest[0].lower() in ("off", "close"):
        return _remote("drain", "drain", {"seconds": 0.0}, guarded=True)
    seconds = _number(rest[0], what="drain seconds", example="600")
    if seconds < 0:  # 0 closes, as `heater 0` stops
        raise LineError(f"drain seconds must be 0 or more, got {rest[0]}")
    return _remote("drain", "drain", {"seconds": seconds}, guarded=True)


def _cal(rest: Sequence[str]) -> Parsed:
    what = rest[0].lower() if rest else ""
    if what == "ph":
        return _cal_ph(rest[1:])
    if what == "pump":
        return _cal_pump(rest[1:])
    raise LineError("cal needs ph or pump: cal ph mid 7.00 | cal pump P-203 9.6")


def _cal_ph(rest: Sequence[str]) -> Parsed:
    if not rest:
        return CalPhGuided()
    point = rest[0].lower()
    if point in ("status", "clear"):
        _no_more(f"cal ph {point}", rest[1:])
        return _remote(f"cal ph {point}", f"cal_ph_{point}", guarded=True)
    if point not in PH_BUFFERS:
        raise LineError("cal ph needs mid, low, high, status or clear: cal ph mid 7.00")
    if len(rest) not in (2, 3):
        raise LineError(
            f"cal ph {point} needs the buffer's pH [and °C]: "
            f"cal ph {point} {PH_BUFFERS[point]:.2f} [22.5]"
        )
    ph_point = _ph_point(point, rest[1:])
    return Remote(command="cal ph", requests=(Request("cal_ph", ph_point.args()),), guarded=True)


def _ph_point(point: str, rest: Sequence[str]) -> PhPoint:
    """`point` with the buffer's pH (else its usual one) and temperature from `rest`."""
    example = f"{PH_BUFFERS[point]:.2f}"
    value = PH_BUFFERS[point]
    if rest:
        value = _number(rest[0], what="pH value", example=example)
        low, high = PH_RANGE
        if not low <= value <= high:
            raise LineError(f"pH value must be {low:g}..{high:g}, got {rest[0]}")
        # Before a guided calibration walks the tech through a buffer the controller refuses.
        problem = buffer_problem(point, value)
        if problem is not None:
            raise LineError(problem)
    temperature = None
    if len(rest) > 1:
        # The probe sits in a beaker of buffer, which is rarely at the reactor's temperature.
        temperature = _number(rest[1], what="buffer temperature", example="22.5")
        low, high = BUFFER_C_RANGE
        if not low <= temperature <= high:
            raise LineError(f"buffer temperature must be {low:g}..{high:g} °C, got {rest[1]}")
    return PhPoint(point=point, value=value, temperature_c=temperature)


def parse_ph_point(line: str, *, default: PhPoint | None) -> PhPoint | None:
    """An answer in the guided calibration: `low`, `low 4.01`, `high 10 21.5`, or Enter for
    `default`; None for done (`done`, or Enter with no default). Raises LineError."""
    words = line.split()
    if not words:
        return default
    point = words[0].lower()
    if point in ("done", "quit", "q", "end"):
        _no_more(point, words[1:])
        return None
    if point not in PH_BUFFERS:
        raise LineError("answer mid, low or high [pH [°C]], or done: e.g. low 4.01")
    if len(words) > 3:
        raise LineError(f"{point} takes at most the buffer's pH and °C: {point} 4.01 22.5")
    return _ph_point(point, words[1:])


def _cal_pump(rest: Sequence[str]) -> Parsed:
    form = "cal pump P-203 9.6"
    if len(rest) != 2:
        raise LineError(f"cal pump needs a pump tag and the mL it really gave: {form}")
    tag = _tag(rest[0], form=form)
    ml = _positive(rest[1], what="measured volume", example="9.6", unit="mL")
    return _remote("cal pump", "cal_pump", {"pump": tag, "measured_ml": ml}, guarded=True)


_REF = re.compile(r"[a-z][0-9]{1,18}")  # the controller's entry refs: c12, e40


def _log(rest: Sequence[str]) -> Parsed:
    if rest and rest[0].lower() == "show":
        form = "log show 3 (3: as numbered by the last log)"
        if len(rest) != 2:
            raise LineError(f"log show needs one entry number: {form}")
        which = rest[1].lower()
        if _REF.fullmatch(which):
            return LogShow(ref=which)
        return LogShow(number=_whole(which, what="log entry", low=1, high=LOG_MAX))
    _no_more("log", rest[1:], form="log [n] | log show <k>")
    if not rest:
        return _remote("log", "log", {"n": 20})
    n = _whole(rest[0], what="log count", low=1, high=LOG_MAX)
    return _remote("log", "log", {"n": n})


_MAX_BATCH_ID: Final = 2**62


def _batch(rest: Sequence[str]) -> Parsed:
    _no_more("batch", rest[1:], form="batch [id]")
    if not rest:
        return _remote("batch", "batch", {"id": None})
    # The journal's ids fit SQLite's integers: a longer number is no batch of this unit.
    batch_id = _whole(rest[0], what="batch id", low=1, high=_MAX_BATCH_ID)
    return _remote("batch", "batch", {"id": batch_id})


_PARSERS: Final = {
    "help": _help,
    "quit": _quit,
    "exit": _quit,
    "pin": _pin,
    "watch": _watch,
    "ack": _ack,
    "reset": _reset,
    "start": _start,
    "manual": _manual,
    "unitmode": _unit_mode,
    "mode": _authority,
    "jog": _jog,
    "heater": _heater,
    "drain": _drain,
    "cal": _cal,
    "log": _log,
    "batch": _batch,
}
