"""Progress lines for a person watching a simulated batch: events, and status now and then.

Only formats and writes text; never changes the run.
"""

from __future__ import annotations

from typing import TextIO

from hal.wiring import LevelPoint
from unit_controller.controller import Snapshot
from unit_controller.events import EventKind, UnitEvent

_LEVEL_NAMES = {
    LevelPoint.LOW_LOW: "LSLL",
    LevelPoint.LOW: "LSL",
    LevelPoint.HIGH: "LSH",
    LevelPoint.HIGH_HIGH: "LSHH",
}


def clock_text(seconds: float) -> str:
    """Simulated time as H:MM:SS."""
    whole = int(max(0.0, seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class ProgressPrinter:
    """Writes one line per event and a status line when asked."""

    def __init__(self, *, out: TextIO, start: float) -> None:
        self._out = out
        self._start = start

    def event(self, event: UnitEvent) -> None:
        """One line for a state, phase, alarm, prompt or command event."""
        marks = {
            EventKind.STATE: "state",
            EventKind.PHASE: "phase",
            EventKind.ALARM: "ALARM",
            EventKind.PROMPT: "prompt",
            EventKind.COMMAND: "cmd",
        }
        self._write(event.at, f"{marks[event.kind]:>6}  {event.text}")

    def note(self, at: float, text: str) -> None:
        """A free line (fault injected, auto-confirmation)."""
        self._write(at, f"{'note':>6}  {text}")

    def status(self, snap: Snapshot, *, active_alarms: list[str]) -> None:
        """The state of the unit now."""
        image, targets = snap.image, snap.targets
        t = image.temperature
        t_text = f"{t.value:6.2f} °C" if t.good and t.value is not None else "  BAD    "
        if targets.temperature_c is not None:
            t_text += f" (sp {targets.temperature_c:.1f})"
        ph = image.ph
        ph_text = f"{ph.value:6.3f}" if ph.good and ph.value is not None else "  BAD "
        if targets.ph is not None:
            ph_text += f" (sp {targets.ph.setpoint:.2f})"
        wet = [name for point, name in _LEVEL_NAMES.items() if image.wet(point)]
        level = f"≥{wet[-1]}" if wet else "<LSLL"
        alarms = ", ".join(active_alarms) if active_alarms else "none"
        self._write(
            snap.at,
            f"{'':>6}  {snap.state:<10} {snap.phase or '-':<15} T {t_text:<20} "
            f"pH {ph_text:<15} level {level:<6} heater {snap.heater_duty:4.0%}  "
            f"alarms: {alarms}",
        )

    def _write(self, at: float, text: str) -> None:
        self._out.write(f"[{clock_text(at - self._start)}] {text}\n")
        self._out.flush()
