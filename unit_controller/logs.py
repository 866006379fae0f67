"""structlog set-up: key=value lines on stderr, so stdout stays for progress and JSON."""

from __future__ import annotations

import logging
import sys
from types import ModuleType

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
