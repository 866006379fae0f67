"""A measured value with its timestamp and quality: what every input device reports.

A bad reading never carries a number that anyone may use; `value` is None when quality is BAD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T", float, bool)


class BadReason(StrEnum):
    """Why a reading may not be used; set by whoever judged it, never parsed from text."""

    NO_READING_YET = "no_reading_yet"  # nothing has been read since start-up
    NO_RESPONSE = "no_response"  # the device did not answer this read
    DEVICE_LOST = "device_lost"  # the device has not answered for longer than its lost limit
    DEVICE_ERROR = "device_error"  # the device answered with an error
    STALE = "stale"  # the newest sample is older than its limit
    OUT_OF_RANGE = "out_of_range"  # a number outside what the instrument can measure
    # a number above it: for a temperature, at least as hot as the probe reads (an interlock
    # takes it as over its high limit, never as "unknown")
    ABOVE_RANGE = "above_range"
    FROZEN = "frozen"  # unchanged for longer than a live signal can stay still

    @property
    def silent(self) -> bool:
        """True when the device itself stopped answering (not a bad value it sent)."""
        return self in _SILENT


_SILENT = frozenset({BadReason.NO_RESPONSE, BadReason.DEVICE_LOST})


class Quality(StrEnum):
    """Whether a reading may be used."""

    GOOD = "good"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class Reading(Generic[T]):
    """One sample from a device: value, when it was taken (clock seconds) and its quality."""

    value: T | None
    at: float
    quality: Quality
    reason: BadReason | None = None
    # for people: what exactly (e.g. "no valid answer for 16 s (its limit 15 s): no response")
    detail: str | None = None
    # True when the value may be used as a number (quality GOOD and a value): judged once, when
    # the reading is made, since every step of every scan asks.
    good: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "good", self.quality is Quality.GOOD and self.value is not None)

    @classmethod
    def ok(cls, value: T, at: float) -> Reading[T]:
        """A good reading."""
        # Made slot by slot: devices make several a scan, and __init__ with keywords costs
        # several times more (the same fields, the same frozen object).
        reading: Reading[T] = _new(cls)
        _set_value(reading, value)
        _set_at(reading, at)
        _set_quality(reading, Quality.GOOD)
        _set_reason(reading, None)
        _set_detail(reading, None)
        _set_good(reading, value is not None)
        return reading

    @classmethod
    def bad(cls, reason: BadReason, at: float, detail: str | None = None) -> Reading[T]:
        """A bad reading; `reason` says why, `detail` tells a person more."""
        return cls(value=None, at=at, quality=Quality.BAD, reason=reason, detail=detail)

    @property
    def why(self) -> str | None:
        """Why the reading is bad, for people ("device_lost: no valid answer for 16 s …"); None
        when good."""
        if self.good:
            return None
        reason = str(self.reason or "bad")
        return f"{reason}: {self.detail}" if self.detail else reason

    def age(self, now: float) -> float:
        """Seconds since the sample was taken."""
        return now - self.at


# The slots' own setters, for `Reading.ok` (a frozen dataclass refuses plain assignment).
_new: Any = object.__new__
_slots: Any = vars(Reading)
_set_value = _slots["value"].__set__
_set_at = _slots["at"].__set__
_set_quality = _slots["quality"].__set__
_set_reason = _slots["reason"].__set__
_set_detail = _slots["detail"].__set__
_set_good = _slots["good"].__set__
