"""The arguments of `unit-controller journal list|export` and `report` (records.py carries them
out); nothing of the journal, the config or the report is imported to build them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="unit config, for its id and state directory (default $CONFIGURATION_DIRECTORY/"
        "unit.toml, else /etc/unit-controller/unit.toml, else the simulator's)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the unit's state directory (default $STATE_DIRECTORY, else the config's, else "
        "/var/lib/unit-controller for the installed config, else "
        "$XDG_STATE_HOME/unit-controller/<unit id>)",
    )
    parser.add_argument("--unit-id", metavar="ID", default=None, help="the unit's id")
    parser.set_defaults(mqtt=None)


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 10_000:
        raise argparse.ArgumentTypeError(f"a number of batches from 1 to 10000, got {text!r}")
    return n


def add_record_commands(sub: Any) -> None:
    """`journal` (list, export) and `report`."""
    journal = sub.add_parser(
        "journal",
        help="list or export the batches in the unit's journal",
        description="Batches out of the unit's journal (read-only: safe beside the daemon).",
    )
    verbs = journal.add_subparsers(dest="journal_command", required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="the last batches, newest first")
    listing.add_argument("-n", type=_count, default=20, help="how many (default 20)")
    _where(listing)
    export = verbs.add_parser(
        "export",
        help="one batch as JSON (record, phases, events, trend) or its trend as CSV",
        description="JSON: the batch record, phases, confirmations, events, commands and the "
        "trend; CSV: the trend alone, a row a second. Times are epoch ms on the unit's clock.",
    )
    export.add_argument(
        "--batch", default="last", metavar="ID|last", help="which batch (default: last)"
    )
    export.add_argument("--format", choices=["json", "csv"], default="json")
    export.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="write here (default: stdout)"
    )
    _where(export)
    report = sub.add_parser(
        "report",
        help="a self-contained HTML report of one batch, with its plots",
        description="Write an HTML batch report (no network needed to view it): recipe and "
        "hash, confirmations, phases, plots of temperature, pH, heater duty and reagents "
        "against time, the summary and the alarms.",
    )
    report.add_argument("batch", nargs="?", default="last", metavar="BATCH_ID|last")
    report.add_argument("--out", type=Path, required=True, metavar="FILE.html")
    report.add_argument(
        "--png", type=Path, default=None, metavar="DIR", help="also write each plot as a PNG here"
    )
    report.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="FILE.json",
        help="draw from a `journal export --format json` file instead of a journal (a unit's "
        "release has no matplotlib: export there, draw here)",
    )
    _where(report)
