"""structlog set-up: key=value lines on stderr, so stdout stays for progress and JSON."""

from __future__ import annotations

import asyncio
import logging
import sys
from types import ModuleType
from typing import Any

from hal import log


def configure_logging(level: str = "warning") -> None:
    """Send structured logs at `level` and above to stderr (structlog is configured when it is
    first needed: a quiet start never imports it)."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)
    # pymodbus logs through the standard library; its complaints about late answers are ours
    # to report (relay_board.timeout), not to print raw.
    logging.getLogger("pymodbus").setLevel(max(numeric, logging.ERROR) + 10)
    stderr = sys.stderr  # the stream of the moment: a later first message still goes there

    def setup(structlog: ModuleType) -> None:
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                # log.exception's traceback, as one `exception='…'` field of the line.
                structlog.processors.format_exc_info,
                structlog.processors.KeyValueRenderer(
                    key_order=["timestamp", "level", "event"], drop_missing=True
                ),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(numeric),
            logger_factory=structlog.PrintLoggerFactory(file=stderr),
            cache_logger_on_first_use=False,
        )

    log.configure(threshold=numeric, setup=setup)


_loop_log = log.get_logger("asyncio")


def log_loop_errors(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio reports itself (a callback that raised, a task's exception nobody read) goes
    into the structured log as `loop.error`, not as a bare traceback on stderr."""
    loop.set_exception_handler(_loop_error)


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Mostly a library's race with a socket it closed (aiomqtt after a stall): worth a line
    # in the journal a tech can search, not a crash.
    exception = context.get("exception")
    _loop_log.warning(
        "loop.error",
        message=str(context.get("message", "")),
        error=repr(exception) if exception is not None else None,
        exc_info=exception if isinstance(exception, BaseException) else None,
    )
