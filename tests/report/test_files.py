"""What write_report leaves on disk, what it refuses, and where matplotlib may be imported."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from tests.report import exports
from tests.report.conftest import Written
from unit_controller.report import ReportError, write_report

Report = Callable[[str], Written]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_png_dir_is_made_and_holds_a_valid_png_per_plot(report: Report) -> None:
    files = report("multi_hour").files
    names = [p.name for p in files.pngs]
    keys = ("temperature", "ph", "ph_near", "heater_duty", "reagents")
    assert names == [f"batch-3-{key}.png" for key in keys]
    for path in files.pngs:
        assert path.parent.name == "plots"  # png/plots/ did not exist before
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 10_000


def test_plots_without_data_write_no_png(report: Report) -> None:
    names = [p.name for p in report("heating_only").files.pngs]
    assert names == ["batch-3-temperature.png", "batch-3-heater_duty.png"]


def test_without_png_dir_only_the_page_is_written(tmp_path: Path) -> None:
    written = write_report(exports.heating_only(), out=tmp_path / "r.html", tz=UTC)
    assert written.pngs == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_the_same_export_gives_the_same_page(tmp_path: Path) -> None:
    export = exports.heating_only()
    first = write_report(export, out=tmp_path / "a.html", tz=UTC).html.read_bytes()
    second = write_report(export, out=tmp_path / "b.html", tz=UTC).html.read_bytes()
    assert first == second


def test_a_ten_hour_batch_stays_a_small_page(tmp_path: Path) -> None:
    export = exports.multi_hour(co_precipitate_min=560.0)
    assert len(export["trend"]["rows"]) > 35_000  # a row a second for ten hours
    written = write_report(export, out=tmp_path / "r.html", tz=UTC)
    size = written.html.stat().st_size
    assert size < 3_000_000, size
    html = written.html.read_text(encoding="utf-8")
    assert "35845 trend rows; each curve is drawn from at most 4000 points" in html


# --- what it refuses -------------------------------------------------------------------------


def _without(path: str) -> dict[str, Any]:
    export = exports.heating_only()
    *parents, key = path.split(".")
    where = export
    for parent in parents:
        where = where[parent]
    del where[key]
    return export


def _with(path: str, value: Any) -> dict[str, Any]:
    export = exports.heating_only()
    *parents, key = path.split(".")
    where = export
    for parent in parents:
        where = where[parent]
    where[key] = value
    return export


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ([1, 2], "the export is a list, not a JSON object"),
        (_without("format"), "format is None: this report reads 'unit-controller/batch-export/1'"),
        (
            _with("format", "unit-controller/batch-export/2"),
            "format is 'unit-controller/batch-export/2'",
        ),
        (_with("clock", "utc"), "clock: 'utc': this report reads times on the 'unit' clock"),
        (_without("batch.recipe_sha256"), "batch.recipe_sha256: missing"),
        (_without("trend"), "trend: missing"),
        (_with("batch.start_ts", "yesterday"), "batch.start_ts: 'yesterday' is not an integer"),
        (_with("batch.reagents_ml", {"P-201": "a lot"}), "batch.reagents_ml.P-201: 'a lot'"),
        (_with("phases", {"heat": 1}), "phases: not a list"),
        (_with("events", [{"ts": 1, "kind": "x"}]), "events[0].text: missing"),
        (
            _with(
                "commands", [{"ts": 1, "source": "s", "command": "c", "ok": "yes", "error": None}]
            ),
            "commands[0].ok: 'yes' is not true or false",
        ),
        (_with("trend.columns", ["state", "phase"]), "trend.columns: no 'ts' column"),
        (_with("trend.rows", [[1, 2]]), "trend.rows[0]: 2 values for"),
        (_with("pumps", {"P-201": {"key": "p201"}}), "pumps.P-201.reagent: missing"),
    ],
)
def test_an_export_it_cannot_use_is_refused_naming_the_problem(
    export: Any, message: str, out: Path
) -> None:
    with pytest.raises(ReportError) as caught:
        write_report(export, out=out)
    assert message in str(caught.value)
    assert not out.exists()


def test_a_trend_value_that_is_not_a_number_is_named_by_row_and_column(out: Path) -> None:
    export = exports.heating_only()
    columns = export["trend"]["columns"]
    export["trend"]["rows"][5][columns.index("temperature_c")] = "hot"
    with pytest.raises(ReportError, match=r"trend.rows\[5\].temperature_c: 'hot' is not a number"):
        write_report(export, out=out)


def test_a_path_it_cannot_write_is_refused_naming_it(tmp_path: Path) -> None:
    export = exports.heating_only()
    with pytest.raises(ReportError, match=r"no folder .*missing"):
        write_report(export, out=tmp_path / "missing" / "r.html")
    with pytest.raises(ReportError, match="it is a folder"):
        write_report(export, out=tmp_path)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ReportError, match=r"cannot make the PNG folder .*file/png"):
        write_report(export, out=tmp_path / "r.html", png_dir=a_file / "png")
    assert not (tmp_path / "r.html").exists()  # an error means no page, not half the request


def test_a_symlink_is_written_through_and_a_fifo_or_device_is_refused(tmp_path: Path) -> None:
    export = exports.heating_only()
    site = tmp_path / "site"
    site.mkdir()
    (site / "r.html").write_text("old")
    link = tmp_path / "latest.html"
    link.symlink_to("site/r.html")
    write_report(export, out=link, tz=UTC)
    assert link.is_symlink()  # still the link, and what it points to is the new report
    assert (site / "r.html").read_text().startswith("<!DOCTYPE html>")
    # A FIFO stands for a device node too: the suite never aims at /dev (it may run as root).
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fifo_link = tmp_path / "fifo-link"
    fifo_link.symlink_to(fifo)
    for path in (fifo, fifo_link):
        with pytest.raises(ReportError, match="it is not a regular file"):
            write_report(export, out=path, tz=UTC)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert fifo_link.is_symlink()


def test_without_matplotlib_it_says_how_to_install_it_or_draw_elsewhere(
    monkeypatch: pytest.MonkeyPatch, out: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(ReportError) as caught:
        write_report(exports.heating_only(), out=out)
    said = str(caught.value)
    assert said.startswith("the report needs matplotlib: pip install 'unit-controller[report]'.")
    # A unit's release has no pip: export there, draw on a machine with the extra.
    assert "journal export --batch ID --out bID.json" in said
    assert "report --export bID.json --out report.html" in said
    assert not out.exists()


def test_the_daemon_and_the_cli_never_import_matplotlib() -> None:
    code = (
        "import sys, unit_controller.cli, unit_controller.daemon.daemon, unit_controller.report;"
        " loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib');"
        " assert not loaded, loaded"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
