"""JSON from outside, parsed once with limits: size, nesting depth, number length, duplicates.

Every external JSON (MQTT commands, control-socket lines) comes through `parse_json`, so a
hostile document becomes a `JsonRefused` with a reason, never a RecursionError or a ValueError
deep in a service loop.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

MAX_DEPTH: Final = 16
# Python refuses to turn longer digit strings into int (CVE-2020-10735); refuse them first.
MAX_NUMBER_CHARS: Final = 64


class JsonRefused(ValueError):
    """The document is not usable JSON; the message says why, in one line for people."""


class _Bad(Exception):
    """What is wrong, as a phrase that follows the document's noun ("has …", "contains …")."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (strings skipped), without parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON lets a key repeat and the last one wins; a sender who means two values gets told.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            shown = repr(key) if len(key) <= 40 else repr(key[:40]) + "…"
            raise _Bad(f"has the key {shown} more than once")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise _Bad(f"contains {name}, which is not JSON")


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Bad(f"has a number {len(text)} characters long; at most {MAX_NUMBER_CHARS}")
    if not any(c in text for c in ".eE"):
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise _Bad(f"has the number {text}, too large to be one")
    return value


def parse_json(
    data: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH, what: str = "payload"
) -> object:
    """The JSON value in `data`; raises JsonRefused naming the problem (`what` is the noun)."""
    size = len(data)
    if size > max_bytes:
        raise JsonRefused(f"{what} is {size} bytes; at most {max_bytes} allowed")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRefused(f"{what} is not UTF-8 (byte {exc.start}: {exc.reason})") from None
    else:
        text = data
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JsonRefused(f"{what} is nested {depth} levels deep; at most {max_depth} allowed")
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_reject_constant,
            parse_int=_number,
            parse_float=_number,
        )
    except _Bad as exc:
        raise JsonRefused(f"{what} {exc}") from None
    except json.JSONDecodeError as exc:
        raise JsonRefused(
            f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:  # belt and braces: the limits should catch these
        raise JsonRefused(f"{what} is not usable: {exc}") from None
