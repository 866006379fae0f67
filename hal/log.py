"""Named structured loggers that import structlog with the first message worth writing.

A unit runs at `warning` and a quiet start writes nothing, so it never pays structlog's import
(~20 ms of a 0.2 s start). Once structlog is loaded, every message goes to it and it alone
filters; this module never drops what structlog would write.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Hashable
from types import ModuleType
from typing import Any

# structlog's own numbers (those of the standard library).
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "exception": 40, "critical": 50}

_threshold = 0  # until configured, nothing is below it: structlog's own default
_setup: Callable[[ModuleType], None] | None = None  # a configuration waiting for structlog


def configure(*, threshold: int, setup: Callable[[ModuleType], None]) -> None:
    """Messages below `threshold` need no structlog; `setup(structlog)` configures it, now if it
    is loaded, otherwise when the first message at or above `threshold` loads it."""
    global _threshold, _setup
    _threshold = threshold
    structlog = sys.modules.get("structlog")
    if structlog is None:
        _setup = setup
    else:
        _setup = None
        setup(structlog)


def _structlog() -> ModuleType:
    global _setup
    import structlog

    setup, _setup = _setup, None
    if setup is not None:
        setup(structlog)
    return structlog


class Logger:
    """A structlog logger by name (`get_logger(__name__)`), bound when it first writes."""

    __slots__ = ("_name", "_proxy")

    def __init__(self, name: str) -> None:
        self._name = name
        self._proxy: Any = None

    def debug(self, event: str, **fields: Any) -> None:
        """Log `event` at debug level."""
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log `event` at info level."""
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log `event` at warning level."""
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log `event` at error level."""
        self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log `event` at error level with the exception being handled."""
        self._emit("exception", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        """Log `event` at critical level."""
        self._emit("critical", event, fields)

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        proxy = self._proxy
        if proxy is None:
            if _LEVELS[method] < _threshold and "structlog" not in sys.modules:
                return  # structlog, once loaded and configured so, would drop it too
            # structlog's lazy proxy binds at each call, so a later configure() (a test's
            # capture_logs) still applies.
            proxy = self._proxy = _structlog().get_logger(self._name)
        getattr(proxy, method)(event, **fields)


def get_logger(name: str) -> Logger:
    """The logger for module `name`."""
    return Logger(name)


class Repeats:
    """Lets the first of a repeated complaint through, then one every `every_s` saying how many
    it held back: a circuit that fails for a weekend writes a line every few minutes, not one a
    second. `forget` what answers again, so its next failure is logged at once."""

    def __init__(self, *, every_s: float = 300.0) -> None:
        self._every_s = every_s
        # (event, subject) -> (last logged at, held back since)
        self._seen: dict[tuple[str, Hashable], tuple[float, int]] = {}

    def due(self, event: str, subject: Hashable, now: float) -> dict[str, int] | None:
        """None to hold `event` about `subject` (a command, an address) back; else the fields to
        log it with (`held_back`, once some were)."""
        key = (event, subject)
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._every_s:
            self._seen[key] = (seen[0], seen[1] + 1)
            return None
        self._seen[key] = (now, 0)
        return {"held_back": seen[1]} if seen is not None and seen[1] else {}

    def __len__(self) -> int:
        return len(self._seen)

    def forget(self, *, subject: Hashable | None = None, events: Collection[str] = ()) -> None:
        """`subject` (every one when None) answered again: forget its complaints (of `events`,
        every one when empty)."""
        self._seen = {
            key: seen
            for key, seen in self._seen.items()
            if not ((subject is None or key[1] == subject) and (not events or key[0] in events))
        }
