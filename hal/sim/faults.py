"""Fault specifications: which fault, on which device, at what simulated time.

Parsing only; each backend decides what a fault does to its devices.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# How long a silent or unplugged device stays away before it comes back (simulated seconds).
DEVICE_AWAY_S = 120.0
# Faults of the serial line itself (serial backend), on top of the simulated unit's own faults.
SERIAL_FAULTS: dict[str, str] = {
    "serial_garbage": "the device answers with garbage for a while",
    "device_silent": f"the device stops answering for {DEVICE_AWAY_S:g} s",
    "device_unplugged": f"the device's USB adapter is unplugged for {DEVICE_AWAY_S:g} s",
}

_MINUTES = re.compile(r"\d+(?:\.\d*)?|\.\d+")
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
    if _MINUTES.fullmatch(match["minutes"].strip()) is None:
        # float() also takes "1_0" (10) and "1e1": a typo must not pass as a time.
        raise ValueError(
            f"fault {text!r}: minutes {match['minutes']!r} is not a plain number (e.g. 12 or 7.5)"
        )
    return FaultSpec(name=match["name"], tag=match["tag"], at_s=minutes * 60.0)
