"""The hardware-bench subcommands' arguments: `emulate` (instruments on ptys) and `commission`
(check a new or repaired unit's instruments)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_bench_commands(sub: Any, *, speed: Any, fault: Any) -> None:
    """Add `emulate` and `commission` to the subcommands `sub` (argparse's subparsers)."""
    emulate: argparse.ArgumentParser = sub.add_parser(
        "emulate",
        help="every instrument of a unit as an emulated device on its own pty, until SIGTERM",
        description="Start the EZO circuits and the relay board of the config's unit as "
        "emulators on pseudo-terminals, backed by the plant simulator, print their ports and a "
        "generated unit config that points at them, and run until SIGTERM. Point mbpoll, a "
        "vendor's sample code or `unit-controller run --config <that config>` at them.",
    )
    emulate.add_argument(
        "--config", type=Path, default=None, help="the unit to emulate (default: the example)"
    )
    emulate.add_argument(
        "--speed",
        type=speed,
        default=1.0,
        metavar="X",
        help="plant and device time at X times real time (default 1: other tools talk at "
        "real speed)",
    )
    emulate.add_argument(
        "--fault",
        type=fault,
        action="append",
        default=[],
        metavar="NAME[:TAG]@MIN",
        help="inject a fault minutes after start (repeatable), e.g. device_silent:AT-101@1",
    )
    emulate.add_argument(
        "--json", action="store_true", help='print {"ports": {...}, "config": PATH} as JSON'
    )

    commission = sub.add_parser(
        "commission",
        help="find and check every instrument of a new or repaired unit; exit 3 on a problem",
        description="Find every configured device on its port, read its identity, firmware, "
        "supply voltage and restart reason, check calibrations and their age, read every level "
        "switch and the E-stop; with --outputs, pulse each relay and pump briefly, confirmed "
        "step by step. Exit 0 when everything is found and healthy, 3 otherwise. The daemon "
        "must not be running (it holds the ports): the console's `commission` asks it instead.",
    )
    commission.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the unit's config (default /etc/unit-controller/unit.toml where installed)",
    )
    commission.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the unit's state directory, for its journal's calibrations (default as the "
        "daemon finds it: $STATE_DIRECTORY, the config's, else /var/lib/unit-controller)",
    )
    commission.add_argument(
        "--outputs",
        action="store_true",
        help="also pulse each relay and pump, asking before each and whether it worked",
    )
    commission.add_argument("--json", action="store_true", help="print the report as JSON")
