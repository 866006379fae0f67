"""Detects a welded (shorted) heater SSR: the temperature rises while the heater is commanded off.

Watches temperature and the applied heater state only; never writes outputs.
"""

from __future__ import annotations

from collections import deque


class WeldedSsrDetector:
    """Trips when the temperature rises by `rise_c` within `window_s` with the heater off.

    Only judged once the heater has been commanded off for `settle_s` (≈3× the element lag), so
    the heat still stored in the element after a normal switch-off (1–2 °C of coast) is not
    mistaken for a welded SSR. The rise is measured from the lowest temperature in the sliding
    window, so a slow cool-down followed by a rise counts from the bottom. A strong exotherm with
    the heater off (e.g. H2O2 dosed too fast during leach) also trips it: accepted, because the
    safe response (contactor open, Abort) is the same and such an exotherm is itself a hazard.
    """

    def __init__(self, *, rise_c: float, window_s: float, settle_s: float) -> None:
        self._rise_c = rise_c
        self._window_s = window_s
        self._settle_s = settle_s
        self._off_since: float | None = None
        # (time, temperature) with temperatures increasing: the front is the window's minimum
        self._minima: deque[tuple[float, float]] = deque()

    def update(self, *, now: float, temperature_c: float | None, heater_on: bool) -> str | None:
        """Advance to `now`; returns the fault message while the rise holds, else None.

        `temperature_c` None (bad reading) skips the sample; `heater_on` is the applied state.
        """
        if heater_on:
            self._off_since = None
            self._minima.clear()
            return None
        if self._off_since is None:
            self._off_since = now
        if temperature_c is None or now - self._off_since < self._settle_s:
            return None
        minima = self._minima
        while minima and minima[-1][1] >= temperature_c:
            minima.pop()
        minima.append((now, temperature_c))
        while minima[0][0] < now - self._window_s:
            minima.popleft()
        lowest_at, lowest_c = minima[0]
        rise = temperature_c - lowest_c
        if rise >= self._rise_c:
            return (
                f"temperature rose {rise:.1f} °C in {now - lowest_at:.0f} s with the heater "
                f"commanded off (limit {self._rise_c:g} °C in {self._window_s:g} s)"
            )
        return None
