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
        # A driver says 'lost' only after its own limit, stamped with the last answer: the
        # silence runs from there, not from the first scan that heard it (which would add the
        # driver's limit to this one).
        start = min(now, reading.at) if reading.reason is BadReason.DEVICE_LOST else now
        since = self._silent_since.get(tag)
        if since is None or start < since:
            since = self._silent_since[tag] = start
        silent = now - since
        return silent if silent > stale_s else None
