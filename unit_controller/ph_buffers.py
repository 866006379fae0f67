"""Which pH buffer fits which calibration point (DESIGN §4: mid first, then low and high).

Pure rules with no imports of their own: the console checks a typed buffer with them before
it guides a tech through a calibration the controller would refuse at the end.
"""

from __future__ import annotations

import math

PH_MIN, PH_MAX = 0.0, 14.0
MID_BAND = (6.0, 8.0)  # a mid buffer (7.00, 6.86); low below it (4.00), high above (10.00)
BUFFER_C_RANGE = (0.0, 60.0)  # the buffer temperatures a calibration takes
# Where the reactor's own temperature may stand for a buffer's not given: a room's.
ROOM_C_RANGE = (15.0, 30.0)


def buffer_problem(point: str, value: float) -> str | None:
    """Why a buffer of pH `value` cannot calibrate `point` (mid, low, high), or None."""
    if not (math.isfinite(value) and PH_MIN <= value <= PH_MAX):
        return f"buffer pH must be {PH_MIN:g} to {PH_MAX:g}, got {value:g}"
    low, high = MID_BAND
    if point == "mid" and not low <= value <= high:
        return f"a mid buffer must be pH {low:g} to {high:g} (e.g. 7.00), got {value:g}"
    if point == "low" and not value < low:
        return f"a low buffer must be below pH {low:g} (e.g. 4.00), got {value:g}"
    if point == "high" and not value > high:
        return f"a high buffer must be above pH {high:g} (e.g. 10.00), got {value:g}"
    return None
