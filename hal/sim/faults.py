"""Fault specifications: which fault, on which device, at what simulated time.

Parsing only; each backend decides what a fault does to its devices.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_FAULT = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)(?::(?P<tag>[A-Za-z0-9-]+))?@(?P<minutes>[^@]+)$")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault `name` (optionally on device `tag`) injected `at_s` simulated seconds after start."""

    name: str
    tag: str | None
    at_s: float

    def __str__(self) -> str:
        target = f":{self.tag}" if self.tag else ""
        return f"{self.name}{target}@{self.at_s / 60:g}"


def parse_fault(text: str) -> FaultSpec:
    """Parse `NAME[:TAG]@MINUTES`; raises ValueError that says what is wrong."""
    match = _FAULT.match(text.strip())
    if match is None:
        raise ValueError(f"fault {text!r} is not NAME[:TAG]@MINUTES (e.g. ssr_welded@12)")
    try:
        minutes = float(match["minutes"])
    except ValueError:
        raise ValueError(f"fault {text!r}: minutes {match['minutes']!r} is not a number") from None
    if not math.isfinite(minutes) or minutes < 0:
        raise ValueError(f"fault {text!r}: minutes must be a finite number >= 0")
    return FaultSpec(name=match["name"], tag=match["tag"], at_s=minutes * 60.0)
