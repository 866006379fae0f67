"""Learning a pH process's gain and response time from the loop's own doses (DESIGN §4).

An approach dose is watched until it settles; a continuous run is judged over a sliding window.
What moved the reading, against what the dose-response model says arrived, is the gain (mL of
reagent per pH unit); when the move showed is the response time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from unit_controller.control.dose_response import DoseResponse
from unit_controller.control.ph_filter import PhFilter

# A learned gain moves at most this far (factor) on one observation.
GAIN_STEP_LIMIT = 20.0
# A response smaller than this (pH) does not teach the gain: it is noise.
MIN_RESPONSE_PH = 0.01
# An approach waits this many response times after its dose for the reading to settle (with
# the dead time 40 % of it, 93 % of a dose's effect shows by then).
SETTLE_RESPONSES = 2.0
# The response time is split into dead time and lag like this for the in-flight model.
DELAY_SHARE = 0.4


def response_model(response_s: float) -> DoseResponse:
    """The in-flight model of a process whose doses show `response_s` after they go in."""
    return DoseResponse(delay_s=DELAY_SHARE * response_s, tau_s=(1.0 - DELAY_SHARE) * response_s)


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


class ResponseLearner:
    """The gain and response time as learned so far, and the doses still being watched."""

    def __init__(
        self,
        *,
        gain_ml: float,
        response_s: float,
        learned: bool,
        raises_ph: bool,
        counter_ratio: float | None,
        feedback: DoseResponse,
        counter: DoseResponse,
        ph_filter: PhFilter,
    ) -> None:
        """`feedback`/`counter`: the in-flight models whose timing follows what is learned."""
        self.gain_ml = gain_ml
        self.response_s = response_s
        self.learned = learned
        self._dir = 1.0 if raises_ph else -1.0
        self._counter_ratio = counter_ratio
        self._fb = feedback
        self._counter = counter
        self._filter = ph_filter
        self._probe: _Probe | None = None
        self._window: list[tuple[float, float, float]] = []  # (t, y, seen) in continuous mode

    def reset(self) -> None:
        """Stop watching: dosing stopped, so nothing under way can teach anything."""
        self._probe = None
        self._window.clear()

    def settling(self, start: float, y: float) -> bool:
        """True while an approach dose is still showing (the reading is noted for timing)."""
        probe = self._probe
        if probe is None or start >= probe.settle_at:
            return False
        probe.trace.append((start, y))
        return True

    def watch_continuous(self, start: float, y: float) -> None:
        """A continuous interval: note where it started, to judge the run over a window."""
        self._window.append((start, y, self._fb.seen_ml))

    def end_continuous(self) -> None:
        """The continuous run ended: its window teaches nothing more."""
        self._window.clear()

    def start_probe(
        self, start: float, y: float, volume: float, delivery_s: float, *, counter: bool
    ) -> None:
        """Watch an approach dose (or a counter dose) until it settles."""
        model = self._counter if counter else self._fb
        self._probe = _Probe(
            start=start,
            settle_at=start + delivery_s + SETTLE_RESPONSES * self.response_s,
            y0=y,
            seen0=model.seen_ml,
            volume_ml=volume,
            delivery_s=delivery_s,
            counter=counter,
            trace=[(start, y)],
        )

    def learn(self, *, now: float, y: float, learn: bool = True) -> None:
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
            threshold = max(MIN_RESPONSE_PH, 4.0 * self._filter.sigma / 3.0)
            if moved > threshold and seen > 0.0:
                self._set_gain(seen / moved)
                self._learn_response(probe, moved)
            elif seen / self.gain_ml > 3.0 * threshold:
                # It should have moved well clear of the noise and hardly did: a much stronger
                # buffer than guessed; the next dose is bigger. (A small dose that moves less
                # than the noise teaches nothing.)
                self._set_gain(self.gain_ml * 2.0)
            return
        window = self._window
        if not learn:
            window.clear()
        elif len(window) >= 2:
            span = SETTLE_RESPONSES * self.response_s
            t0, y0, seen0 = window[0]
            if now - t0 >= span:
                seen = self._fb.seen_ml - seen0
                moved = self._dir * (y - y0)
                threshold = max(MIN_RESPONSE_PH, 4.0 * self._filter.sigma / 3.0)
                if moved > threshold and seen > 0.0:
                    self._set_gain(
                        math.exp(0.5 * math.log(self.gain_ml) + 0.5 * math.log(seen / moved))
                    )
                elif seen / self.gain_ml > 3.0 * threshold:
                    self._set_gain(self.gain_ml * 1.5)
                window.pop(0)

    def _set_gain(self, observed: float) -> None:
        low, high = self.gain_ml / GAIN_STEP_LIMIT, self.gain_ml * GAIN_STEP_LIMIT
        self.gain_ml = min(max(observed, low), high, 1e6)
        self.learned = True

    def _learn_response(self, probe: _Probe, moved: float) -> None:
        """Time from the middle of the dose to 63 % of its effect: dead time plus lag."""
        sign = -self._dir if probe.counter else self._dir
        mark = probe.y0 + sign * 0.632 * moved
        for at, y in probe.trace:
            if sign * (y - mark) >= 0.0:
                observed = at - (probe.start + probe.delivery_s / 2.0)
                if observed > 0.0:
                    self.response_s = min(max(0.5 * self.response_s + 0.5 * observed, 2.0), 1800.0)
                    for model in (self._fb, self._counter):
                        model.delay_s = DELAY_SHARE * self.response_s
                        model.tau_s = (1.0 - DELAY_SHARE) * self.response_s
                return
