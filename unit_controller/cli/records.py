"""`unit-controller journal list|export` and `report`: batches out of the unit's journal.

Read-only on the journal, so they run beside the daemon; the report's plotting library is
imported only by `report`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unit_controller.cli.exits import EXIT_BAD_INPUT
from unit_controller.cli.loading import config_from_args
from unit_controller.cli.site import site_config, unit_state_dir
from unit_controller.config import UnitConfig
from unit_controller.daemon.dirs import resolve_directories
from unit_controller.journal.export import (
    FORMAT,
    ExportError,
    batch_export,
    batch_id_of,
    open_journal,
    trend_csv,
)
from unit_controller.journal.store import JOURNAL_FILE
from unit_controller.state_lock import held
from unit_controller.whole_file import write_whole


def _config_file(args: argparse.Namespace) -> Path:
    # On the unit: its installed config (a root shell has no $CONFIGURATION_DIRECTORY).
    config = site_config(args.config)
    return resolve_directories(config=config, state_dir=None, runtime_dir=None).config_file


def _config(args: argparse.Namespace) -> UnitConfig | None:
    return config_from_args(args, path=_config_file(args), state_dir=None)


def _state_dir(args: argparse.Namespace, config: UnitConfig) -> Path:
    return unit_state_dir(config, args.state_dir, _config_file(args))


@contextlib.contextmanager
def _journal_of(args: argparse.Namespace) -> Iterator[tuple[UnitConfig, sqlite3.Connection]]:
    """The unit's config and its journal opened read-only (the path named when it is missing)."""
    config = _config(args)
    if config is None:
        raise _BadInput
    conn = open_journal(_state_dir(args, config) / JOURNAL_FILE)
    try:
        yield config, conn
    finally:
        conn.close()


@contextlib.contextmanager
def _export_of(args: argparse.Namespace, ref: str) -> Iterator[dict[str, Any]]:
    with _journal_of(args) as (config, conn):
        batch_id = batch_id_of(conn, ref)
        alive = held(_state_dir(args, config))
        yield batch_export(
            conn, batch_id, unit=config.unit.id, site=config.unit.site, run_alive=alive
        )


def _read_export(path: Path) -> dict[str, Any]:
    """A JSON export written by `journal export` (on a unit, whose release has no matplotlib)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"cannot read the export {path}: {exc}") from exc
    try:
        export = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(
            f"{path} is not JSON (line {exc.lineno}, column {exc.colno}): a CSV export holds "
            "only the trend; the report needs `journal export --format json`"
        ) from exc
    found = export.get("format") if isinstance(export, dict) else None
    if not isinstance(export, dict) or found != FORMAT:
        raise ExportError(
            f"{path} is not a batch export of this release ({FORMAT!r}; it says {found!r})"
        )
    return dict(export)


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
        return _to_stdout(text)
    if not out.parent.is_dir():
        print(f"error: cannot write {out}: no folder {out.parent}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        # Whole or not at all: a failed export leaves the file that was there.
        write_whole(out, text.encode("utf-8"))
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {out} ({len(text.encode()):,} bytes)", file=sys.stderr)
    return 0


def _to_stdout(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # A reader that stopped early (`| head`): not an error of ours, but stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit's own flush does not complain
        os.close(devnull)
        return 0
    except OSError as exc:
        print(f"error: cannot write the export: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def run_report(args: argparse.Namespace) -> int:
    """`report [BATCH_ID|last] --out FILE.html [--png DIR]`."""
    # Imported here: only the report draws (matplotlib, itself imported only when it draws).
    from unit_controller.report import ReportError, write_report

    try:
        if args.export is not None:
            if args.batch != "last":
                raise ExportError(
                    f"batch {args.batch!r} and --export {args.export}: the export holds one batch"
                )
            export = _read_export(args.export)
            written = write_report(export, out=args.out, png_dir=args.png)
        else:
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
