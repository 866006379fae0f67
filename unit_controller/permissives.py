"""What must hold before a batch may start: inputs readable, E-stop released, no trip in effect.

Pure checks on the process image and the trips; never changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from hal.wiring import BoardWiring
from unit_controller.interlocks import Trip, TripAction
from unit_controller.process_image import ProcessImage


def blocking_trips(trips: Iterable[Trip], *, actions: frozenset[TripAction]) -> list[str]:
    """The trips (as 'alarm_id (tag)') that require one of `actions`, sorted, once each."""
    return sorted({f"{t.alarm_id} ({t.tag})" for t in trips if t.action in actions})


def start_blockers(image: ProcessImage | None, *, wiring: BoardWiring) -> list[str]:
    """Each reason the unit's inputs forbid a start now (empty when it may start)."""
    if image is None:
        return ["no scan has run yet"]
    problems = []
    if not image.temperature.good:
        problems.append(f"{wiring.rtd_tag} temperature is bad ({image.temperature.why})")
    if not image.ph.good:
        problems.append(f"{wiring.ph_tag} pH is bad ({image.ph.why})")
    for point, reading in image.levels.items():
        if not reading.good:
            problems.append(f"{wiring.level_tag(point)} level switch is bad ({reading.why})")
    if not image.estop.good:
        problems.append(f"{wiring.estop_tag} E-stop input is bad ({image.estop.why})")
    elif image.estop.value:
        problems.append(f"{wiring.estop_tag} E-stop is pressed")
    return problems
