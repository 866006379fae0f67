"""The arguments of `unit-controller rig` (sim/rig.py carries it out).

Imports nothing of MQTT or the simulator: building the command line stays cheap.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

MAX_UNITS = 5000  # sim/rig.py checks it again
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,30}")


def _units(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of units: {text!r}") from None
    if not 1 <= value <= MAX_UNITS:
        raise argparse.ArgumentTypeError(f"units must be 1..{MAX_UNITS}, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"seconds must be above 0, got {text}")
    return value


def _prefix(text: str) -> str:
    if not _PREFIX.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"prefix {text!r}: letters, digits, '-' and '_' (up to 31), starting with a letter "
            "or digit"
        )
    return text


def add_rig_command(sub: Any) -> None:
    """Add `rig` to the subcommands `sub` (argparse's subparsers)."""
    rig: argparse.ArgumentParser = sub.add_parser(
        "rig",
        help="a fleet test rig: many simulated units in one process, into one broker",
        description="Run N simulated units, each with its own plant, controller and MQTT link "
        "(client, Will, outbox, commands), on one scan tick in one process: a load for "
        "brokers, dashboards and `unit-controller fleet`. Units are <prefix>0001…; each "
        "starts the recipe (unless --idle) and runs until Ctrl-C or --seconds.",
    )
    rig.add_argument("--units", type=_units, required=True, metavar="N", help="how many units")
    rig.add_argument(
        "--mqtt",
        metavar="URL",
        default=None,
        help="the broker: mqtt://host[:port] or mqtts://… (overrides [mqtt] url of --config)",
    )
    rig.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="the units' config (default: the simulator's example); its [mqtt] settings, TLS "
        "included, apply to every unit, its unit id does not",
    )
    rig.add_argument(
        "--prefix", type=_prefix, default="rig-", help="unit ids' prefix (default rig-)"
    )
    which = rig.add_mutually_exclusive_group()
    which.add_argument(
        "--recipe",
        default="coprecipitation",
        help="the batch each unit starts (default coprecipitation)",
    )
    which.add_argument("--idle", action="store_true", help="start no batch: the units stay Stopped")
    rig.add_argument(
        "--seconds", type=_seconds, default=None, metavar="S", help="stop after S seconds"
    )
    rig.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the units' outboxes, one folder each (default: a temporary folder, removed at "
        "the end)",
    )
