"""A batch report written once per scenario (tests/report/exports.py) and shared by the tests
of this folder, each in its own folder under pytest's temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from tests.report import exports
from unit_controller.report import ReportWritten, write_report

SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "multi_hour": exports.multi_hour,
    "heating_only": exports.heating_only,
    "interrupted": exports.interrupted,
    "running": exports.running,
    "hostile": exports.hostile,
}
WITH_PNG = {"multi_hour", "heating_only"}  # drawing PNGs costs time: only where tests look


@dataclass(frozen=True)
class Written:
    """A report as written: what write_report said, and the page's text."""

    files: ReportWritten
    html: str


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Written]:
    """report(name): the scenario's report, written on first use (UTC times); with its PNGs
    for the scenarios in WITH_PNG."""
    done: dict[str, Written] = {}

    def get(name: str) -> Written:
        if name not in done:
            folder = tmp_path_factory.mktemp(f"report-{name}")
            files = write_report(
                SCENARIOS[name](),
                out=folder / "report.html",
                png_dir=folder / "png" / "plots" if name in WITH_PNG else None,
                tz=UTC,
            )
            done[name] = Written(files=files, html=files.html.read_text(encoding="utf-8"))
        return done[name]

    return get


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where a test's own report goes."""
    return tmp_path / "report.html"
