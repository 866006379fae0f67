"""Fixtures every test gets: logging put back as the session found it after each test.

Never starts anything; component fixtures live in each folder's conftest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog


@pytest.fixture(scope="session")
def _logging_baseline() -> dict[str, Any]:
    return structlog.get_config()


@pytest.fixture(autouse=True)
def _restore_logging(_logging_baseline: dict[str, Any]) -> Iterator[None]:
    # cli.main() points structlog at the stderr of the moment (pytest's capture, closed after
    # the test); a task of a later test that logs must not write into that closed file.
    yield
    structlog.configure(**_logging_baseline)


@pytest.fixture(scope="session", autouse=True)
def _session_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # For fixtures wider than one test (a module's simulated batch): set before any of them.
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
    mp.delenv("STATE_DIRECTORY", raising=False)
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _own_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A simulated batch journals into the unit's state directory, as the daemon does: never
    # into the home of whoever runs the suite, and never into another test's.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


# Tests that run in real time against real processes, ptys and sockets: on one xdist worker, one
# after another, so a daemon at 100x never starves a serial emulator's timing on a 2-core box.
_REAL_TIME = (
    "tests/serial/",
    "tests/daemon/",
    "tests/mqtt/test_fleet",
    "tests/mqtt/test_daemon",
    "tests/console/test_console_daemon",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = str(config.rootpath)
    for item in items:
        where = str(item.path).removeprefix(root + "/")
        if where.startswith(_REAL_TIME):
            item.add_marker(pytest.mark.xdist_group("real_time"))
        elif where.startswith("tests/deploy/"):
            # One bundle built per worker: the installer's tests share one.
            item.add_marker(pytest.mark.xdist_group("deploy"))
