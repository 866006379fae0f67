"""Serial backend: drivers for the unit's EZO circuits and Modbus relay/IO board by stable path.

Never imports `unit_controller`; every driver runs in its own task and never blocks the loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hal.clock import Clock
from hal.serial.ezo_device import EzoDevice
from hal.serial.ezo_link import (
    EzoError,
    EzoGarbage,
    EzoLink,
    EzoLinkError,
    EzoPortLost,
    EzoStatus,
    EzoTimeout,
)
from hal.serial.ezo_ph import (
    CalibrationOrderError,
    CalibrationPoint,
    CalibrationRefused,
    CalibrationResult,
    CalibrationStatus,
    EzoPhProbe,
    Verdict,
)
from hal.serial.ezo_pump import EzoPump
from hal.serial.ezo_rtd import EzoRtd
from hal.serial.reconnect import Backoff
from hal.wiring import BoardWiring

__all__ = [
    "CalibrationOrderError",
    "CalibrationPoint",
    "CalibrationRefused",
    "CalibrationResult",
    "CalibrationStatus",
    "EzoDevice",
    "EzoDevices",
    "EzoError",
    "EzoGarbage",
    "EzoLink",
    "EzoLinkError",
    "EzoPhProbe",
    "EzoPortLost",
    "EzoPump",
    "EzoRtd",
    "EzoStatus",
    "EzoTimeout",
    "Verdict",
    "ezo_devices",
]


@dataclass(frozen=True, slots=True)
class EzoDevices:
    """The unit's EZO circuits: temperature, pH and every dosing pump by tag."""

    rtd: EzoRtd
    ph: EzoPhProbe
    pumps: dict[str, EzoPump]

    def all(self) -> list[EzoDevice]:
        """Every device, for starting their tasks."""
        return [self.rtd, self.ph, *self.pumps.values()]

    async def run(self) -> None:
        """Run every device's task until cancelled."""
        async with asyncio.TaskGroup() as group:
            for device in self.all():
                group.create_task(device.serve(), name=f"ezo:{device.tag}")


def ezo_devices(wiring: BoardWiring, *, clock: Clock, backoff: Backoff | None = None) -> EzoDevices:
    """Build the EZO drivers from the wiring; every EZO device needs its `port`."""
    missing = [
        tag
        for tag, device in wiring.devices.items()
        if device.kind in ("rtd", "ph_probe", "dosing_pump") and not device.port
    ]
    if missing:
        raise ValueError(f"serial backend: no `port` for {', '.join(sorted(missing))}")
    rtd, ph = wiring.rtd(), wiring.ph_probe()
    assert rtd.port is not None
    assert ph.port is not None
    pumps: dict[str, EzoPump] = {}
    for tag, pump in wiring.pumps().items():
        assert pump.port is not None
        pumps[tag] = EzoPump(
            tag=tag,
            path=pump.port,
            clock=clock,
            min_ml_min=pump.min_ml_min,
            max_ml_min=pump.max_ml_min,
            run_bound_min=pump.run_bound_min,
            backoff=backoff,
        )
    return EzoDevices(
        rtd=EzoRtd(
            tag=wiring.rtd_tag, path=rtd.port, clock=clock, stale_s=rtd.stale_s, backoff=backoff
        ),
        ph=EzoPhProbe(
            tag=wiring.ph_tag, path=ph.port, clock=clock, stale_s=ph.stale_s, backoff=backoff
        ),
        pumps=pumps,
    )
