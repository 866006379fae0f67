"""Time proportioning: a heater duty becomes an SSR on-time per fixed cycle.

Pure arithmetic on the values it is given: never reads a clock, never touches a relay
(the caller writes the on-time as the relay board's self-expiring flash-on pulse).
"""

from __future__ import annotations

import math


class TimeProportioner:
    """Latches on-time = duty·cycle at each cycle start; duty 0 switches off at once."""

    def __init__(self, *, cycle_s: float, min_pulse_s: float) -> None:
        if not cycle_s > 0.0:
            raise ValueError(f"cycle_s must be > 0, got {cycle_s}")
        if not 0.0 <= min_pulse_s < cycle_s / 2.0:
            raise ValueError(f"min_pulse_s must be in [0, cycle_s/2), got {min_pulse_s}")
        self._cycle_s = cycle_s
        self._min_pulse_s = min_pulse_s
        self._cycle_start: float | None = None
        self._on_s = 0.0
        # On-time dropped or added by the min-pulse rules, repaid in later cycles so the
        # long-run average still equals the duty (error diffusion); bounded by ±min_pulse_s.
        self._carry_s = 0.0

    @property
    def cycle_s(self) -> float:
        """Length of one cycle in seconds."""
        return self._cycle_s

    def reset(self) -> None:
        """Off now; the next call starts a fresh cycle with nothing carried over."""
        self._cycle_start = None
        self._on_s = 0.0
        self._carry_s = 0.0

    def on_time_remaining(self, *, duty: float, now: float) -> float:
        """Seconds the output should still be on from `now` in this cycle (0 in the off part)."""
        if not (math.isfinite(duty) and duty > 0.0) or not math.isfinite(now):
            # Safety: off at once, not at the next cycle boundary; nothing is owed later.
            self._on_s = 0.0
            self._carry_s = 0.0
            return 0.0
        if self._cycle_start is None:
            self._start_cycle(at=now, duty=duty)
        else:
            elapsed = now - self._cycle_start
            if elapsed >= self._cycle_s:
                # Keep the grid when on time; after a long gap start afresh, never catch up.
                on_time = elapsed < 2.0 * self._cycle_s
                self._start_cycle(
                    at=self._cycle_start + self._cycle_s if on_time else now, duty=duty
                )
            elif elapsed < 0.0:
                self._start_cycle(at=now, duty=duty)  # clock stepped back: restart
        assert self._cycle_start is not None
        return max(0.0, self._cycle_start + self._on_s - now)

    def _start_cycle(self, *, at: float, duty: float) -> None:
        self._cycle_start = at
        wanted = min(duty, 1.0) * self._cycle_s + self._carry_s
        if wanted < self._min_pulse_s:
            on = 0.0  # too short for the SSR/relay to mean anything: drop it
        elif self._cycle_s - wanted < self._min_pulse_s:
            on = self._cycle_s  # an off-gap this short is merged into full on
        else:
            on = wanted
        self._carry_s = max(-self._min_pulse_s, min(self._min_pulse_s, wanted - on))
        self._on_s = on
