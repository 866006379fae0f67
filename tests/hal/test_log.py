"""hal.log: structlog is loaded by the first message worth writing, and then alone decides.

Checked in fresh interpreters, since the suite itself has structlog loaded.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import structlog
from structlog.testing import capture_logs

from hal.log import Repeats, get_logger

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )


def test_messages_below_the_level_neither_load_structlog_nor_write() -> None:
    done = _run(
        """
        import sys
        from unit_controller.logs import configure_logging
        from hal.log import Repeats, get_logger
        configure_logging("warning")
        log = get_logger("unit")
        log.debug("scan.detail", n=1)
        log.info("daemon.started", unit="u1")
        print("structlog" in sys.modules)
        """
    )
    assert done.stdout.strip() == "False"
    assert done.stderr == ""


def test_the_first_message_at_the_level_loads_structlog_configured_as_asked() -> None:
    done = _run(
        """
        import sys
        from unit_controller.logs import configure_logging
        from hal.log import Repeats, get_logger
        configure_logging("warning")
        log = get_logger("unit")
        log.info("daemon.started")
        log.warning("storage.low", free_mb=12)
        log.info("daemon.stopping")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("scan.failed")
        print("structlog" in sys.modules)
        """
    )
    assert done.stdout.strip() == "True"
    lines = done.stderr.splitlines()
    assert "level='warning' event='storage.low' free_mb=12" in lines[0]
    assert "level='error' event='scan.failed'" in done.stderr
    assert "ValueError: boom" in done.stderr
    assert "daemon.started" not in done.stderr
    assert "daemon.stopping" not in done.stderr


def test_unconfigured_it_writes_what_structlog_would_by_default() -> None:
    done = _run(
        """
        from hal.log import Repeats, get_logger
        get_logger("unit").debug("scan.detail", n=1)
        """
    )
    assert "scan.detail" in done.stdout + done.stderr


def test_once_structlog_is_loaded_its_configuration_alone_filters() -> None:
    # The suite's case: structlog loaded, configured by a test (capture_logs) after the logger
    # was made, even after a quieter configure_logging.
    from unit_controller.logs import configure_logging

    log = get_logger("tests.hal.test_log")
    configure_logging("error")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(0))
    with capture_logs() as captured:
        log.info("outbox.drained", rows=3)
    assert captured == [{"event": "outbox.drained", "rows": 3, "log_level": "info"}]


def test_repeats_let_the_first_through_then_one_a_period_with_the_count() -> None:
    repeats = Repeats(every_s=300.0)
    assert repeats.due("ezo.timeout", "R", 0.0) == {}
    assert [repeats.due("ezo.timeout", "R", t) for t in (1.0, 2.0, 299.0)] == [None] * 3
    assert repeats.due("ezo.timeout", "Cal,?", 5.0) == {}  # another subject is its own
    assert repeats.due("ezo.timeout", "R", 300.0) == {"held_back": 3}
    assert repeats.due("ezo.timeout", "R", 600.0) == {}


def test_repeats_forget_what_answers_again() -> None:
    repeats = Repeats(every_s=300.0)
    repeats.due("relay_board.timeout", 1, 0.0)
    repeats.due("relay_board.exception", 514, 0.0)
    repeats.forget(events=("relay_board.timeout",))
    assert repeats.due("relay_board.timeout", 1, 1.0) == {}
    assert repeats.due("relay_board.exception", 514, 1.0) is None
    repeats.forget(subject=514)
    assert repeats.due("relay_board.exception", 514, 2.0) == {}
    assert len(repeats) == 2


def test_what_asyncio_reports_itself_is_a_structured_line_not_a_bare_traceback() -> None:
    # A library's callback that raised after a stall, or a future nobody read at shutdown.
    result = _run(
        """
        import asyncio, gc
        from unit_controller.logs import configure_logging, log_loop_errors
        configure_logging("warning")

        async def main():
            loop = asyncio.get_running_loop()
            log_loop_errors(loop)
            future = loop.create_future()
            future.set_exception(OSError(9, "Bad file descriptor"))
            del future
            gc.collect()
            loop.call_soon(lambda: 1 / 0)
            await asyncio.sleep(0.01)

        asyncio.run(main())
        """
    )
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert all(line.split(" ")[2] == "event='loop.error'" for line in lines), lines
    assert "message='Future exception was never retrieved'" in lines[0]
    assert "ZeroDivisionError" in lines[1]
