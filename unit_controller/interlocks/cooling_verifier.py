"""Detects jacket cooling that does not cool: the valve held open while the batch stays hot.

Watches temperature against the cooling valve's commanded state; knows nothing of PID or
dosing, and never opens or closes anything itself.
"""

from __future__ import annotations

# Cooling commanded for this share of the watch window counts as cooling hard.
HARD_SHARE = 0.8


class CoolingVerifier:
    """Trips when the valve has been open most of `window_s` above the setpoint and the
    temperature has not fallen by `drop_c` from its highest in that time (no cooling water)."""

    def __init__(self, *, window_s: float, drop_c: float, above_c: float) -> None:
        self._window_s = window_s
        self._drop_c = drop_c
        self._above_c = above_c
        self._start: float | None = None
        self._open_s = 0.0
        self._max_c = -1e9
        self._at: float | None = None

    def update(
        self, *, now: float, temperature_c: float | None, setpoint_c: float | None, cooling: bool
    ) -> str | None:
        """Advance one scan; returns the fault message while it holds, else None."""
        dt = 0.0 if self._at is None else max(0.0, now - self._at)
        self._at = now
        if (
            temperature_c is None
            or setpoint_c is None
            or temperature_c < setpoint_c + self._above_c
        ):
            self._start = None
            return None
        if self._start is None:
            self._start = now
            self._open_s = 0.0
            self._max_c = temperature_c
            return None
        if cooling:
            self._open_s += dt
        self._max_c = max(self._max_c, temperature_c)
        elapsed = now - self._start
        if elapsed < self._window_s:
            return None
        hard = self._open_s >= HARD_SHARE * elapsed
        fell = self._max_c - temperature_c
        if hard and fell < self._drop_c:
            return (
                f"cooling valve open {self._open_s:.0f} s of {elapsed:.0f} s and the temperature "
                f"fell only {fell:.1f} °C (from {self._max_c:.1f}): no cooling water? (or water "
                f"no colder than the setpoint {setpoint_c:g} °C: a jacket cools only towards its "
                "water)"
            )
        # a fresh window: forget the old one so a recovered jacket clears
        self._start = now
        self._open_s = 0.0
        self._max_c = temperature_c
        return None
