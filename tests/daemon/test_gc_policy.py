"""The daemon's collector policy: start-up frozen out of later collections, every collection's
pause counted for the `stats` op."""

from __future__ import annotations

import contextlib
import gc

import pytest

from unit_controller.cli import main
from unit_controller.daemon.gc_policy import (
    GcWatch,
    pause_for_startup,
    resume_collector,
    settle_after_startup,
)


def test_the_watch_counts_each_collection_by_generation_with_its_pause() -> None:
    watch = GcWatch()
    watch.install()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        watch.uninstall()
    gc.collect()  # not counted: the watch is off
    summary = watch.summary()
    assert summary["collections"][0] >= 1
    assert summary["collections"][2] == 1
    assert summary["pause_ms_max"][2] > 0
    assert summary["pause_ms_total"][2] == summary["pause_ms_max"][2]
    assert summary["threshold"] == list(gc.get_threshold())


def test_settling_after_start_up_freezes_what_lives_on() -> None:
    try:
        settle_after_startup()
        assert gc.get_freeze_count() > 1000  # this test process's modules, classes, fixtures
    finally:
        gc.unfreeze()


def test_a_start_up_pause_ends_when_start_up_settles() -> None:
    try:
        pause_for_startup()
        assert not gc.isenabled()
        settle_after_startup()
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_resuming_never_turns_on_a_collector_someone_else_turned_off() -> None:
    gc.disable()
    try:
        pause_for_startup()  # nothing to pause
        resume_collector()
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "argv",
    [
        ["recipes"],
        ["run", "--config", "/nonexistent/unit.toml"],
        ["--log-level", "nonsense"],
    ],
)
def test_the_command_line_leaves_the_collector_on_however_it_ends(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with contextlib.suppress(SystemExit):
        main(argv)
    assert gc.isenabled()
