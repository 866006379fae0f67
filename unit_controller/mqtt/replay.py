"""Replay protection for remote commands: an id seen before is refused (the outbox keeps ids
on disk for the unit; `MemoryReplayStore` for tests).

Ids are forgotten by count, and never while a command could still be valid as measured on the
monotonic clock: a wall clock stepped forward and back must not let a replay through.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Protocol

# A command lives at most 600 s (the gate's limit) plus 60 s of clock difference; kept longer.
KEEP_S = 900.0
MAX_IDS = 100_000


class ReplayStore(Protocol):
    """Remembers command ids, so that a resent message is refused."""

    @property
    def forgot_before_ms(self) -> int | None:
        """Wall ms before which ids seen may have been lost (an outbox set aside), or None."""
        ...

    async def remember_command(self, command_id: str, exp_ms: int) -> bool:
        """Remember `command_id`; True if it was new."""
        ...


class ReplayWindow:
    """Which remembered ids must be kept whatever the count: those received in the last
    `keep_s` of this process (monotonic), and every id while the process is younger than that
    (ids from before a restart have no monotonic time here)."""

    def __init__(
        self, *, monotonic: Callable[[], float] = time.monotonic, keep_s: float = KEEP_S
    ) -> None:
        self._monotonic = monotonic
        self._keep_s = keep_s
        self._started = monotonic()
        self._recent: deque[tuple[float, int]] = deque()  # (seen at, rowid), oldest first

    def seen(self, rowid: int) -> None:
        """A new id was stored with this rowid (rowids grow)."""
        self._recent.append((self._monotonic(), rowid))

    def keep_from(self) -> int | None:
        """Ids from this rowid on must be kept (None: every id must)."""
        now = self._monotonic()
        if now - self._started < self._keep_s:
            return None
        recent = self._recent
        while recent and now - recent[0][0] >= self._keep_s:
            recent.popleft()
        return recent[0][1] if recent else 2**62


class MemoryReplayStore:
    """Command ids kept in memory, forgotten by count and monotonic age (tests; no outbox)."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        keep_s: float = KEEP_S,
        max_ids: int = MAX_IDS,
    ) -> None:
        self._monotonic = monotonic
        self._keep_s = keep_s
        self._max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()  # id -> seen at, oldest first
        self.forgot_before_ms: int | None = None

    async def remember_command(self, command_id: str, exp_ms: int) -> bool:
        """Remember `command_id`; True if it was new."""
        if command_id in self._seen:
            return False
        now = self._monotonic()
        self._seen[command_id] = now
        while len(self._seen) > self._max_ids:
            oldest, at = next(iter(self._seen.items()))
            if now - at < self._keep_s:
                break  # still possibly valid: kept beyond the count
            del self._seen[oldest]
        return True

    def __len__(self) -> int:
        """How many ids are remembered now."""
        return len(self._seen)
