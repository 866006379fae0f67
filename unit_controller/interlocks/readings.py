"""Turn a reading into a usable value or a reason it is bad (failed, stale, out of range).

Every interlock goes through these: a bad or stale reading is never returned as a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from hal.reading import BadReason, Reading

V = TypeVar("V", float, bool)


@dataclass(frozen=True, slots=True)
class Checked(Generic[V]):
    """A reading judged now: `value` is None exactly when `problem` says why it is bad."""

    value: V | None
    problem: str | None
    reason: BadReason | None = None

    @property
    def bad(self) -> bool:
        """True when the value may not be used."""
        return self.value is None


def check_analog(
    reading: Reading[float], *, now: float, stale_s: float, low: float, high: float
) -> Checked[float]:
    """The value when good, younger than `stale_s` and within [low, high]; else why not."""
    if not reading.good or reading.value is None:
        return _bad(reading, now=now, stale_s=stale_s)
    age = now - reading.at
    if age > stale_s:
        return Checked(None, f"stale: {age:.1f} s old (limit {stale_s:g} s)", BadReason.STALE)
    if not low <= reading.value <= high:
        return Checked(
            None,
            f"out of range: {reading.value:g} not in [{low:g}, {high:g}]",
            BadReason.ABOVE_RANGE if reading.value > high else BadReason.OUT_OF_RANGE,
        )
    return Checked(reading.value, None)


def check_discrete(reading: Reading[bool], *, now: float, stale_s: float) -> Checked[bool]:
    """The state when good and younger than `stale_s`; else why not."""
    value = reading.value
    if not reading.good or value is None:
        return _bad(reading, now=now, stale_s=stale_s)
    age = now - reading.at
    if age > stale_s:
        return Checked(None, f"stale: {age:.1f} s old (limit {stale_s:g} s)", BadReason.STALE)
    if value is True:
        return _WET
    if value is False:
        return _DRY
    return Checked(value, None)


# A good switch reads one of two things: the same two verdicts serve every scan.
_WET: Checked[bool] = Checked(True, None)
_DRY: Checked[bool] = Checked(False, None)


def _bad(reading: Reading[V], *, now: float, stale_s: float) -> Checked[V]:
    # A driver's first answer is due within the input's stale limit of its start: until then
    # the input is only not known yet (NO_READING_YET); after it, the device never answered.
    age = now - reading.at
    if reading.reason is BadReason.NO_READING_YET and age > stale_s:
        return Checked(
            None,
            f"stale: no reading in {age:.1f} s since start (limit {stale_s:g} s)",
            BadReason.STALE,
        )
    return Checked(None, f"bad: {reading.why}", reading.reason)


def awaiting_first(checked: Checked[V]) -> bool:
    """True while the input has had no reading yet and its stale limit has not run out since its
    driver started: acted on as bad, but nothing has failed, so no alarm."""
    return checked.reason is BadReason.NO_READING_YET
