"""Plain text for an 80-column terminal: status, alarms, batch records, log lines, help.

Pure functions of the controller's answers; never writes control characters the controller sent,
and never colours unless the terminal says it can (a tty, TERM set and not dumb, no NO_COLOR).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from unit_controller.commissioning.report import CommissionReport, DeviceReport
from unit_controller.console.lines import HELP, help_entries
from unit_controller.console.render_cal import (
    render_cal_ph,
    render_cal_ph_clear,
    render_cal_ph_status,
    render_cal_pump,
)
from unit_controller.console.render_log import render_event, render_log
from unit_controller.console.text import NONE, WIDTH, Style, clean, clock, fit, visible_len, wrap

__all__ = [  # render_event and render_log live in render_log.py; callers find them here too
    "END_STATES",
    "render_alarms",
    "render_batch",
    "render_event",
    "render_facts",
    "render_help",
    "render_log",
    "render_recipes",
    "render_result",
    "render_status",
    "render_status_line",
]

END_STATES: Final = frozenset({"COMPLETE", "STOPPED", "ABORTED", "HELD"})
_STATE_COLOUR: Final = {
    "EXECUTE": "green",
    "COMPLETE": "green",
    "IDLE": "green",
    "HELD": "yellow",
    "HOLDING": "yellow",
    "SUSPENDED": "yellow",
    "STOPPED": "yellow",
    "ABORTING": "red",
    "ABORTED": "red",
}


def _num(value: object, digits: int) -> str:
    """A number to `digits` decimals; "—" when there is none (no setpoint, nothing known)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return NONE
    return f"{value:.{digits}f}"


def _reading(status: Mapping[str, Any], key: str, digits: int, unit: str = "") -> str:
    """A measured value: the number, "bad (why)" when the reading is bad, "—" when there is
    none (before the first scan)."""
    bad = _dict(status.get("bad"))
    value = status.get(key)
    if key in bad and not isinstance(value, int | float):
        return f"bad ({clean(bad[key])})"
    number = _num(value, digits)
    return f"{number} {unit}" if unit and number != NONE else number


def _short(status: Mapping[str, Any], key: str, digits: int) -> str:
    """A measured value for a watch line: the number, "bad", or "—" when there is none."""
    if key in _dict(status.get("bad")) and not isinstance(status.get(key), int | float):
        return "bad"
    return _num(status.get(key), digits)


def _seconds(value: object) -> float | None:
    """A finite number of seconds, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _duration(seconds: float, *, up: bool = False, short: bool = False) -> str:
    """`45 s`, `12 min`, `2 h 05 min` (`short`: `45s`, `12m`, `2h05m`): rounded down, or up
    (`up`) for a time still needed."""
    whole = math.ceil(seconds) if up else math.floor(seconds)
    if whole < 60:
        return f"{whole}s" if short else f"{whole} s"
    minutes = math.ceil(seconds / 60) if up else whole // 60
    if minutes < 60:
        return f"{minutes}m" if short else f"{minutes} min"
    if short:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _value(value: object) -> str:
    """A value from the controller as text: a float to 3 decimals at most (5.0 stays "5.0",
    2.8571428571428568 becomes "2.857", 0.0000123 "1.23e-05"); anything else as `clean` has it."""
    if isinstance(value, float) and math.isfinite(value):
        return str(round(value, 3)) if value == 0 or abs(value) >= 0.001 else f"{value:.3g}"
    return clean(value)


def _yes(value: object, yes: str, no: str) -> str:
    """A switch: `yes` or `no`; a switch the controller cannot read is a bad reading."""
    return "bad" if value is None else (yes if value else no)


def _date_time(ts_ms: object) -> str:
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int | float) or not math.isfinite(ts_ms):
        return NONE
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts_ms / 1000))
    except (OverflowError, OSError, ValueError):
        return NONE


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _state(value: object, style: Style) -> str:
    text = clean(value) if value else NONE
    return style.paint(text, _STATE_COLOUR.get(text))


def _row(label: str, text: str) -> str:
    return f"{label:<8}{text}"


def _finish(lines: Iterable[str], style: Style) -> list[str]:
    return [style.out(fit(line)) for line in lines]


# --- status -----------------------------------------------------------------------------------
def render_status(status: Mapping[str, Any], style: Style) -> list[str]:
    """The unit at a glance: a few aligned lines, each at most 80 columns."""
    lines = [_row("state", _state_line(status, style)), _row("phase", _phase(status))]
    deg = style.deg_c
    t_sp = _num(status.get("temperature_sp_c"), 1)
    t = f"{_reading(status, 'temperature_c', 1, deg)} (sp {t_sp})"
    ph = f"{_reading(status, 'ph', 2)} (sp {_num(status.get('ph_sp'), 2)})"
    if len(t) < 28:
        lines.append(_row("T", f"{t:<28}pH {ph}"))
    else:  # a bad reading says why: pH gets its own row rather than running into it
        lines += [_row("T", t), _row("pH", ph)]
    levels = _dict(status.get("levels"))
    switches = "  ".join(
        f"{name} {_yes(levels.get(key), 'wet', 'dry')}"
        for name, key in (("LL", "low_low"), ("L", "low"), ("H", "high"), ("HH", "high_high"))
    )
    estop = status.get("estop_pressed")
    estop_text = (
        style.paint("E-STOP PRESSED", "red")
        if estop
        else f"E-stop {'bad' if estop is None else 'ok'}"
    )
    lines.append(_row("levels", f"{switches}    {estop_text}"))
    lines.append(_row("outputs", _outputs(status)))
    outputs = _dict(status.get("outputs"))
    if status.get("reactor_charged") and outputs.get("purge_valve") and not status.get("phase"):
        # Outside a batch the purge open is the unit's own doing: say why, and what ends it.
        text = (
            "purge open: the reactor may hold acid; it closes once both low switches read dry "
            "and the drain has been open [safe_state] heel_drain_s"
        )
        lines += wrap(_row("N2", text), indent=8)
    pumps = _pumps(status)
    if pumps:
        lines.append(_row("pumps", pumps))
    running = [clean(item) for item in _list(status.get("manual_running")) if item]
    if running:
        lines.append(_row("manual", style.paint(", ".join(running), "yellow")))
    last_stop = status.get("manual_last_stop")
    if status.get("manual") and isinstance(last_stop, str) and last_stop:
        # Wrapped, not cut: the reason is the point of the row.
        lines += wrap(_row("stopped", clean(last_stop)), indent=8)
    faults = _dict(status.get("output_faults"))
    if faults:  # the row above is what is commanded: say which outputs may not be doing it
        text = ", ".join(f"{clean(tag)} {clean(why)}" for tag, why in faults.items())
        lines.append(_row("faults", style.paint(f"not obeying: {text}", "red")))
    lines.append(_row("alarms", _alarm_count(status.get("alarms_active"), style)))
    prompt = status.get("awaiting_confirmation")
    if prompt:
        words = clean(prompt) if isinstance(prompt, str) else "an operator confirmation"
        lines.append(_row("waiting", style.paint(f"type confirm once done: {words}", "yellow")))
    if status.get("ph_calibration_due"):
        lines.append(_row("cal", style.paint("pH calibration is due (cal ph status)", "yellow")))
    if status.get("clock_synchronized") is False:
        text = "not synchronised: fleet commands may be refused (timedatectl)"
        lines.append(_row("clock", style.paint(text, "yellow")))
    bad = _dict(status.get("bad"))
    if bad:
        text = ", ".join(f"{clean(name)} {clean(reason)}" for name, reason in bad.items())
        lines.append(_row("bad", style.paint(text, "red")))
    return _finish(lines, style)


def _state_line(status: Mapping[str, Any], style: Style) -> str:
    number = status.get("state_no")
    state = _state(status.get("state"), style)
    if isinstance(number, int) and not isinstance(number, bool):
        state += f" ({number})"
    parts = [state]  # most important first: a long recipe name may be cut at 80 columns
    if status.get("manual"):
        parts.append(style.paint("MANUAL", "yellow"))
    elif status.get("unit_mode") == "maintenance":
        parts.append(style.paint("MAINTENANCE", "yellow"))
    if status.get("authority") == "remote":
        parts.append("REMOTE")  # local is the normal case at a console: shown when it is not
    if status.get("batch_id") is not None:
        parts.append(f"batch {clean(status['batch_id'])}")
    if status.get("recipe"):
        parts.append(f"recipe {clean(status['recipe'])}")
    return "   ".join(parts)


def _phase(status: Mapping[str, Any]) -> str:
    """`leach (3 of 6)  12 min in, ≥ 48 min left`, or what it waits for; "—" outside a batch."""
    name = status.get("phase")
    if not name:
        return NONE
    text = clean(name)
    number, count = status.get("phase_no"), status.get("phase_count")
    if isinstance(number, int) and isinstance(count, int):
        text += f" ({number} of {count})"
    parts = []
    elapsed, remaining = _seconds(status.get("phase_elapsed_s")), _left(status)
    waits = status.get("phase_waits_on_event") is True
    prompt = status.get("awaiting_confirmation")
    if elapsed is not None:
        parts.append(f"{_duration(elapsed)} in")
    if remaining is not None:
        # The least time the timed conditions still need: more if an event must come too.
        parts.append(f"{'≥ ' if waits else ''}{_duration(remaining, up=True)} left")
    if prompt:
        parts.append(f"waiting for: {clean(prompt)}")
    elif waits and status.get("phase_waits_for"):
        parts.append(f"waiting for: {clean(status['phase_waits_for'])}")
    elif waits and remaining is None:
        parts.append("waiting on a level or temperature")
    return f"{text}  {', '.join(parts)}" if parts else text


def _outputs(status: Mapping[str, Any]) -> str:
    outputs = _dict(status.get("outputs"))
    names = {
        "contactor": "contactor",
        "agitator": "agitator",
        "fill_pump": "fill pump",
        "drain_valve": "drain valve",
        "purge_valve": "N2 purge",
        "cooling_valve": "jacket cooling",
    }
    on: list[str] = []
    duty = status.get("heater_duty")
    if outputs.get("heater_on") or (isinstance(duty, int | float) and duty > 0):
        on.append(f"heater {_num(duty * 100 if isinstance(duty, int | float) else None, 0)}%")
    on.extend(label for key, label in names.items() if outputs.get(key))
    if on:
        return ", ".join(on)
    # A pump running alone (a manual jog) is shown on the next row: "all off" would say not.
    return "dosing only (pumps below)" if _pumps(status) else "all off"


def _pumps(status: Mapping[str, Any]) -> str:
    rates = _dict(status.get("pumps_ml_min"))
    running = [
        f"{clean(tag)} {_num(rate, 2)} mL/min"
        for tag, rate in rates.items()
        if isinstance(rate, int | float) and rate > 0
    ]
    return ", ".join(running)


def _left(status: Mapping[str, Any]) -> float | None:
    """The phase's timed conditions' time still needed (s), None when none is left."""
    remaining = _seconds(status.get("phase_remaining_s"))
    return remaining if remaining is not None and remaining > 0 else None


def _alarm_count(count: object, style: Style) -> str:
    if not isinstance(count, int) or isinstance(count, bool):
        return NONE
    if count == 0:
        return "none active"
    return style.paint(f"{count} active (type alarms)", "red")


def render_status_line(status: Mapping[str, Any], style: Style) -> str:
    """One line of status for `watch`: the unit's time (its `ts`, as events are stamped),
    state, alarms, a waiting prompt, T and pH against setpoints, phase n/m and time left.

    Most important first: 80 columns cannot always hold it all, and the phase's progress (in
    `status` too, and its changes are events) is what a cut takes.
    """
    parts = [clock(status.get("ts")), _state(status.get("state"), style)]
    count = status.get("alarms_active")
    if isinstance(count, int) and count:
        parts.append(style.paint(f"alarms {count}", "red"))
    if status.get("awaiting_confirmation"):
        parts.append(style.paint("prompt waiting", "yellow"))
    t, t_sp = _short(status, "temperature_c", 1), _num(status.get("temperature_sp_c"), 1)
    parts.append(f"T {t}/{t_sp} {style.deg_c}")
    parts.append(f"pH {_short(status, 'ph', 2)}/{_num(status.get('ph_sp'), 2)}")
    parts.append(_phase_short(status))
    return _finish(["  ".join(parts)], style)[0]


def _phase_short(status: Mapping[str, Any]) -> str:
    """`leach 3/6 ≥48m left` for a watch line; "—" outside a batch."""
    name = status.get("phase")
    if not name:
        return NONE
    text = clean(name)
    number, count = status.get("phase_no"), status.get("phase_count")
    if isinstance(number, int) and isinstance(count, int):
        text += f" {number}/{count}"
    remaining = _left(status)
    if remaining is not None:
        at_least = "≥" if status.get("phase_waits_on_event") is True else ""
        text += f" {at_least}{_duration(remaining, up=True, short=True)} left"
    return text


# --- alarms, log, events ----------------------------------------------------------------------
def render_alarms(alarms: Sequence[Mapping[str, Any]], style: Style) -> list[str]:
    """Alarms, most urgent first as the controller sent them: two lines each, '*' for first-out."""
    if not alarms:
        return ["no alarms"]
    lines: list[str] = []
    for alarm in alarms:
        mark = "*" if alarm.get("first_out") else " "
        priority = clean(alarm.get("priority", "?"))
        colour = "red" if priority in ("critical", "high") else None
        state = clean(alarm.get("state", "?"))
        words = _ALARM_STATES.get(state, state)
        if alarm.get("latched") and state != "latched":
            words += ", latching"
        head = (
            f"{mark} {clock(alarm.get('raised_ts'))}  {style.paint(priority.upper(), colour)}  "
            f"{clean(alarm.get('id', '?'))} ({clean(alarm.get('tag', '?'))})"
        )
        # Its state says what to do ("latched: reset when the cause is gone"): never cut off
        # the end of a long head, but on its own line then.
        if visible_len(f"{head}  {words}") <= WIDTH:
            lines.append(f"{head}  {words}")
        else:
            lines.extend([head, f"    {words}"])
        # The message is what the tech acts on: wrapped, never cut.
        lines.extend(wrap(f"    {clean(alarm.get('message', ''))}", indent=4))
    if any(alarm.get("first_out") for alarm in alarms):
        lines.append("* first out")
    return _finish(lines, style)


_ALARM_STATES: Final = {
    "unack_active": "active, not acknowledged",
    "ack_active": "active, acknowledged",
    "unack_returned": "returned, not acknowledged",
    "latched": "latched: reset when the cause is gone",
}


def render_recipes(recipes: Sequence[Mapping[str, Any]], style: Style) -> list[str]:
    """Recipe names and their descriptions; for one that cannot run here, every reason why, in
    full (the tech has to fix them)."""
    if not recipes:
        return ["no recipes on this unit"]
    names = [clean(r.get("name", "?")) for r in recipes]
    width = max(len(name) for name in names)
    lines: list[str] = []
    for name, recipe in zip(names, recipes, strict=True):
        problems = _list(recipe.get("problems"))
        if not problems:
            lines.append(f"{name:<{width}}  {clean(recipe.get('description') or '')}")
            continue
        lines.append(f"{name:<{width}}  {style.paint('cannot run here:', 'red')}")
        for problem in problems:
            lines.extend(wrap(f"{'':<{width}}  - {clean(problem)}", indent=width + 4))
    return _finish(lines, style)


def render_facts(facts: Mapping[str, Any], style: Style, *, empty: str = "done") -> list[str]:
    """A result dict as `key: value` lines (nested dicts as `key.sub`), in the order sent."""
    lines: list[str] = []

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, Mapping) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list):
            lines.append(f"{clean(prefix)}: {'; '.join(_value(v) for v in value) or NONE}")
        else:
            lines.append(f"{clean(prefix)}: {NONE if value is None else _value(value)}")

    walk("", facts)
    return _finish(lines, style) if lines else [empty]


# --- batch record -----------------------------------------------------------------------------
def render_batch(batch: Mapping[str, Any], style: Style) -> list[str]:
    """A batch: times, final state, phases (minutes; T and pH min/mean/max), reagents, alarms."""
    record = _dict(batch.get("record"))
    deg = style.deg_c
    final = batch.get("final_state")
    if final:
        ending = f"final {_state(final, style)}"
        if batch.get("unsaved"):
            ending += " (not journaled yet)"
    elif batch.get("running"):
        ending = style.paint("running", "green")
    else:
        # Open in the journal, not this daemon's: found interrupted at its next start.
        ending = "not finished (found interrupted at the next start)"
    end = "now" if batch.get("running") else _date_time(batch.get("end_ts"))
    lines = [
        f"batch {clean(batch.get('id', '?'))}  recipe {clean(batch.get('recipe', '?'))}  {ending}",
        f"  {_date_time(batch.get('start_ts'))} -> {end}"
        f"  recipe sha256 {clean(batch.get('recipe_sha256') or '?')[:12]}",
    ]
    if batch.get("detected_ts") is not None:
        lines.append(
            f"  last record {_date_time(batch.get('end_ts'))}; interruption found "
            f"{_date_time(batch.get('detected_ts'))}"
        )
    phases = _list(record.get("phases"))
    if phases:
        lines.append(
            f"  {'phase':<16} {'start':>6} {'end':>6}  "
            f"{'T min/mean/max ' + deg:<22} pH min/mean/max"
        )
    for phase in phases:
        phase = _dict(phase)
        temps = "/".join(_num(phase.get(k), 1) for k in ("t_min", "t_mean", "t_max"))
        phs = "/".join(_num(phase.get(k), 2) for k in ("ph_min", "ph_mean", "ph_max"))
        lines.append(
            f"  {clean(phase.get('name', '?')):<16} {_minutes(phase.get('start_s')):>6} "
            f"{_minutes(phase.get('end_s')):>6}  {temps:<22} {phs}"
        )
    if phases:
        lines.append("  (times in minutes from the start)")
    reagents = _dict(record.get("reagents_ml"))
    used = ", ".join(f"{clean(tag)} {_num(ml, 1)}" for tag, ml in reagents.items())
    lines.append(f"  reagents mL: {used or 'none'}")
    alarms = _list(record.get("alarms"))
    if alarms:
        # Wrapped, never cut, and a repeated alarm said once with its count: the last one
        # (often what ended the batch, an E-stop) must not fall off the screen's edge.
        seen: dict[str, list[object]] = {}
        for alarm in alarms:
            seen.setdefault(clean(_dict(alarm).get("id", "?")), []).append(
                _dict(alarm).get("raised_s")
            )
        raised = ", ".join(
            f"{name} at {_minutes(times[0])} min"
            + (f" ({len(times)} times, last at {_minutes(times[-1])})" if len(times) > 1 else "")
            for name, times in seen.items()
        )
        wrapped = wrap(f"  alarms: {raised}", indent=len("  alarms: "))
        lines.extend(
            line[: len("  alarms: ")] + style.paint(line[len("  alarms: ") :], "red")
            for line in wrapped
        )
    else:
        lines.append("  alarms: none")
    return _finish(lines, style)


def _minutes(seconds: object) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return NONE
    return _num(seconds / 60, 1)


# --- answers to commands ----------------------------------------------------------------------
_PACKML: Final = frozenset(
    {"reset", "start", "stop", "hold", "unhold", "suspend", "unsuspend", "abort", "clear",
     "complete"}
)  # fmt: skip


def _count(verb: str) -> Callable[[Mapping[str, Any], Style], list[str]]:
    def render(result: Mapping[str, Any], style: Style) -> list[str]:
        count = result.get("count")
        return [f"{verb} {clean(count)} alarm{'' if count == 1 else 's'}"]

    return render


def _held(result: Mapping[str, Any], style: Style) -> list[str]:
    held = [clean(item) for item in result.get("held") or [] if isinstance(item, str)]
    if not held:
        return []
    return wrap(
        f"still latched, its input unreadable: {', '.join(held)} (mend it, then ack and reset)"
    )


def _stopped(result: Mapping[str, Any]) -> list[str]:
    """What leaving manual stopped, said where it was asked (it was silent there)."""
    stopped = [clean(item) for item in result.get("stopped") or [] if isinstance(item, str)]
    return wrap(f"stopped: {'; '.join(stopped)}", indent=len("stopped: ")) if stopped else []


def _reset_leaves(result: Mapping[str, Any], style: Style) -> list[str]:
    left = [clean(item) for item in result.get("left") or [] if isinstance(item, str)]
    return [line for item in left for line in wrap(f"left: {item}", indent=len("left: "))]


def _jog(result: Mapping[str, Any], style: Style) -> list[str]:
    pump, ml, rate = (_value(result.get(k, "?")) for k in ("pump", "ml", "ml_min"))
    seconds = _num(result.get("seconds"), 1)  # an estimate: tenths are plenty
    lines = [fit(f"jog {pump}: {ml} mL at {rate} mL/min, about {seconds} s")]
    standing = result.get("standing")
    if isinstance(standing, str) and standing:
        lines += wrap(f"note: standing (it does not stop this pump): {clean(standing)}")
    return lines


def _heater(result: Mapping[str, Any], style: Style) -> list[str]:
    if not result.get("percent"):
        return ["heater off"]
    return [
        f"heater {_value(result.get('percent', '?'))}% for {_value(result.get('seconds', '?'))} s "
        "(interlocks still apply)"
    ]


def _drain(result: Mapping[str, Any], style: Style) -> list[str]:
    seconds = result.get("seconds")
    if not seconds:
        return ["drain closed"]
    return [f"drain open for {_value(seconds)} s (interlocks still apply; drain off closes it)"]


def _batch(result: Mapping[str, Any], style: Style) -> list[str]:
    batch = result.get("batch")
    return render_batch(batch, style) if isinstance(batch, dict) else ["no batch recorded yet"]


_RESULTS: Final[dict[str, Callable[[Mapping[str, Any], Style], list[str]]]] = {
    "status": render_status,
    "alarms": lambda r, s: render_alarms(r.get("alarms") or [], s),
    "ack": _count("acknowledged"),
    "reset_alarms": lambda r, s: _count("reset")(r, s) + _held(r, s) + _reset_leaves(r, s),
    "confirm": lambda r, s: [fit(f"confirmed: {clean(r.get('prompt', '?'))}")],
    "recipes": lambda r, s: render_recipes(r.get("recipes") or [], s),
    "manual": lambda r, s: [f"manual mode {'ON' if r.get('manual') else 'off'}", *_stopped(r)],
    "unitmode": lambda r, s: [f"unit mode {clean(r.get('unit_mode'))}", *_stopped(r)],
    "mode": lambda r, s: [
        f"mode {clean(r.get('authority'))}: "
        + ("fleet commands act" if r.get("authority") == "remote" else "only this console acts")
    ],
    "jog_pump": _jog,
    "heater": _heater,
    "drain": _drain,
    "cal_ph": render_cal_ph,
    "cal_ph_status": render_cal_ph_status,
    "cal_ph_clear": render_cal_ph_clear,
    "cal_pump": render_cal_pump,
    "log": lambda r, s: render_log(r.get("entries") or [], s),
    "batch": _batch,
    "commission": lambda r, s: _commission(r),
}


def _commission(result: Mapping[str, Any]) -> list[str]:
    report = result.get("report")
    if not isinstance(report, dict):
        return ["no report"]
    devices = [DeviceReport(**d) for d in report.get("devices", []) if isinstance(d, dict)]
    text = CommissionReport(unit=str(report.get("unit", "?")), devices=devices).as_text()
    # Wrapped, not cut: a problem's reason is at its end ("… (device_lost: port not open)").
    lines: list[str] = []
    for line in text.splitlines():
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        if body.startswith(("problem: ", "warning: ")):
            indent += len("problem: ")
        lines.extend(wrap(clean(line), indent=indent) if line else [""])
    return lines


def render_result(op: str, result: Mapping[str, Any], style: Style) -> list[str]:
    """The answer to one successful request, in words."""
    render = _RESULTS.get(op)
    if render is not None:
        return render(result, style)
    if op in _PACKML:
        return [fit(f"{op} accepted: now {clean(result.get('state', '?'))}")]
    return render_facts(result, style)


# --- help -------------------------------------------------------------------------------------
def render_help(topic: str | None, style: Style) -> list[str]:
    """The command list (fits a 24-line screen), or everything said of one command."""
    if topic is None:
        lines = ["commands (help <command> for more; # starts a comment):"]
        # a usage longer than its column still gets a space before its summary
        lines.extend(f"  {entry.usage:<25} {entry.summary}" for entry in HELP)
        return _finish(lines, style)
    entries = help_entries(topic)
    if not entries:
        return [fit(f"no command '{clean(topic)}'; type help for the list")]
    # Wrapped, never cut: this is where a tech reads the whole of it.
    said: list[str] = []
    for entry in entries:
        said.extend(wrap(f"{entry.usage}: {entry.summary}", indent=2))
        if entry.detail:
            said.extend(wrap(entry.detail, indent=2, first_indent=2))
    return [style.out(line) for line in said]
