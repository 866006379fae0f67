"""What the pH dosing loop decides each interval, and what it learned (DESIGN §4)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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

    @classmethod
    def spread(
        cls,
        *,
        start: float,
        mode: Mode,
        delivery_s: float,
        min_ml_min: float,
        counter_min_ml_min: float,
        integral_ml: float,
        learned: bool,
        volume_ml: float = 0.0,
        beyond_ff_ml: float = 0.0,
        counter_ml: float = 0.0,
        error: float = 0.0,
        predicted_error: float = 0.0,
        feed_forward_ml: float = 0.0,
        gain_ml: float = 0.0,
    ) -> DosePlan:
        """The plan that spreads these volumes over `delivery_s`, never below a pump's slowest."""
        rate = volume_ml * 60.0 / delivery_s if volume_ml > 0.0 else 0.0
        counter_rate = counter_ml * 60.0 / delivery_s if counter_ml > 0.0 else 0.0
        return cls(
            start=start,
            mode=mode,
            volume_ml=volume_ml,
            rate_ml_min=max(rate, min_ml_min) if rate > 0.0 else 0.0,
            offset_ml_min=beyond_ff_ml * 60.0 / delivery_s,
            delivery_s=delivery_s,
            counter_ml=counter_ml,
            counter_rate_ml_min=max(counter_rate, counter_min_ml_min) if counter_rate > 0 else 0.0,
            error=error,
            predicted_error=predicted_error,
            feed_forward_ml=feed_forward_ml,
            integral_ml=integral_ml,
            gain_ml=gain_ml,
            learned=learned,
        )


@dataclass(frozen=True, slots=True)
class Learned:
    """What the loop learned about the process; a later phase on the same liquor starts from it."""

    gain_ml: float
    response_s: float
