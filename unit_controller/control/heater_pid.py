"""Temperature PID: turns a temperature error into a duty (min_duty..max_duty).

Positive duty is the heater's share of its power; negative duty (where the phase may cool) is
heat for the jacket to take out, in the same units. A feed-forward (the heat a reaction is
expected to release, as negative duty) adds to the output and the integral works around it.

Pure arithmetic on the values it is given: never reads a clock, never touches a device,
knows nothing of alarms (the verifier and the safety filter handle those).
"""

from __future__ import annotations

import math

from unit_controller.config import HeaterTuning


class HeaterPid:
    """PID with derivative on the filtered measurement and anti-windup."""

    def __init__(self, *, tuning: HeaterTuning) -> None:
        self._tuning = tuning
        self._integral = 0.0  # in duty units, so a retune does not bump the output
        self._preload: float | None = None
        self._last_now: float | None = None
        self._last_measured = 0.0
        self._slope = 0.0  # filtered d(measured)/dt, °C/s
        self._last_output = 0.0

    @property
    def tuning(self) -> HeaterTuning:
        """The gains in use."""
        return self._tuning

    @property
    def output(self) -> float:
        """The duty returned by the last `update` (0 after a reset)."""
        return self._last_output

    def reset(self, *, duty: float = 0.0) -> None:
        """Forget history; the next `update` starts from `duty` (bumpless hand-over)."""
        self._integral = 0.0
        self._preload = duty
        self._last_now = None
        self._slope = 0.0
        self._last_output = 0.0

    def update(
        self,
        *,
        setpoint_c: float,
        measured_c: float,
        now: float,
        max_duty: float = 1.0,
        min_duty: float = 0.0,
        feed_forward: float = 0.0,
    ) -> float:
        """The duty for `now`, within [min_duty, max_duty] (min_duty < 0 where it may cool)."""
        max_duty = min(max(max_duty, 0.0), 1.0)
        min_duty = min(0.0, min_duty)
        if not math.isfinite(feed_forward):
            feed_forward = 0.0
        if not (math.isfinite(setpoint_c) and math.isfinite(measured_c) and math.isfinite(now)):
            # A bad number never heats; the caller should not pass one (readings are typed).
            self._last_output = 0.0
            return 0.0
        t = self._tuning
        error = setpoint_c - measured_c
        first = self._last_now is None
        dt = 0.0 if first else now - (self._last_now or 0.0)
        if not first and dt <= 0.0:
            # Same instant (or a clock step back): nothing new to learn; hold within the cap.
            return min(max(self._last_output, min_duty), max_duty)

        if not first:
            raw_slope = (measured_c - self._last_measured) / dt
            # First-order filter on the slope; dt-aware so irregular scans filter alike.
            alpha = dt / (t.d_filter_s + dt) if t.d_filter_s > 0 else 1.0
            self._slope += alpha * (raw_slope - self._slope)
        self._last_now = now
        self._last_measured = measured_c

        p = t.kp * error
        d = -t.kd * self._slope  # on measurement: a setpoint step gives no kick
        ff = feed_forward
        if self._preload is not None:
            # Bumpless start: the integral takes whatever P, D and FF leave of the preload.
            self._integral = self._preload - p - d - ff
            self._preload = None
        else:
            candidate = self._integral + t.ki * error * dt
            unclamped = p + candidate + d + ff
            # Conditional integration: never integrate further into a saturated output.
            pushing_high = unclamped > max_duty and error > 0.0
            pushing_low = unclamped < min_duty and error < 0.0
            if not (pushing_high or pushing_low):
                self._integral = candidate
        # Back-calculation: the integral alone never holds the output above its limit (a P or
        # D term pushing below the floor is cut by the clamp, never by raising the integral),
        # and it stays within what the heater (and jacket) can mean.
        if p + self._integral + d + ff > max_duty:
            self._integral = min(self._integral, max_duty - p - d - ff)
        self._integral = min(max(self._integral, min_duty - max(ff, 0.0)), max_duty - min(ff, 0.0))

        output = min(max(p + self._integral + d + ff, min_duty), max_duty)
        self._last_output = output
        return output
