"""Control loops: temperature PID with jacket cooling, SSR time proportioning, pH dosing, the
heat exothermic doses may release, and the plain on/off baseline (DESIGN §4).

Pure computations on explicit values and times: nothing here reads a clock or touches a device.
"""

from unit_controller.control.heater_pid import HeaterPid
from unit_controller.control.on_off import OnOff
from unit_controller.control.ph_dosing import (
    DosePlan,
    PhDose,
    PhDosingController,
)
from unit_controller.control.process import neutralising_rate_ml_min
from unit_controller.control.time_proportioning import TimeProportioner

__all__ = [
    "DosePlan",
    "HeaterPid",
    "OnOff",
    "PhDose",
    "PhDosingController",
    "TimeProportioner",
    "neutralising_rate_ml_min",
]
