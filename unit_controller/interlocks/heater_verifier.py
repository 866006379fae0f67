"""Is the heater heating when driven? Klipper's verify_heater, adapted to a slow 100 L reactor.

Watches temperature against the applied duty only; knows nothing of PID, and never writes outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from unit_controller.config import VerifyHeaterLimits


@dataclass(slots=True)
class _Window:
    """One gain window: the temperature must rise by the gain before `deadline`."""

    started_at: float
    start_c: float
    goal_c: float
    deadline: float
    on_s: float = 0.0
    total_s: float = 0.0

    @property
    def duty(self) -> float:
        """Fraction of the window the heater was driven (0 for a window with no time yet)."""
        return self.on_s / self.total_s if self.total_s > 0 else 0.0


class HeaterVerifier:
    """Trips when the heater is driven hard but the temperature does not follow.

    Below `target - hysteresis` a gain window runs: the temperature must rise by `heating_gain_c`
    within `check_gain_time_s`; each gain restarts the window and clears the error. A window that
    ends without gain trips only if the average applied duty over it is at least `min_duty`, so a
    heater that was capped, forced off or holding at low duty is never judged. While
    *approaching* a new target (Klipper's `approaching_target`) only the gain check applies: the
    error of a 50 °C heat-up would exceed any sensible limit long before the lagging element
    shows a gain. After the target was reached once, falling out of the band again also
    accumulates `(target - hysteresis - T)·dt` while driven, and trips at `max_error_c_s`.
    A fault stays reported until the heater is no longer wanted (target None).

    With `full_rise_c_per_s` (the rise the heater's full power gives the fullest reactor), a
    gain counts only once it is also `min_heat_share` of that rise over the window's driven time:
    an open element under a warm agitator still gains 2 °C in a window, a heater many times that.
    """

    def __init__(self, limits: VerifyHeaterLimits, *, full_rise_c_per_s: float = 0.0) -> None:
        self._limits = limits
        self._least_rise_c_per_s = limits.min_heat_share * full_rise_c_per_s
        self._last_now: float | None = None
        self._last_target: float | None = None
        self._approaching = False
        self._window: _Window | None = None
        self._error = 0.0
        self._fault: str | None = None

    @property
    def fault(self) -> str | None:
        """Why the heater was judged faulty, or None."""
        return self._fault

    def update(
        self, *, now: float, temperature_c: float | None, target_c: float | None, driven: bool
    ) -> str | None:
        """Advance to `now`; returns the fault message while faulted, else None.

        `temperature_c` is None when the reading is bad (the scan is then skipped, not judged);
        `target_c` is None when no phase wants the heater; `driven` is the applied heater state.
        """
        dt = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        if target_c is None:
            self._reset()
            return None
        if self._fault is not None:
            return self._fault
        if temperature_c is None:
            return None
        limits = self._limits
        if self._window is not None:
            self._window.total_s += dt
            if driven:
                self._window.on_s += dt
        if temperature_c >= target_c - limits.hysteresis_c:
            # in (or above) the band: nothing to verify; Klipper clears the error only in band
            self._approaching = False
            self._window = None
            if temperature_c <= target_c + limits.hysteresis_c:
                self._error = 0.0
            self._last_target = target_c
            return None
        if target_c != self._last_target:
            self._approaching = True
            self._error = 0.0
            self._last_target = target_c
            self._start_window(now, temperature_c)
            return None
        if self._window is None:
            # fell out of the band after reaching it (or resumed): judge from here
            self._start_window(now, temperature_c)
            return None
        if driven:
            self._error += (target_c - limits.hysteresis_c - temperature_c) * dt
        window = self._window
        least_c = self._least_rise_c_per_s * window.on_s
        if temperature_c >= window.goal_c and temperature_c - window.start_c >= least_c:
            self._error = 0.0
            self._start_window(now, temperature_c)
        elif now >= window.deadline:
            if window.duty >= limits.min_duty:
                if temperature_c < window.goal_c:
                    return self._trip(
                        f"no {limits.heating_gain_c:g} °C gain in {limits.check_gain_time_s:g} s "
                        f"at {window.duty:.0%} duty (at {temperature_c:.1f} °C, target "
                        f"{target_c:g} °C)"
                    )
                return self._trip(
                    f"rose {temperature_c - window.start_c:.1f} °C in "
                    f"{limits.check_gain_time_s:g} s at {window.duty:.0%} duty, less than "
                    f"{limits.min_heat_share:.0%} of the {least_c / limits.min_heat_share:.1f} °C "
                    f"its power gives even a full reactor (at {temperature_c:.1f} °C, target "
                    f"{target_c:g} °C): that heat is not the heater's"
                )
            self._start_window(now, temperature_c)  # not driven enough to judge: look again
        elif (
            not self._approaching
            and self._error >= limits.max_error_c_s
            and window.duty >= limits.min_duty
        ):
            return self._trip(
                f"cumulative error {self._error:.0f} °C·s ≥ {limits.max_error_c_s:g} below "
                f"target {target_c:g} °C (at {temperature_c:.1f} °C)"
            )
        return None

    def _start_window(self, now: float, temperature_c: float) -> None:
        limits = self._limits
        self._window = _Window(
            started_at=now,
            start_c=temperature_c,
            goal_c=temperature_c + limits.heating_gain_c,
            deadline=now + limits.check_gain_time_s,
        )

    def _trip(self, message: str) -> str:
        self._fault = message
        return message

    def _reset(self) -> None:
        self._last_target = None
        self._approaching = False
        self._window = None
        self._error = 0.0
        self._fault = None
