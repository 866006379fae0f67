"""Detects a device that has stopped answering for longer than its stale limit.

A simple rule on reading reasons ("no response", "device lost"); the serial drivers may refine it.
Never writes outputs.
"""

from __future__ import annotations

from hal.reading import Reading

LOST_REASONS = ("no response", "device lost")


def says_lost(reading: Reading[float] | Reading[bool]) -> bool:
    """True when a bad reading says the device did not answer."""
    if reading.good:
        return False
    reason = (reading.reason or "").lower()
    return any(word in reason for word in LOST_REASONS)


class DeviceLostMonitor:
    """Remembers since when each device has been silent; reports those silent too long."""

    def __init__(self) -> None:
        self._silent_since: dict[str, float] = {}

    def update(
        self, *, now: float, tag: str, reading: Reading[float] | Reading[bool], stale_s: float
    ) -> float | None:
        """Seconds the device `tag` has been silent when beyond `stale_s`, else None."""
        if not says_lost(reading):
            self._silent_since.pop(tag, None)
            return None
        since = self._silent_since.setdefault(tag, now)
        silent = now - since
        return silent if silent > stale_s else None
