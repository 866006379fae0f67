"""Names of the telemetry metrics that vary with the unit's wiring (a pump's tag in a key).

Plain identifiers (`[a-z][a-z0-9_]*`) so that Home Assistant, Node-RED and Telegraf templates
read them without bracket access; kept apart so the config can check them without MQTT.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


def pump_ident(tag: str) -> str:
    """A pump's tag as metric names carry it: `P-201` → `p201`, `P-202A` → `p202a`."""
    return re.sub(r"[^a-z0-9]", "", tag.lower())


def pump_key_clashes(tags: Iterable[str]) -> list[str]:
    """Problems where two pump tags would name the same telemetry metrics."""
    seen: dict[str, str] = {}
    problems = []
    for tag in sorted(tags):
        ident = pump_ident(tag)
        if ident in seen:
            problems.append(
                f"pumps {seen[ident]!r} and {tag!r} would both be 'pump_{ident}_…' in telemetry: "
                "rename one"
            )
        else:
            seen[ident] = tag
    return problems
