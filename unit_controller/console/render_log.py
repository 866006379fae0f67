"""The journal at the console: events one line each, a numbered listing, and one entry whole.

Pure functions of the controller's entries (commands: source, command, args, ok, error,
result; events: ts, kind, text, data); never writes a control character the controller sent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from unit_controller.console.text import NONE, WIDTH, Style, clean, clock, fit, wrap

_KIND_COLOUR: Final = {"alarm": "red", "prompt": "yellow"}
_NUMBER: Final = 3  # columns for an entry's number in a listing (LOG_MAX is 500)


def _compact(value: object) -> str:
    """Args or a result in one short run: `recipe=leach`, `state=IDLE` (None values left out)."""
    if isinstance(value, Mapping):
        return " ".join(
            f"{clean(key)}={_compact(inner)}" for key, inner in value.items() if inner is not None
        )
    if isinstance(value, list | tuple):
        return ",".join(_compact(inner) for inner in value)
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return clean(value)


def is_command(entry: Mapping[str, Any]) -> bool:
    """True for a journal command row (who sent what with which args, and its result); a
    command *event* (the controller saying what a command did) has its own text instead."""
    return entry.get("kind") == "command" and "args" in entry and "source" in entry


def entry_text(entry: Mapping[str, Any]) -> str:
    """What an entry says, in one line: a command with its args and result, else its text."""
    if not is_command(entry):
        return clean(entry.get("text", ""))
    args = _compact(entry.get("args") or {})
    said = f"{clean(entry.get('command'))}{' ' + args if args else ''} by {clean(entry['source'])}"
    if entry.get("ok"):
        result = _compact(entry.get("result") or {})
        return f"{said}: ok{', ' + result if result else ''}"
    return f"{said}: refused: {clean(entry.get('error') or 'no reason given')}"


def render_event(event: Mapping[str, Any], style: Style) -> str:
    """One event (log entry or watch event) as `HH:MM:SS kind     text`, cut at 80 columns."""
    return _line(event, style, width=WIDTH)


def render_log(entries: Sequence[Mapping[str, Any]], style: Style) -> list[str]:
    """Journal entries, oldest first, one line each, numbered from the newest (1) up: the
    numbers `log show` takes, the same whatever the length of the listing."""
    if not entries:
        return ["the log is empty"]
    count = len(entries)
    width = WIDTH - _NUMBER - 1
    return [
        f"{count - index:>{_NUMBER}} {_line(entry, style, width=width)}"
        for index, entry in enumerate(entries)
    ]


def _line(entry: Mapping[str, Any], style: Style, *, width: int) -> str:
    kind = clean(entry.get("kind", "?"))
    text = fit(f"{clock(entry.get('ts'))} {kind:<8} {entry_text(entry)}", width)
    return style.out(style.paint(text, _KIND_COLOUR.get(kind)))


def render_entry(entry: Mapping[str, Any], number: int, style: Style) -> list[str]:
    """One entry whole: when, what, and every fact it carries, wrapped (nothing cut)."""
    ref = clean(entry.get("ref")) if entry.get("ref") else None
    head = f"entry {number}{f' ({ref})' if ref else ''}  {_date_time(entry.get('ts'))}"
    head += f"  {clean(entry.get('kind', '?'))}"
    lines = [head, *wrap(entry_text(entry), indent=2)]
    if is_command(entry):
        facts = [
            ("args", _compact(entry.get("args") or {}) or NONE),
            ("result", _compact(entry.get("result") or {}) or NONE),
        ]
        if entry.get("error"):
            facts.append(("error", clean(entry["error"])))
        if entry.get("detail"):  # the controller's own account of what the command did
            facts.append(("detail", clean(entry["detail"])))
    else:
        data = entry.get("data")
        if not isinstance(data, Mapping):  # a watch payload: facts beside ts, kind and text
            skip = {"ts", "kind", "text", "ref"}
            data = {key: value for key, value in entry.items() if key not in skip}
        facts = _flat("", data)
    for key, value in facts:
        lines.extend(wrap(f"  {key}: {value}", indent=4))
    return [style.out(line) for line in lines]


def _flat(prefix: str, value: object) -> list[tuple[str, str]]:
    if isinstance(value, Mapping) and value:
        out: list[tuple[str, str]] = []
        for key, inner in value.items():
            out.extend(_flat(f"{prefix}.{clean(key)}" if prefix else clean(key), inner))
        return out
    if isinstance(value, Mapping) or value is None or value == []:
        return [(prefix, NONE)]
    if isinstance(value, list | tuple):
        return [(prefix, "; ".join(_compact(inner) for inner in value))]
    return [(prefix, _compact(value))]


def _date_time(ts_ms: object) -> str:
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int | float) or not math.isfinite(ts_ms):
        return NONE
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts_ms / 1000))
    except (OverflowError, OSError, ValueError):
        return NONE
