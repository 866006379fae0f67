"""Calibration at the console: short outcomes (one to three lines) and the live reading line of
the guided pH calibration.

Pure functions of the controller's answers; a figure the answer lacks is left out, not guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from unit_controller.console.text import NONE, Style, clean, fit, wrap

_VERDICTS: Final = {
    "ok": "ok",
    "warn": "usable, but the electrode is ageing: clean it, and replace it soon",
    "refuse": "refused: clean or replace the electrode",
}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _figures(result: Mapping[str, Any], points: Sequence[str] | None) -> str:
    """Offset and the slopes that were measured (a slope needs its point: low acid, high base)."""
    parts = []
    offset = _number(result.get("offset_mv"))
    if offset is not None:
        parts.append(f"offset {offset:+.1f} mV")
    for point, key, name in (("low", "acid_slope_pct", "acid"), ("high", "base_slope_pct", "base")):
        slope = _number(result.get(key))
        if slope is not None and (points is None or point in points):
            parts.append(f"{name} slope {slope:.1f} %")
    return ", ".join(parts)


def _problems(result: Mapping[str, Any]) -> list[str]:
    problems = result.get("problems")
    if not isinstance(problems, list) or not problems:
        return []
    return [fit("  " + "; ".join(clean(p) for p in problems))]


def render_cal_ph(result: Mapping[str, Any], style: Style) -> list[str]:
    """One pH point taken: which, in what buffer, the verdict; offset and slopes; problems."""
    tag = clean(result.get("probe") or "pH probe")
    point = clean(result.get("point") or "point")
    value = _number(result.get("value"))
    temperature = _number(result.get("temperature_c"))
    buffer = f" {value:.2f}" if value is not None else ""
    at = f" at {temperature:.1f} {style.deg_c}" if temperature is not None else ""
    verdict = _VERDICTS.get(str(result.get("verdict")), clean(result.get("verdict") or NONE))
    points = result.get("calibrated_points")
    taken = [clean(p) for p in points] if isinstance(points, list) else None
    second = _figures(result, taken)
    if taken:
        second += f"{'; ' if second else ''}points in: {', '.join(taken)}"
    lines = wrap(f"{tag} {point}{buffer}{at} taken: {verdict}", indent=2)
    if second:  # the figures a tech writes down: wrapped, never cut
        lines.extend(wrap(second, indent=4, first_indent=2))
    return [style.out(line) for line in (*lines, *_problems(result))]


def render_cal_ph_status(result: Mapping[str, Any], style: Style) -> list[str]:
    """The probe's calibration now, in one or two lines."""
    tag = clean(result.get("probe") or "pH probe")
    points = result.get("points")
    if points == 0:
        return [f"{tag} is not calibrated (no points): cal ph walks you through it"]
    verdict = _VERDICTS.get(str(result.get("verdict")), clean(result.get("verdict") or NONE))
    count = f"{clean(points)} point{'' if points == 1 else 's'}"
    # A slope is measured by its point, taken in the EZO's order (mid, low, high): before it
    # the circuit answers its default 100 %, which is not shown as a figure.
    taken = {1: ["mid"], 2: ["mid", "low"]}.get(points) if isinstance(points, int) else None
    figures = _figures(result, taken)
    if points == 1:
        figures += f"{', ' if figures else ''}no slope yet (mid point only)"
    lines = [f"{tag}: {count}, {figures}: {verdict}" if figures else f"{tag}: {count}: {verdict}"]
    return [style.out(line) for line in (*wrap(lines[0], indent=2), *_problems(result))]


def render_cal_ph_clear(result: Mapping[str, Any], style: Style) -> list[str]:
    """The probe's calibration cleared."""
    tag = clean(result.get("probe") or "pH probe")
    return [f"{tag} calibration cleared: it reads uncalibrated until cal ph"]


def render_cal_pump(result: Mapping[str, Any], style: Style) -> list[str]:
    """A pump's volume calibration: the mL measured, and the correction when the answer has it."""
    pump = clean(result.get("pump") or "pump")
    measured = _number(result.get("measured_ml"))
    volume = f"{measured:g} mL" if measured is not None else "the volume measured"
    if result.get("calibrated") is False:
        return [fit(f"{pump} did not take the calibration: dose a known volume, measure it again")]
    line = f"{pump} calibrated to {volume} for its last run"
    nominal = _number(result.get("nominal_ml"))  # newer controllers say what the pump believed
    if nominal and measured is not None:
        change = (measured / nominal - 1.0) * 100.0
        line += f" (it had counted {nominal:g} mL: {change:+.1f} %)"
    return [style.out(fit(line))]


def live_reading(*, ph: float | None, bad: str | None, judgement: str, steady: bool) -> str:
    """The guided calibration's bottom line: the reading now and how steady it is."""
    if ph is None and bad:
        return f"  pH bad ({clean(bad)}): waiting for a good reading "
    if ph is None:
        return f"  pH {NONE}  waiting for the first reading "
    question = ": Enter or y takes it, n waits on: " if steady else " "
    return f"  pH {ph:.3f}  {judgement}{question}"
