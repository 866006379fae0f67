"""Fixtures every test gets: logging put back as the session found it after each test.

Never starts anything; component fixtures live in each folder's conftest.
"""

from __future__ import annotations

from collections.abc import Iterator
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
