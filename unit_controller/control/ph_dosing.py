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
from dataclasses import dataclass, field
from enum import StrEnum

from unit_controller.config import PhTuning
from unit_controller.control.dose_response import DoseResponse
from unit_controller.control.ph_filter import PhFilter

# Below this a remaining volume is float dust, not a dose.
_EPS_ML = 1e-9
# Far from the setpoint (in doses) the loop doses every interval instead of dose-and-wait.
CONTINUOUS_DOSES = 3.0
# A learned gain moves at most this far (factor) on one observation.
GAIN_STEP_LIMIT = 20.0
# A response smaller than this (pH) does not teach the gain: it is noise.
MIN_RESPONSE_PH = 0.01
# An approach waits this many response times after its dose for the reading to settle (with
# the dead time 40 % of it, 93 % of a dose's effect shows by then).
SETTLE_RESPONSES = 2.0
# Once the gain is learned an approach dose aims this far (the first guess aims at
# `approach_fraction`): closer, but still short of the setpoint.
LEARNED_APPROACH = 0.8
# The response time is split into dead time and lag like this for the in-flight model.
DELAY_SHARE = 0.4
# A regulating loop starts an approach beyond LOADED_BAND tolerances; an approach with nothing
# to neutralise goes on until within UNLOADED_BAND of one (it lands well inside the band).
UNLOADED_BAND = 0.5
LOADED_BAND = 2.0
# Integral time in closed-loop times: SIMC's 4 is the calm choice for setpoint changes; a feed
# whose demand is a few per cent off must be learned within a short feeding phase.
INTEGRAL_CLOSED_LOOPS = 2.0


class Mode(StrEnum):
    """What the loop is doing this interval."""

    IDLE = "idle"  # no good reading yet
    APPROACH = "approach"  # a dose toward the setpoint, then wait for it to show
    CONTINUOUS = "continuous"  # far away in a buffer: dose every interval
    SETTLE = "settle"  # waiting for the last approach dose to show
    REGULATE = "regulate"  # feed-forward + PI near the setpoint
    COUNTER = "counter"  # past the setpoint: the counter-reagent doses back
    PAST = "past"  # past the setpoint with no counter-reagent: dose nothing but a reduced FF


@dataclass(frozen=True, slots=True)
class PhDose:
    """Pump rates the loop wants from now until its next update (mL/min)."""

    ml_min: float = 0.0
    counter_ml_min: float = 0.0


@dataclass(frozen=True, slots=True)
class DosePlan:
    """One interval's decision, for telemetry and tests."""

    start: float
    mode: Mode
    volume_ml: float  # over the interval, feed-forward included (as it stood at the decision)
    rate_ml_min: float
    # on top of the feed-forward, which follows the feed every scan: the correction's rate
    offset_ml_min: float
    delivery_s: float
    counter_ml: float
    counter_rate_ml_min: float
    error: float  # filtered, pH units, positive when the reagent is wanted
    predicted_error: float  # once the feedback reagent in flight has arrived
    feed_forward_ml: float
    integral_ml: float
    gain_ml: float  # mL of reagent per pH unit, as learned (or the first guess)
    learned: bool


@dataclass(slots=True)
class _Probe:
    """An approach dose being watched until it settles."""

    start: float
    settle_at: float
    y0: float
    seen0: float
    volume_ml: float
    delivery_s: float
    counter: bool
    trace: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Learned:
    """What the loop learned about the process; a later phase on the same liquor starts from it."""

    gain_ml: float
    response_s: float


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
        self._gain = learned.gain_ml if learned else tuning.kp_ml
        self._learned = learned is not None
        self._response_s = learned.response_s if learned else tuning.response_s
        self._fb = self._response_model()
        self._counter = self._response_model()
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
        self._probe: _Probe | None = None
        # A fresh loop approaches; one that goes on from an earlier phase on the same liquor
        # (it learned the gain there) regulates, and approaches only on large errors.
        self._approaching = learned is None
        self._window: list[tuple[float, float, float]] = []  # (t, y, seen) in continuous mode

    def _response_model(self) -> DoseResponse:
        r = self._response_s
        return DoseResponse(delay_s=DELAY_SHARE * r, tau_s=(1.0 - DELAY_SHARE) * r)

    # --- what it knows -------------------------------------------------------------------

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
        if not self._learned:
            return None
        return Learned(gain_ml=self._gain, response_s=self._response_s)

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
        self._probe = None
        self._window.clear()
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
        values = (setpoint, tolerance, measured_ph, measured_at, now, feed_forward_ml_min)
        if not all(math.isfinite(v) for v in values):
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
            self._set_plan(
                start,
                Mode.IDLE,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                min_ml_min,
                spread_s,
                counter_min_ml_min,
            )
            return
        error = self._dir * (setpoint - y)
        loaded = ff_ml > 0.0
        # Under a load (a feed the loop neutralises) a response also carries the load's
        # mismatch: it would teach the wrong gain. The gain is learned on the unloaded liquor.
        self._learn(now=start, y=y, learn=not loaded)
        gain = self._gain
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
        probe = self._probe
        if probe is not None and start < probe.settle_at:
            mode = Mode.SETTLE
            probe.trace.append((start, y))
        elif predicted > band:
            needed = predicted * gain * self._approach_fraction()
            if needed > CONTINUOUS_DOSES * cap:
                mode = Mode.CONTINUOUS
                fb_ml = cap
                self._window.append((start, y, self._fb.seen_ml))
            else:
                mode = Mode.APPROACH
                fb_ml = min(max(needed, t.min_dose_ml), cap)
                self._start_probe(start, y, fb_ml, spread_s, counter=False)
            self._integral_ml = min(self._integral_ml, 0.0) if ff_ml == 0 else self._integral_ml
        elif predicted < -band and self._counter_ratio is not None and counter_cap > 0.0:
            mode = Mode.COUNTER
            needed = -predicted * gain * self._counter_ratio * self._approach_fraction()
            counter_ml = min(max(needed, t.min_dose_ml), counter_cap)
            self._start_probe(start, y, counter_ml, spread_s, counter=True)
            self._integral_ml = min(self._integral_ml, 0.0)
        elif predicted < -band:
            mode = Mode.PAST
            self._integral_ml = max(-ff_ml, min(self._integral_ml, 0.0))
        else:
            mode = Mode.REGULATE
            fb_ml = self._regulate(predicted=predicted, ff_ml=ff_ml * ff_scale, cap=cap)
        if mode is not Mode.CONTINUOUS:
            self._window.clear()
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
        self._set_plan(
            start,
            mode,
            total,
            total - ff_part,
            counter_ml,
            error,
            predicted,
            ff_part,
            gain,
            min_ml_min,
            spread_s,
            counter_min_ml_min,
        )

    def _approach_fraction(self) -> float:
        fraction = self._tuning.approach_fraction
        return max(fraction, LEARNED_APPROACH) if self._learned else fraction

    def _regulate(self, *, predicted: float, ff_ml: float, cap: float) -> float:
        """Feed-forward + PI on the predicted error; returns the interval's whole volume.

        SIMC for an integrating process with a delay: the process moves 1/gain pH per mL and
        shows it one response time (plus the filter's lag) later; the loop closes in
        `closed_loop_responses` of those, with the integral two closed-loop times.
        """
        t = self._tuning
        active = math.copysign(max(0.0, abs(predicted) - t.deadband), predicted)
        delay = self._response_s + t.filter_s
        closed = (1.0 + t.closed_loop_responses) * delay
        kp = self._gain * t.interval_s / closed
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

    def _start_probe(
        self, start: float, y: float, volume: float, spread_s: float, *, counter: bool
    ) -> None:
        delivery = spread_s
        model = self._counter if counter else self._fb
        self._probe = _Probe(
            start=start,
            settle_at=start + delivery + SETTLE_RESPONSES * self._response_s,
            y0=y,
            seen0=model.seen_ml,
            volume_ml=volume,
            delivery_s=delivery,
            counter=counter,
            trace=[(start, y)],
        )

    def _learn(self, *, now: float, y: float, learn: bool = True) -> None:
        """Learn the gain and response time from a settled approach dose or a continuous run."""
        probe = self._probe
        if probe is not None and now >= probe.settle_at:
            self._probe = None
            if not learn:
                return
            model = self._counter if probe.counter else self._fb
            seen = model.seen_ml - probe.seen0
            sign = -self._dir if probe.counter else self._dir
            moved = sign * (y - probe.y0)
            if probe.counter and self._counter_ratio:
                seen /= self._counter_ratio  # in mL of the reagent it undoes
            threshold = max(MIN_RESPONSE_PH, 4.0 * self.filter.sigma / 3.0)
            if moved > threshold and seen > 0.0:
                self._set_gain(seen / moved)
                self._learn_response(probe, moved)
            elif seen / self._gain > 3.0 * threshold:
                # It should have moved well clear of the noise and hardly did: a much stronger
                # buffer than guessed; the next dose is bigger. (A small dose that moves less
                # than the noise teaches nothing.)
                self._set_gain(self._gain * 2.0)
            return
        window = self._window
        if not learn:
            window.clear()
        elif len(window) >= 2:
            span = SETTLE_RESPONSES * self._response_s
            t0, y0, seen0 = window[0]
            if now - t0 >= span:
                seen = self._fb.seen_ml - seen0
                moved = self._dir * (y - y0)
                threshold = max(MIN_RESPONSE_PH, 4.0 * self.filter.sigma / 3.0)
                if moved > threshold and seen > 0.0:
                    self._set_gain(
                        math.exp(0.5 * math.log(self._gain) + 0.5 * math.log(seen / moved))
                    )
                elif seen / self._gain > 3.0 * threshold:
                    self._set_gain(self._gain * 1.5)
                window.pop(0)

    def _set_gain(self, observed: float) -> None:
        low, high = self._gain / GAIN_STEP_LIMIT, self._gain * GAIN_STEP_LIMIT
        self._gain = min(max(observed, low), high, 1e6)
        self._learned = True

    def _learn_response(self, probe: _Probe, moved: float) -> None:
        """Time from the middle of the dose to 63 % of its effect: dead time plus lag."""
        sign = -self._dir if probe.counter else self._dir
        mark = probe.y0 + sign * 0.632 * moved
        for at, y in probe.trace:
            if sign * (y - mark) >= 0.0:
                observed = at - (probe.start + probe.delivery_s / 2.0)
                if observed > 0.0:
                    self._response_s = min(
                        max(0.5 * self._response_s + 0.5 * observed, 2.0), 1800.0
                    )
                    for model in (self._fb, self._counter):
                        model.delay_s = DELAY_SHARE * self._response_s
                        model.tau_s = (1.0 - DELAY_SHARE) * self._response_s
                return

    def _set_plan(
        self,
        start: float,
        mode: Mode,
        volume: float,
        beyond_ff_ml: float,
        counter_ml: float,
        error: float,
        predicted: float,
        ff_ml: float,
        gain: float,
        min_ml_min: float,
        spread_s: float,
        counter_min_ml_min: float,
    ) -> None:
        rate = volume * 60.0 / spread_s if volume > 0.0 else 0.0
        counter_rate = counter_ml * 60.0 / spread_s if counter_ml > 0.0 else 0.0
        self._plan = DosePlan(
            start=start,
            mode=mode,
            volume_ml=volume,
            rate_ml_min=max(rate, min_ml_min) if rate > 0.0 else 0.0,
            offset_ml_min=beyond_ff_ml * 60.0 / spread_s,
            delivery_s=spread_s,
            counter_ml=counter_ml,
            counter_rate_ml_min=max(counter_rate, counter_min_ml_min) if counter_rate > 0 else 0.0,
            error=error,
            predicted_error=predicted,
            feed_forward_ml=ff_ml,
            integral_ml=self._integral_ml,
            gain_ml=gain,
            learned=self._learned,
        )

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
