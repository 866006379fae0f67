"""Replay protection for remote commands: an id seen before is refused until long after it
expired (the outbox keeps ids on disk for the unit; `MemoryReplayStore` for tests)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Protocol


class ReplayStore(Protocol):
    """Remembers command ids until they expire, so that a resent message is refused."""

    async def remember_command(self, command_id: str, exp_ms: int) -> bool:
        """Remember `command_id` until `exp_ms`; True if it was new."""
        ...


class MemoryReplayStore:
    """Command ids kept in memory until shortly after their expiry (tests; no outbox)."""

    def __init__(self, *, wall: Callable[[], float] = time.time, keep_s: float = 60.0) -> None:
        # After its expiry a command is refused as expired anyway; `keep_s` covers a wall
        # clock that steps back a little (NTP) so an old id is not forgotten too early.
        self._wall = wall
        self._keep_ms = int(keep_s * 1000)
        self._seen: dict[str, int] = {}
        self._by_expiry: list[tuple[int, str]] = []

    async def remember_command(self, command_id: str, exp_ms: int) -> bool:
        """Remember `command_id` until `exp_ms`; True if it was new."""
        self._forget_expired()
        if command_id in self._seen:
            return False
        self._seen[command_id] = exp_ms
        heapq.heappush(self._by_expiry, (exp_ms, command_id))
        return True

    def __len__(self) -> int:
        """How many ids are remembered now."""
        return len(self._seen)

    def _forget_expired(self) -> None:
        horizon = int(self._wall() * 1000) - self._keep_ms
        while self._by_expiry and self._by_expiry[0][0] < horizon:
            _, command_id = heapq.heappop(self._by_expiry)
            self._seen.pop(command_id, None)
