"""The arguments of `unit-controller fleet` (fleet/watch.py carries it out).

Imports nothing of MQTT: building the command line stays cheap.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from unit_controller.cli.broker_options import add_broker_arguments
from unit_controller.mqtt.address import DEFAULT_ROOT


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"seconds must be 0.05..3600, got {text}")
    return value


def add_fleet_command(sub: Any) -> None:
    """Add `fleet` to the subcommands `sub` (argparse's subparsers)."""
    fleet: argparse.ArgumentParser = sub.add_parser(
        "fleet",
        help="a live table of every unit on a broker (or one snapshot with --once)",
        description="Subscribe to the units under a topic root and show each one: online or "
        "not (its retained status), PackML state, phase and its progress, temperature, pH, "
        "active alarms by priority, unit mode and authority, age of its last telemetry and "
        "outbox backlog; units with alarms first. Redrawn every second until Ctrl-C.",
    )
    fleet.add_argument(
        "--mqtt", metavar="URL", required=True, help="the broker: mqtt://host[:port] or mqtts://…"
    )
    fleet.add_argument(
        "--root", default=DEFAULT_ROOT, help=f"the units' topic root (default {DEFAULT_ROOT})"
    )
    fleet.add_argument(
        "--once",
        action="store_true",
        help="print one snapshot and exit (the retained state "
        "and each online unit's next telemetry)",
    )
    fleet.add_argument(
        "--json",
        action="store_true",
        help="JSON: a list with one object per unit (unit, online, state, phase, alarms, "
        "age_s, …); live, one list a line",
    )
    fleet.add_argument(
        "--wait-s",
        type=_seconds,
        default=4.0,
        metavar="S",
        help="--once: wait at most S seconds for the online units' telemetry (default 4: a "
        "unit with a 1 s period that says nothing through it is stale)",
    )
    fleet.add_argument(
        "--refresh-s", type=_seconds, default=1.0, metavar="S", help="live: redraw every S (1)"
    )
    add_broker_arguments(fleet)
    fleet.add_argument(
        "--stats-file",
        type=Path,
        help="live: write lag (receipt - telemetry ts) and message counts here at each redraw",
    )
