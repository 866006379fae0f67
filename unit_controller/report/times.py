"""Times for people: epoch ms on the unit's clock as local date-time, durations, and the one
elapsed-time axis every plot and list of a report shares.

Pure formatting; never reads the clock of the machine that renders (only its time zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

# A trend shorter than this is drawn in seconds from the start (a smoke batch's few seconds),
# anything longer in minutes.
SECONDS_AXIS_BELOW_S = 180.0


@dataclass(frozen=True)
class TimeAxis:
    """Elapsed time from the batch start, in seconds or minutes, and local date-times."""

    start_ts: int
    unit: str  # "s" or "min"
    tz: tzinfo | None  # None: the local zone of the machine that renders
    one_day: bool  # the batch starts and ends on one local date: lists show the time only

    @classmethod
    def for_span(cls, *, start_ts: int, last_ts: int, tz: tzinfo | None) -> TimeAxis:
        """The axis for a batch from start_ts to last_ts (ms on the unit's clock)."""
        span_s = max(0, last_ts - start_ts) / 1000
        unit = "s" if span_s < SECONDS_AXIS_BELOW_S else "min"
        one_day = _local(start_ts, tz).date() == _local(last_ts, tz).date()
        return cls(start_ts=start_ts, unit=unit, tz=tz, one_day=one_day)

    @property
    def per_ms(self) -> float:
        """Axis units per millisecond."""
        return 1 / 1000 if self.unit == "s" else 1 / 60_000

    def x(self, ts: int) -> float:
        """Where a moment sits on the axis."""
        return (ts - self.start_ts) * self.per_ms

    @property
    def label(self) -> str:
        """The plots' x label, with the start as a local date-time."""
        what = "seconds" if self.unit == "s" else "minutes"
        return f"{what} from batch start ({self.datetime(self.start_ts)})"

    def elapsed(self, ts: int) -> str:
        """The axis position as text (`+85.0 min`), to find a listed moment on the plots."""
        x = self.x(ts)
        return f"{x:+.0f} s" if self.unit == "s" else f"{x:+.1f} min"

    def datetime(self, ts: int) -> str:
        """A full local date-time, `2024-12-05 13:20:00`."""
        return _local(ts, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def moment(self, ts: int) -> str:
        """A moment in a list: the local time only when the batch is within one date."""
        return _local(ts, self.tz).strftime("%H:%M:%S") if self.one_day else self.datetime(ts)

    def zone(self) -> str:
        """The zone the times are shown in, `UTC+01:00`."""
        offset = _local(self.start_ts, self.tz).strftime("%z")
        return f"UTC{offset[:3]}:{offset[3:]}" if offset else "local time"


def duration(ms: int) -> str:
    """A duration for people: `2 h 05 min`, `12 min 30 s`, `4 s`."""
    s = max(0, round(ms / 1000))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {s:02d} s"
    return f"{s} s"


def _local(ts: int, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(ts / 1000, tz).astimezone(tz)
