"""A simulated batch journaled like a real one, then exported and reported from the command line,
as an engineer would after `sim`: the trend as CSV, the record as JSON, the HTML report."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from unit_controller.cli import main
from unit_controller.state_lock import hold_state_dir


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("unit-state")
    assert main(["sim", "--recipe", "smoke", "--fast", "--state-dir", str(state)]) == 0
    return state


def test_sim_journals_its_batch_in_the_state_directory(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (state / "journal.sqlite3").is_file()
    assert main(["journal", "list", "--state-dir", str(state)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[1].split()[:2] == ["1", "smoke"]
    assert listing[1].endswith("COMPLETE")


def test_export_gives_the_trend_as_csv_and_the_record_as_json(
    state: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["journal", "export", "--state-dir", str(state), "--format", "csv"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    columns = header.split(",")
    assert columns[:8] == [
        "ts", "state", "phase", "temperature_c", "temperature_sp_c", "ph", "ph_sp", "heater_duty"
    ]  # fmt: skip
    assert "reagent_p204_ml" in columns
    # A row a second of a batch of about 28 simulated minutes.
    assert 1500 <= len(rows) <= 1800
    out = tmp_path / "batch.json"
    assert main(["journal", "export", "--state-dir", str(state), "--batch", "1",
                 "--out", str(out)]) == 0  # fmt: skip
    export = json.loads(out.read_text())
    assert export["batch"]["final_state"] == "COMPLETE"
    assert export["batch"]["reagents_ml"]["P-204"] == pytest.approx(300.0, abs=0.5)
    assert [p["name"] for p in export["phases"]][:2] == ["fill", "heat"]
    assert len(export["trend"]["rows"]) == len(rows)


def test_report_writes_a_self_contained_page_with_its_plots(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "last", "--state-dir", str(state), "--out", str(out),
                 "--png", str(tmp_path / "png")]) == 0  # fmt: skip
    page = out.read_text()
    assert page.count("<svg") >= 4
    assert "smoke" in page
    assert 'src="http' not in page
    assert 'href="http' not in page
    assert len(list((tmp_path / "png").glob("*.png"))) >= 4
    assert "wrote" in capsys.readouterr().out


def test_report_draws_from_an_export_copied_off_a_unit(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A unit's release has no matplotlib: export there, draw the same page elsewhere.
    exported = tmp_path / "b1.json"
    assert main(["journal", "export", "--state-dir", str(state), "--out", str(exported)]) == 0
    from_journal, from_export = tmp_path / "j.html", tmp_path / "e.html"
    assert main(["report", "--state-dir", str(state), "--out", str(from_journal)]) == 0
    # No journal anywhere near: only the file.
    assert main(["report", "--export", str(exported), "--state-dir", str(tmp_path / "none"),
                 "--out", str(from_export)]) == 0  # fmt: skip
    assert from_export.read_text() == from_journal.read_text()
    capsys.readouterr()

    csv = tmp_path / "b1.csv"
    csv.write_text("ts,state\n1,EXECUTE\n")
    other = tmp_path / "other.json"
    other.write_text('{"format": "someone-else/1"}')
    for argv, says in (
        (["--export", str(csv)], "is not JSON (line 1, column 1): a CSV export holds only"),
        (["--export", str(other)], "is not a batch export of this release"),
        (["--export", str(tmp_path / "gone.json")], "cannot read the export"),
        (["7", "--export", str(exported)], "batch '7' and --export"),
    ):
        out = tmp_path / "x.html"
        assert main(["report", *argv, "--out", str(out)]) == 2, argv
        assert says in capsys.readouterr().err, argv
        assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["journal", "export", "--batch", "99"], "no batch 99 in the journal (batches 1 to 1)"),
        (["journal", "export", "--batch", "soon"], "give a batch number or 'last'"),
        (["report", "42", "--out", "x.html"], "no batch 42"),
        (["journal", "export", "--out", "/no/such/dir/b.csv"], "no folder /no/such/dir"),
    ],
)
def test_bad_references_are_named_and_write_nothing(
    state: Path, argv: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*argv, "--state-dir", str(state)]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_a_unit_without_a_journal_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "export", "--state-dir", str(tmp_path)]) == 2
    assert f"no journal at {tmp_path / 'journal.sqlite3'}" in capsys.readouterr().err


def test_sim_refuses_a_state_directory_another_run_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with hold_state_dir(tmp_path):
        code = main(["sim", "--recipe", "smoke", "--fast", "--state-dir", str(tmp_path)])
    assert code == 2
    captured = capsys.readouterr()
    said = f"another unit-controller (daemon or sim, pid {os.getpid()}) is running on {tmp_path}"
    assert said in captured.err
    assert "simulating" not in captured.out  # said before anything runs
    assert not (tmp_path / "journal.sqlite3").exists()


def test_export_writes_through_a_symlink_and_refuses_a_fifo(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "b1.csv").write_text("old")
    link = tmp_path / "latest.csv"
    link.symlink_to("exports/b1.csv")
    assert main(["journal", "export", "--state-dir", str(state), "--format", "csv",
                 "--out", str(link)]) == 0  # fmt: skip
    assert link.is_symlink()
    assert (tmp_path / "exports" / "b1.csv").read_text().startswith("ts,state,phase")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert main(["journal", "export", "--state-dir", str(state), "--out", str(fifo)]) == 2
    assert f"cannot write {fifo}: it is not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_export_to_a_full_stdout_says_so_without_a_traceback(state: Path) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "unit_controller.cli", "journal", "export",
             "--state-dir", str(state), "--format", "csv"],
            stdout=full, stderr=subprocess.PIPE, text=True, check=False, timeout=120,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
    assert done.returncode == 2
    assert "cannot write the export: No space left on device" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("argv", [["journal", "list"], ["journal", "export", "--format", "csv"]])
def test_a_reader_that_stopped_reading_gets_no_traceback(state: Path, argv: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # `... | true`: nobody reads what is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "unit_controller.cli", *argv, "--state-dir", str(state)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_only_a_stdout_whose_reader_went_is_taken_as_a_reader_that_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from unit_controller.cli.main import _stdout_gone

    read, write = os.pipe()
    with os.fdopen(write, "w") as out:
        monkeypatch.setattr(sys, "stdout", out)
        assert not _stdout_gone()  # the reader is there: a broken pipe is elsewhere
        os.close(read)
        assert _stdout_gone()
