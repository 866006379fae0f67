"""A measured value with its timestamp and quality: what every input device reports.

A bad reading never carries a number that anyone may use; `value` is None when quality is BAD.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T", float, bool)


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
    reason: str | None = None

    @property
    def good(self) -> bool:
        """True when the value may be used as a number."""
        return self.quality is Quality.GOOD and self.value is not None

    @classmethod
    def ok(cls, value: T, at: float) -> Reading[T]:
        """A good reading."""
        return cls(value=value, at=at, quality=Quality.GOOD)

    @classmethod
    def bad(cls, reason: str, at: float) -> Reading[T]:
        """A bad reading; `reason` says why (e.g. "no response", "out of range", "stale")."""
        return cls(value=None, at=at, quality=Quality.BAD, reason=reason)

    def age(self, now: float) -> float:
        """Seconds since the sample was taken."""
        return now - self.at
