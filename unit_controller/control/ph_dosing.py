"""pH dosing for a dead-time process: every interval, decide a dose (feed-forward + PI), deliver it.

Pure arithmetic on the values it is given: never reads a clock, never touches a pump, and
never doses against its own direction (a base pump never chases a pH that is too high).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from unit_controller.config import PhTuning

# Below this a remaining volume is float dust, not a dose.
_EPS_ML = 1e-9


def neutralising_rate_ml_min(
    *, feed_ml_min: float, feed_mol_l: float, equivalents: float, reagent_mol_l: float
) -> float:
    """Reagent rate (mL/min) that neutralises a feed: equivalents·feed·c_feed / c_reagent."""
    if reagent_mol_l <= 0.0:
        raise ValueError(f"reagent_mol_l must be > 0, got {reagent_mol_l}")
    return max(0.0, equivalents * feed_ml_min * feed_mol_l / reagent_mol_l)


@dataclass(frozen=True)
class DosePlan:
    """One interval's decision: `volume_ml` delivered from `start` at up to `rate_ml_min`."""

    start: float
    volume_ml: float
    rate_ml_min: float
    error: float  # pH units, positive when reagent is wanted
    feed_forward_ml: float
    integral_ml: float


class PhDosingController:
    """PI on pH error plus feed-forward, decided once per interval and spread as a rate.

    Every `interval_s` (the first decision is made at the first update after a reset) the
    dose is FF volume + kp·e + integral, clamped to [0, min(max_dose_ml, pump limit·interval)];
    doses under `min_dose_ml` are carried to the next interval. The dose is delivered at a
    steady rate over `delivery_fraction` of the interval (1.0: continuous, smoothest for a
    continuous feed); what is not delivered by the interval's end is dropped, never carried.
    """

    def __init__(self, *, tuning: PhTuning, raises_ph: bool, reagent_mol_l: float) -> None:
        if reagent_mol_l <= 0.0:
            raise ValueError(f"reagent_mol_l must be > 0, got {reagent_mol_l}")
        self._tuning = tuning
        self._raises_ph = raises_ph
        self._reagent_mol_l = reagent_mol_l
        self._integral_ml = 0.0
        self._carry_ml = 0.0
        self._dosed_ml = 0.0
        self._plan: DosePlan | None = None
        self._delivered_ml = 0.0  # in the current interval
        self._last_now: float | None = None
        self._last_rate = 0.0
        self._scan_s: float | None = None  # the caller's last update spacing

    @property
    def raises_ph(self) -> bool:
        """True for a base (the reagent raises pH), False for an acid."""
        return self._raises_ph

    @property
    def reagent_mol_l(self) -> float:
        """Reagent concentration the controller was built for."""
        return self._reagent_mol_l

    @property
    def dosed_ml(self) -> float:
        """Total mL commanded since reset (each returned rate × time until the next update)."""
        return self._dosed_ml

    @property
    def integral_ml(self) -> float:
        """The learned demand per interval beyond feed-forward; pass to `reset` to resume."""
        return self._integral_ml

    @property
    def plan(self) -> DosePlan | None:
        """The current interval's decision (None before the first update)."""
        return self._plan

    def reset(self, *, integral_ml: float = 0.0) -> None:
        """Stop dosing and forget history; `integral_ml` preloads the learned demand (bumpless)."""
        self._integral_ml = integral_ml
        self._carry_ml = 0.0
        self._dosed_ml = 0.0
        self._plan = None
        self._delivered_ml = 0.0
        self._last_now = None
        self._last_rate = 0.0
        self._scan_s = None

    def pause(self) -> None:
        """The caller stopped dosing (bad reading, Hold): drop the interval, keep what was learned.

        The last rate stops counting toward `dosed_ml`; the next update decides afresh at once.
        """
        self._carry_ml = 0.0
        self._plan = None
        self._delivered_ml = 0.0
        self._last_now = None
        self._last_rate = 0.0
        self._scan_s = None

    def update(
        self,
        *,
        setpoint: float,
        measured_ph: float,
        now: float,
        feed_forward_ml_min: float = 0.0,
        max_ml_min: float = 105.0,
        min_ml_min: float = 0.5,
    ) -> float:
        """Return the reagent pump rate (mL/min) wanted from `now` until the next update."""
        if not all(math.isfinite(v) for v in (setpoint, measured_ph, now, feed_forward_ml_min)):
            # A bad number never doses; the caller should not pass one (readings are typed).
            self._last_rate = 0.0
            return 0.0
        if self._last_now is not None:
            dt = now - self._last_now
            if dt <= 0.0:
                return self._last_rate
            volume = self._last_rate * dt / 60.0
            self._dosed_ml += volume
            self._delivered_ml += volume
            self._scan_s = dt
        self._last_now = now

        interval = self._tuning.interval_s
        if self._plan is None or now >= self._plan.start + interval or now < self._plan.start:
            on_grid = self._plan is not None and self._plan.start + interval <= now < (
                self._plan.start + 2.0 * interval
            )
            start = self._plan.start + interval if on_grid and self._plan else now
            self._decide(
                start=start,
                setpoint=setpoint,
                measured_ph=measured_ph,
                feed_forward_ml_min=feed_forward_ml_min,
                max_ml_min=max_ml_min,
                min_ml_min=min_ml_min,
            )

        rate = self._rate_now(max_ml_min=max_ml_min)
        self._last_rate = rate
        return rate

    def _decide(
        self,
        *,
        start: float,
        setpoint: float,
        measured_ph: float,
        feed_forward_ml_min: float,
        max_ml_min: float,
        min_ml_min: float,
    ) -> None:
        t = self._tuning
        interval = t.interval_s
        error = (setpoint - measured_ph) if self._raises_ph else (measured_ph - setpoint)
        # Shrink the error by the deadband (continuous, no step at its edge).
        active = math.copysign(max(0.0, abs(error) - t.deadband), error)
        ff_ml = max(0.0, feed_forward_ml_min) * interval / 60.0 if t.feed_forward else 0.0
        cap = max(0.0, min(t.max_dose_ml, max_ml_min * interval / 60.0))

        if error < -t.stop_band:
            # Past the setpoint the way this reagent pushes: dose nothing, learn nothing.
            dose = 0.0
            self._carry_ml = 0.0
        else:
            candidate = self._integral_ml + t.ki_ml * active
            unclamped = ff_ml + t.kp_ml * active + candidate
            # Conditional integration: never integrate further into a clamped dose.
            winding_up = unclamped > cap and active > 0.0
            winding_down = unclamped < 0.0 and active < 0.0
            if not (winding_up or winding_down):
                self._integral_ml = candidate
            self._integral_ml = min(max(self._integral_ml, -cap), cap)
            dose = min(max(ff_ml + t.kp_ml * active + self._integral_ml, 0.0), cap)
            if dose <= 0.0:
                self._carry_ml = 0.0
            elif dose + self._carry_ml < t.min_dose_ml:
                self._carry_ml += dose  # too small for the pump: owe it to the next interval
                dose = 0.0
            else:
                dose = min(dose + self._carry_ml, cap)
                self._carry_ml = 0.0

        spread_s = t.delivery_fraction * interval
        rate = dose * 60.0 / spread_s if dose > 0.0 else 0.0
        if rate > 0.0:
            rate = min(max(rate, min_ml_min), max_ml_min)
        self._plan = DosePlan(
            start=start,
            volume_ml=dose,
            rate_ml_min=rate,
            error=error,
            feed_forward_ml=ff_ml,
            integral_ml=self._integral_ml,
        )
        self._delivered_ml = 0.0

    def _rate_now(self, *, max_ml_min: float) -> float:
        plan = self._plan
        if plan is None:
            return 0.0
        remaining = plan.volume_ml - self._delivered_ml
        if remaining <= _EPS_ML:
            return 0.0
        rate = min(plan.rate_ml_min, max(0.0, max_ml_min))
        if self._scan_s:
            # Finish exactly on the last scan of the dose rather than overshoot it.
            rate = min(rate, remaining * 60.0 / self._scan_s)
        return rate
