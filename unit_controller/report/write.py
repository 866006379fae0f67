"""write_report: a batch export made into the HTML report, and its plots as PNG on request.

Runs off the unit (matplotlib is the `report` extra): imports matplotlib only when called, so
that importing this package costs nothing; never leaves a half-written file at `out`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from unit_controller.report.export import ReportError, read_export
from unit_controller.report.page import render_page
from unit_controller.report.times import TimeAxis
from unit_controller.whole_file import write_whole

NEEDS_MATPLOTLIB = (
    "the report needs matplotlib: pip install 'unit-controller[report]'. On a unit (its "
    "release has no pip, and is often offline): `unit-controller journal export --batch ID "
    "--out bID.json` there, then `unit-controller report --export bID.json --out report.html` "
    "on a machine with the extra"
)


@dataclass(frozen=True)
class ReportWritten:
    """The files a report wrote: the page, and the PNG of each plot (empty without png_dir)."""

    html: Path
    pngs: tuple[Path, ...]


def write_report(
    export: Mapping[str, Any],
    *,
    out: Path,
    png_dir: Path | None = None,
    tz: tzinfo | None = None,
) -> ReportWritten:
    """Write the self-contained HTML report of a batch export (`journal export --format json`)
    to `out`, and with `png_dir` each plot as a PNG there (the folder is made).

    Times show as local date-times in `tz` (default: this machine's zone). Raises ReportError
    naming the problem for an export it cannot use, a path it cannot write, or no matplotlib.
    """
    batch = read_export(export)
    out = Path(out)
    if out.is_dir():
        raise ReportError(f"cannot write the report to {out}: it is a folder")
    if not out.parent.is_dir():
        raise ReportError(f"cannot write the report to {out}: no folder {out.parent}")
    try:
        importlib.import_module("matplotlib")
    except ImportError as exc:
        raise ReportError(NEEDS_MATPLOTLIB) from exc
    from unit_controller.report.figures import draw_plots  # here: it imports matplotlib

    if png_dir is not None:
        png_dir = Path(png_dir)
        try:
            png_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(f"cannot make the PNG folder {png_dir}: {_why(exc)}") from exc
    axis = TimeAxis.for_span(start_ts=batch.start_ts, last_ts=batch.last_ts, tz=tz)
    plots = draw_plots(batch, axis, png=png_dir is not None)
    pngs: list[Path] = []
    if png_dir is not None:
        for plot in plots:
            if plot.png is not None:
                path = png_dir / f"batch-{batch.batch_id}-{plot.key}.png"
                _write(path, plot.png)
                pngs.append(path)
    # The page last: an error (exit 2) means no new report page, whatever else was asked.
    _write(out, render_page(batch, axis, plots).encode("utf-8"))
    return ReportWritten(html=out, pngs=tuple(pngs))


def _write(path: Path, data: bytes) -> None:
    """Write a whole file or none: a reader never sees half a report."""
    try:
        write_whole(path, data)
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {_why(exc)}") from exc


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
