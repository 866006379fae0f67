"""`unit-controller journal list|export` and `report`: batches out of the unit's journal.

Read-only on the journal, so they run beside the daemon; the report's plotting library is
imported only by `report`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unit_controller.cli.loading import config_from_args
from unit_controller.config import UnitConfig, resolve_state_dir
from unit_controller.daemon.dirs import resolve_directories
from unit_controller.journal.export import (
    ExportError,
    batch_export,
    batch_id_of,
    open_journal,
    trend_csv,
)
from unit_controller.journal.store import JOURNAL_FILE
from unit_controller.state_lock import held

EXIT_BAD_INPUT = 2


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="unit config, for its id and state directory (default $CONFIGURATION_DIRECTORY/"
        "unit.toml, else the simulator's)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the unit's state directory (default $STATE_DIRECTORY, else the config's, else "
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
    _where(report)


def _config(args: argparse.Namespace) -> UnitConfig | None:
    dirs = resolve_directories(config=args.config, state_dir=None, runtime_dir=None)
    return config_from_args(args, path=dirs.config_file, state_dir=None)


@contextlib.contextmanager
def _journal_of(args: argparse.Namespace) -> Iterator[tuple[UnitConfig, sqlite3.Connection]]:
    """The unit's config and its journal opened read-only (the path named when it is missing)."""
    config = _config(args)
    if config is None:
        raise _BadInput
    conn = open_journal(resolve_state_dir(config, args.state_dir) / JOURNAL_FILE)
    try:
        yield config, conn
    finally:
        conn.close()


@contextlib.contextmanager
def _export_of(args: argparse.Namespace, ref: str) -> Iterator[dict[str, Any]]:
    with _journal_of(args) as (config, conn):
        batch_id = batch_id_of(conn, ref)
        alive = held(resolve_state_dir(config, args.state_dir))
        yield batch_export(
            conn, batch_id, unit=config.unit.id, site=config.unit.site, run_alive=alive
        )


class _BadInput(Exception):
    """Already reported on stderr."""


def run_journal(args: argparse.Namespace) -> int:
    """`journal list` / `journal export`."""
    try:
        if args.journal_command == "list":
            return _list(args)
        with _export_of(args, args.batch) as export:
            text = (
                trend_csv(export)
                if args.format == "csv"
                else json.dumps(export, ensure_ascii=False, separators=(",", ":")) + "\n"
            )
        return _write(text, args.out)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _BadInput:
        return EXIT_BAD_INPUT


def _list(args: argparse.Namespace) -> int:
    from unit_controller.journal.db import read_batches

    with _journal_of(args) as (_, conn):
        path = Path(conn.execute("PRAGMA database_list").fetchone()[2])
        batches = read_batches(conn, args.n)
    if not batches:
        print(f"no batch in {path} yet")
        return 0
    print(f"{'id':>5}  {'recipe':<20} {'start (unit clock)':<19}  {'minutes':>7}  end")
    for batch in batches:
        start, end = batch["start_ts"], batch["end_ts"]
        minutes = "" if end is None else f"{(end - start) / 60000:.1f}"
        final = batch["final_state"] or "running (or not yet found interrupted)"
        recipe = batch["recipe"][:20]
        print(f"{batch['id']:>5}  {recipe:<20} {_local(start):<19}  {minutes:>7}  {final}")
    return 0


def _local(ts_ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts_ms / 1000))


def _write(text: str, out: Path | None) -> int:
    if out is None:
        sys.stdout.write(text)
        return 0
    if not out.parent.is_dir():
        print(f"error: cannot write {out}: no folder {out.parent}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {out} ({len(text.encode()):,} bytes)", file=sys.stderr)
    return 0


def run_report(args: argparse.Namespace) -> int:
    """`report [BATCH_ID|last] --out FILE.html [--png DIR]`."""
    # Imported here: only the report draws (matplotlib, itself imported only when it draws).
    from unit_controller.report import ReportError, write_report

    try:
        with _export_of(args, args.batch) as export:
            written = write_report(export, out=args.out, png_dir=args.png)
    except (ExportError, ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _BadInput:
        return EXIT_BAD_INPUT
    batch = export["batch"]
    print(f"wrote {written.html} (batch {batch['id']}, {batch['recipe']})")
    for png in written.pngs:
        print(f"wrote {png}")
    return 0
