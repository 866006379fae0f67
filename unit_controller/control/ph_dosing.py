"""pH dosing for a dead-time process whose gain changes by orders of magnitude (DESIGN §4).

Every interval the loop decides on the filtered pH, never on one raw reading. Far from the
setpoint it approaches: it doses a share of what the learned process gain says is missing, then
waits for the reading to settle and learns the gain and the response time from what it saw; in a
buffer it doses continuously. Near the setpoint it regulates: feed-forward from the feed (lagged
like the precipitation that takes the hydroxide up) plus PI on the error predicted once the
reagent still in flight has arrived. Past the setpoint a counter-reagent, where the recipe names
one, doses back the same way. Pure arithmetic on the values it is given: never reads a clock,
never touches a pump.
"""

from __future__ import annotations

import math

from unit_controller.config import PhTuning
from unit_controller.control.ph_filter import PhFilter
from unit_controller.control.ph_learning import ResponseLearner, response_model
from unit_controller.control.ph_plan import DosePlan, Learned, Mode, PhDose

__all__ = ["DosePlan", "Learned", "Mode", "PhDose", "PhDosingController"]

# Below this a remaining volume is float dust, not a dose.
_EPS_ML = 1e-9
# Far from the setpoint (in doses) the loop doses every interval instead of dose-and-wait.
CONTINUOUS_DOSES = 3.0
# Once the gain is learned an approach dose aims this far (the first guess aims at
# `approach_fraction`): closer, but still short of the setpoint.
LEARNED_APPROACH = 0.8
# A regulating loop starts an approach beyond LOADED_BAND tolerances; an approach with nothing
# to neutralise goes on until within UNLOADED_BAND of one (it lands well inside the band).
UNLOADED_BAND = 0.5
LOADED_BAND = 2.0
# Integral time in closed-loop times: SIMC's 4 is the calm choice for setpoint changes; a feed
# whose demand is a few per cent off must be learned within a short feeding phase.
INTEGRAL_CLOSED_LOOPS = 2.0


class PhDosingController:
    """Decides each interval's dose of the pH reagent (and of a counter-reagent, if any)."""

    def __init__(
        self,
        *,
        tuning: PhTuning,
        raises_ph: bool,
        reagent_mol_l: float,
        counter_ratio: float | None = None,
        learned: Learned | None = None,
    ) -> None:
        """`counter_ratio`: mL of counter-reagent that undo one mL of the reagent (None: none)."""
        if reagent_mol_l <= 0.0:
            raise ValueError(f"reagent_mol_l must be > 0, got {reagent_mol_l}")
        if counter_ratio is not None and not counter_ratio > 0.0:
            raise ValueError(f"counter_ratio must be > 0, got {counter_ratio}")
        self._tuning = tuning
        self._raises_ph = raises_ph
        self._dir = 1.0 if raises_ph else -1.0
        self._reagent_mol_l = reagent_mol_l
        self._counter_ratio = counter_ratio
        self.filter = PhFilter(filter_s=tuning.filter_s, spike_limit=tuning.spike_limit)
        response_s = learned.response_s if learned else tuning.response_s
        self._fb = response_model(response_s)
        self._counter = response_model(response_s)
        self._learner = ResponseLearner(
            gain_ml=learned.gain_ml if learned else tuning.kp_ml,
            response_s=response_s,
            learned=learned is not None,
            raises_ph=raises_ph,
            counter_ratio=counter_ratio,
            feedback=self._fb,
            counter=self._counter,
            ph_filter=self.filter,
        )
        self._integral_ml = 0.0
        self._ff_ml_min = 0.0
        self._ff_scale = 1.0
        self._owed_ml = 0.0
        self._now = 0.0
        self._dosed_ml = 0.0
        self._counter_dosed_ml = 0.0
        self._plan: DosePlan | None = None
        # The feedback correction of this interval (signed, mL), spread over its delivery: what
        # the loop expects to see later. Feed-forward and the integral's learned load are not
        # corrections in flight: the load takes them up as they go in.
        self._fb_ml_s = 0.0
        self._fb_until = 0.0
        self._delivered_ml = 0.0
        self._counter_delivered_ml = 0.0
        self._last_now: float | None = None
        self._last = PhDose()
        self._scan_s: float | None = None
        # A fresh loop approaches; one that goes on from an earlier phase on the same liquor
        # (it learned the gain there) regulates, and approaches only on large errors.
        self._approaching = learned is None

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
        """Total mL of the reagent commanded since reset."""
        return self._dosed_ml

    @property
    def counter_dosed_ml(self) -> float:
        """Total mL of the counter-reagent commanded since reset."""
        return self._counter_dosed_ml

    @property
    def integral_ml(self) -> float:
        """The learned demand per interval beyond feed-forward."""
        return self._integral_ml

    @property
    def plan(self) -> DosePlan | None:
        """The current interval's decision (None before the first)."""
        return self._plan

    @property
    def learned(self) -> Learned | None:
        """The gain and response time learned from the loop's own doses (None: not yet)."""
        learner = self._learner
        if not learner.learned:
            return None
        return Learned(gain_ml=learner.gain_ml, response_s=learner.response_s)

    @property
    def filtered_ph(self) -> float | None:
        """The filtered pH the loop decides on."""
        return self.filter.value

    # --- control -------------------------------------------------------------------------

    def pause(self) -> None:
        """The caller stopped dosing (bad reading, Hold): drop the interval, keep what was learned.

        Nothing is counted as dosed from now; the next update decides afresh.
        """
        self._plan = None
        self._learner.reset()
        self._delivered_ml = self._counter_delivered_ml = 0.0
        self._last_now = None
        self._last = PhDose()
        self._scan_s = None
        self._fb.reset()
        self._counter.reset()
        self.filter.reset()

    def update(
        self,
        *,
        setpoint: float,
        tolerance: float,
        measured_ph: float,
        measured_at: float,
        now: float,
        feed_forward_ml_min: float = 0.0,
        max_ml_min: float = 105.0,
        min_ml_min: float = 0.5,
        counter_max_ml_min: float = 0.0,
        counter_min_ml_min: float = 0.5,
    ) -> PhDose:
        """The pump rates wanted from `now` until the next update."""
        isfinite = math.isfinite
        if not (
            isfinite(setpoint)
            and isfinite(tolerance)
            and isfinite(measured_ph)
            and isfinite(measured_at)
            and isfinite(now)
            and isfinite(feed_forward_ml_min)
        ):
            # A bad number never doses; the caller should not pass one (readings are typed).
            self._last = PhDose()
            return self._last
        if self._last_now is not None:
            dt = now - self._last_now
            if dt <= 0.0:
                return self._last
            self._account(dt, now)
        self._last_now = now
        self._now = now
        self.filter.update(measured_ph, measured_at)
        self._lag_feed_forward(feed_forward_ml_min, now)

        interval = self._tuning.interval_s
        plan = self._plan
        if plan is None or now >= plan.start + interval or now < plan.start:
            on_grid = plan is not None and plan.start + interval <= now < plan.start + 2 * interval
            start = plan.start + interval if on_grid and plan else now
            self._decide(
                start=start,
                setpoint=setpoint,
                tolerance=tolerance,
                max_ml_min=max_ml_min,
                min_ml_min=min_ml_min,
                counter_max_ml_min=counter_max_ml_min,
                counter_min_ml_min=counter_min_ml_min,
            )
        self._last = self._rates(
            now=now,
            max_ml_min=max_ml_min,
            min_ml_min=min_ml_min,
            counter_max_ml_min=counter_max_ml_min,
        )
        return self._last

    def _account(self, dt: float, now: float) -> None:
        volume = self._last.ml_min * dt / 60.0
        counter = self._last.counter_ml_min * dt / 60.0
        self._dosed_ml += volume
        self._counter_dosed_ml += counter
        self._delivered_ml += volume
        self._counter_delivered_ml += counter
        self._scan_s = dt
        overlap = max(0.0, min(now, self._fb_until) - (now - dt))
        self._fb.update(now=now, dosed_ml=self._fb_ml_s * overlap)
        self._counter.update(now=now, dosed_ml=counter)

    def _lag_feed_forward(self, feed_ml_min: float, now: float) -> None:
        wanted = max(0.0, feed_ml_min) if self._tuning.feed_forward else 0.0
        lag = self._tuning.feed_forward_lag_s
        dt = self._scan_s or 0.0
        if lag <= 0.0 or wanted == 0.0:
            self._ff_ml_min = wanted
        elif dt > 0.0:
            self._ff_ml_min += (wanted - self._ff_ml_min) * (1.0 - math.exp(-dt / lag))

    def _decide(
        self,
        *,
        start: float,
        setpoint: float,
        tolerance: float,
        max_ml_min: float,
        min_ml_min: float,
        counter_max_ml_min: float,
        counter_min_ml_min: float,
    ) -> None:
        t = self._tuning
        interval = t.interval_s
        spread_s = t.delivery_fraction * interval
        y = self.filter.value
        cap = max(0.0, min(t.max_dose_ml, max_ml_min * spread_s / 60.0))
        counter_cap = 0.0
        if self._counter_ratio is not None:
            counter_cap = max(
                0.0, min(t.max_dose_ml * self._counter_ratio, counter_max_ml_min * spread_s / 60.0)
            )
        ff_ml = self._ff_ml_min * interval / 60.0
        self._delivered_ml = self._counter_delivered_ml = 0.0
        if y is None:
            self._ff_scale = 0.0  # no reading yet: nothing goes in, not even feed-forward
            self._plan = DosePlan.spread(
                start=start,
                mode=Mode.IDLE,
                delivery_s=spread_s,
                min_ml_min=min_ml_min,
                counter_min_ml_min=counter_min_ml_min,
                integral_ml=self._integral_ml,
                learned=self._learner.learned,
            )
            return
        error = self._dir * (setpoint - y)
        loaded = ff_ml > 0.0
        # Under a load (a feed the loop neutralises) a response also carries the load's
        # mismatch: it would teach the wrong gain. The gain is learned on the unloaded liquor.
        self._learner.learn(now=start, y=y, learn=not loaded)
        gain = self._learner.gain_ml
        in_flight = self._fb.pending_ml - self._counter.pending_ml / (self._counter_ratio or 1.0)
        predicted = error - in_flight / gain
        # The regulating loop (which keeps a load's learned share going) owns everything but
        # large errors. An approach under way with nothing to neutralise goes on to within half
        # the tolerance (or the filtered noise): a phase that ends on "at setpoint" must not
        # leave the next one at its band's edge.
        share = UNLOADED_BAND if self._approaching and not loaded else LOADED_BAND
        band = max(share * tolerance, 3.0 * self.filter.sigma / math.sqrt(max(1.0, t.filter_s)))
        fb_ml = 0.0
        counter_ml = 0.0
        ff_scale = 1.0
        if error < -tolerance:
            # Past the setpoint: the feed-forward shrinks until it stops at three tolerances.
            ff_scale = max(0.0, 1.0 - (-error - tolerance) / (2.0 * tolerance))
        if self._learner.settling(start, y):
            mode = Mode.SETTLE
        elif predicted > band:
            needed = predicted * gain * self._approach_fraction()
            if needed > CONTINUOUS_DOSES * cap:
                mode = Mode.CONTINUOUS
                fb_ml = cap
                self._learner.watch_continuous(start, y)
            else:
                mode = Mode.APPROACH
                fb_ml = min(max(needed, t.min_dose_ml), cap)
                self._learner.start_probe(start, y, fb_ml, spread_s, counter=False)
            self._integral_ml = min(self._integral_ml, 0.0) if ff_ml == 0 else self._integral_ml
        elif predicted < -band and self._counter_ratio is not None and counter_cap > 0.0:
            mode = Mode.COUNTER
            needed = -predicted * gain * self._counter_ratio * self._approach_fraction()
            counter_ml = min(max(needed, t.min_dose_ml), counter_cap)
            self._learner.start_probe(start, y, counter_ml, spread_s, counter=True)
            self._integral_ml = min(self._integral_ml, 0.0)
        elif predicted < -band:
            mode = Mode.PAST
            self._integral_ml = max(-ff_ml, min(self._integral_ml, 0.0))
        else:
            mode = Mode.REGULATE
            fb_ml = self._regulate(predicted=predicted, ff_ml=ff_ml * ff_scale, cap=cap)
        if mode is not Mode.CONTINUOUS:
            self._learner.end_continuous()
        self._approaching = mode in (Mode.APPROACH, Mode.CONTINUOUS, Mode.SETTLE, Mode.COUNTER)
        ff_part = min(ff_ml * ff_scale, cap)
        load = min(max(ff_part + self._integral_ml, 0.0), cap)
        if mode is Mode.REGULATE:
            total = fb_ml  # the whole volume: FF, integral and the proportional correction
            correction = total - load
        else:
            # the load goes on as learned (FF and integral); an approach dose goes on top
            fb_ml = min(fb_ml, max(0.0, cap - load))
            total = load + fb_ml
            correction = fb_ml
        self._fb_ml_s = correction / spread_s
        self._fb_until = start + spread_s
        self._ff_scale = ff_scale
        self._plan = DosePlan.spread(
            start=start,
            mode=mode,
            delivery_s=spread_s,
            min_ml_min=min_ml_min,
            counter_min_ml_min=counter_min_ml_min,
            integral_ml=self._integral_ml,
            learned=self._learner.learned,
            volume_ml=total,
            beyond_ff_ml=total - ff_part,
            counter_ml=counter_ml,
            error=error,
            predicted_error=predicted,
            feed_forward_ml=ff_part,
            gain_ml=gain,
        )

    def _approach_fraction(self) -> float:
        fraction = self._tuning.approach_fraction
        return max(fraction, LEARNED_APPROACH) if self._learner.learned else fraction

    def _regulate(self, *, predicted: float, ff_ml: float, cap: float) -> float:
        """Feed-forward + PI on the predicted error; returns the interval's whole volume.

        SIMC for an integrating process with a delay: the process moves 1/gain pH per mL and
        shows it one response time (plus the filter's lag) later; the loop closes in
        `closed_loop_responses` of those, with the integral two closed-loop times.
        """
        t = self._tuning
        active = math.copysign(max(0.0, abs(predicted) - t.deadband), predicted)
        delay = self._learner.response_s + t.filter_s
        closed = (1.0 + t.closed_loop_responses) * delay
        kp = self._learner.gain_ml * t.interval_s / closed
        ki = kp * t.interval_s / (INTEGRAL_CLOSED_LOOPS * closed) if t.ki_ml > 0 else 0.0
        candidate = self._integral_ml + ki * active
        unclamped = ff_ml + kp * active + candidate
        # Conditional integration: never integrate further into a clamped dose.
        winding_up = unclamped > cap and active > 0.0
        winding_down = unclamped < 0.0 and active < 0.0
        if not (winding_up or winding_down):
            self._integral_ml = candidate
        # The integral may cancel the feed-forward, never more; nor exceed the dose cap.
        self._integral_ml = min(max(self._integral_ml, -ff_ml), cap)
        return min(max(ff_ml + kp * active + self._integral_ml, 0.0), cap)

    def _rates(
        self, *, now: float, max_ml_min: float, min_ml_min: float, counter_max_ml_min: float
    ) -> PhDose:
        plan = self._plan
        if plan is None:
            return PhDose()
        offset = plan.offset_ml_min if now < plan.start + plan.delivery_s else 0.0
        wanted = min(max(0.0, self._ff_ml_min * self._ff_scale + offset), max(0.0, max_ml_min))
        return PhDose(
            ml_min=self._at_least(wanted, min_ml_min),
            counter_ml_min=self._rate(
                plan.counter_ml - self._counter_delivered_ml,
                plan.counter_rate_ml_min,
                counter_max_ml_min,
            ),
        )

    def _at_least(self, wanted: float, min_ml_min: float) -> float:
        """`wanted` mL/min, or pulses at the pump's slowest rate that average it out."""
        if wanted >= min_ml_min or wanted <= 0.0:
            self._owed_ml = 0.0
            return wanted
        dt = self._scan_s or 0.0
        self._owed_ml += wanted * dt / 60.0
        if self._owed_ml <= 0.0:
            return 0.0
        self._owed_ml -= min_ml_min * dt / 60.0
        return min_ml_min

    def _rate(self, remaining: float, planned: float, limit: float) -> float:
        if remaining <= _EPS_ML:
            return 0.0
        rate = min(planned, max(0.0, limit))
        if self._scan_s:
            # Finish exactly on the last scan of the dose rather than overshoot it.
            rate = min(rate, remaining * 60.0 / self._scan_s)
        return rate
