"""Control loops: heater PID, SSR time proportioning, pH dosing (DESIGN §4).

Pure computations on explicit values and times: nothing here reads a clock or touches a device.
"""

from unit_controller.control.heater_pid import HeaterPid
from unit_controller.control.ph_dosing import (
    DosePlan,
    PhDosingController,
    neutralising_rate_ml_min,
)
from unit_controller.control.time_proportioning import TimeProportioner

__all__ = [
    "DosePlan",
    "HeaterPid",
    "PhDosingController",
    "TimeProportioner",
    "neutralising_rate_ml_min",
]
