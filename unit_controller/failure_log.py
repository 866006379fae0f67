"""A failure or a loss that repeats every few hundred milliseconds (a full disk under a
flusher, a cap dropping the oldest message at each commit), said in the log once, on a change
of reason, then as a reminder with how many went unsaid; and a failure's end.

Never raises and never blocks: it only counts and logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hal.log import get_logger

log = get_logger(__name__)

# A failure that goes on is said again at most this often (its alarm, if any, stays up).
REMIND_EVERY_S = 60.0


class FailureLog:
    """Logs `<event>_failed` for the first failure, a new reason, or a reminder at most every
    REMIND_EVERY_S; then `<event>_recovered` once it works again."""

    def __init__(self, event: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._event = event
        self._monotonic = monotonic
        self._error: str | None = None
        self._logged_at = 0.0
        self._unlogged = 0
        self._count = 0

    def failed(self, error: str, **context: object) -> None:
        """One more failure, for `error`."""
        now = self._monotonic()
        self._count += 1
        if error == self._error and now - self._logged_at < REMIND_EVERY_S:
            self._unlogged += 1
            return
        log.error(
            f"{self._event}_failed",
            error=error,
            failures=self._count,
            not_logged=self._unlogged,
            **context,
        )
        self._error, self._logged_at, self._unlogged = error, now, 0

    def recovered(self) -> None:
        """It worked: said once after failures, and the count starts again."""
        if self._error is not None:
            log.info(f"{self._event}_recovered", failures=self._count)
        self._error, self._unlogged, self._count = None, 0, 0


class DropLog:
    """Logs `event` (a warning) for the first drop, a new reason, or at most every
    REMIND_EVERY_S with every message dropped since the last line."""

    def __init__(self, event: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._event = event
        self._monotonic = monotonic
        self._reason: str | None = None
        self._logged_at = 0.0
        self._unlogged = 0

    def dropped(self, count: int, *, reason: str, dropped_total: int) -> None:
        """`count` more messages dropped for `reason`; `dropped_total` since the store began."""
        now = self._monotonic()
        self._unlogged += count
        if reason == self._reason and now - self._logged_at < REMIND_EVERY_S:
            return
        log.warning(self._event, count=self._unlogged, reason=reason, dropped_total=dropped_total)
        self._reason, self._logged_at, self._unlogged = reason, now, 0
