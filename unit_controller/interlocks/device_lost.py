"""Detects a device that has stopped answering for longer than its stale limit.

The drivers say a device is silent with a typed reason (`BadReason.silent`); never writes outputs.
"""

from __future__ import annotations

from hal.reading import BadReason, Reading

# The reasons by which a reading says its device did not answer (`BadReason.silent`).
SILENT_REASONS = frozenset(reason for reason in BadReason if reason.silent)


def says_lost(reading: Reading[float] | Reading[bool]) -> bool:
    """True when a bad reading says the device did not answer."""
    return not reading.good and reading.reason in SILENT_REASONS


class DeviceLostMonitor:
    """Remembers since when each device has been silent; reports those silent too long."""

    def __init__(self) -> None:
        self._silent_since: dict[str, float] = {}

    @property
    def tracking(self) -> bool:
        """Whether some device is silent now (its silence is being timed)."""
        return bool(self._silent_since)

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
