"""The unit's status as the console shows it: one plain dict built from a scan's snapshot.

Pure formatting of what the scan saw; never changes anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hal.reading import Reading
from unit_controller.batch.phase_runner import progress_dict
from unit_controller.controller import Snapshot
from unit_controller.machine import UnitMode
from unit_controller.mqtt.payloads import LEVEL_KEYS


def _value(reading: Reading[Any], digits: int) -> float | None:
    if not reading.good or reading.value is None:
        return None
    return round(float(reading.value), digits)


def status_dict(
    snap: Snapshot | None,
    *,
    unit: str,
    site: str,
    manual: bool,
    unit_mode: UnitMode,
    manual_running: Sequence[str],
    batch_id: int | None,
    manual_last_stop: str | None = None,
    alarms_active: int,
    reagents_ml: Mapping[str, float],
    ph_calibration_due: bool,
    clock_synchronized: bool | None = None,
    storage_failing: bool = False,
    authority: str = "local",
    ts: int | None = None,
    reactor_charged: bool = False,
    pin_locked_s: float = 0.0,
) -> dict[str, Any]:
    """Everything `status` answers; values the unit does not know (yet) are None.

    `ts` is the snapshot's time on the unit's clock (epoch ms), the one every stamp uses.
    """
    out: dict[str, Any] = {
        "ts": ts,
        "unit": unit,
        "site": site,
        "manual": manual,
        # what manual mode runs now (jogs, a heater run): stopped if the session that turned
        # manual mode on ends
        "manual_running": list(manual_running),
        # in manual mode: why its last action ended early (a trip, the manual limit), if one did
        "manual_last_stop": manual_last_stop,
        # the mode now, not as of the last scan: a mode change shows at once
        "unit_mode": unit_mode.value,
        "UnitModeCurrent": unit_mode.number,
        "batch_id": batch_id,
        "alarms_active": alarms_active,
        "ph_calibration_due": ph_calibration_due,
        "clock_synchronized": clock_synchronized,
        "storage_failing": storage_failing,
        # now, not as of the last scan, like the unit mode
        "authority": authority,
        # the reactor may hold acid or reactive liquor: the N2 purge's safe state is open
        "reactor_charged": reactor_charged,
        # seconds the PIN stays locked out after too many wrong ones (0: it may be tried)
        "pin_locked_s": round(pin_locked_s, 1),
        "reagents_ml": {tag: round(ml, 1) for tag, ml in sorted(reagents_ml.items())},
    }
    if snap is None:
        return (
            out
            | {"state": None, "state_no": None, "phase": None, "recipe": None}
            | (progress_dict(None))
        )
    image, targets, outputs = snap.image, snap.targets, snap.outputs
    bad = {
        name: reading.why or "bad"
        for name, reading in (("temperature_c", image.temperature), ("ph", image.ph))
        if not reading.good
    }
    levels: dict[str, bool | None] = {}
    for point, key in LEVEL_KEYS.items():
        reading = image.level(point)
        name = key.removeprefix("level_")
        levels[name] = reading.value if reading.good else None
        if not reading.good:
            bad[key] = reading.why or "bad"
    return out | {
        "state": snap.state.value,
        "state_no": snap.state_no,
        "StateCurrent": snap.state_no,  # the PackTags name, for tools that speak PackML
        "phase": snap.phase,
        **progress_dict(snap.progress),
        "recipe": snap.recipe,
        "awaiting_confirmation": snap.awaiting_confirmation,
        "temperature_c": _value(image.temperature, 2),
        "temperature_sp_c": targets.temperature_c,
        "ph": _value(image.ph, 3),
        "ph_sp": targets.ph.setpoint if targets.ph is not None else None,
        "levels": levels,
        "estop_pressed": image.estop.value if image.estop.good else None,
        "heater_duty": round(snap.heater_duty, 3),
        "outputs": {
            "heater_on": outputs.heater_on,
            "contactor": outputs.contactor,
            "agitator": outputs.agitator,
            "fill_pump": outputs.fill_pump,
            "drain_valve": outputs.drain_valve,
            "purge_valve": outputs.purge_valve,
            "cooling_valve": outputs.cooling_valve,
        },
        "pumps_ml_min": {tag: round(rate, 2) for tag, rate in sorted(outputs.pumps.items())},
        # `outputs` is what the controller commands; these are the ones not known to obey it.
        "output_faults": dict(sorted(image.output_faults.items())),
        "bad": bad,
    }
