"""The Atlas Scientific EZO circuit emulators, in one place to import them from.

The shared UART behaviour is in `ezo_circuit`, the pump in `ezo_pmp`, pH and RTD in
`ezo_sensors`.
"""

from hal.sim.emulators.ezo_circuit import EzoEmulator, Firmware
from hal.sim.emulators.ezo_pmp import EzoPmpEmulator
from hal.sim.emulators.ezo_sensors import EzoPhEmulator, EzoRtdEmulator, ProbeHealth

__all__ = [
    "EzoEmulator",
    "EzoPhEmulator",
    "EzoPmpEmulator",
    "EzoRtdEmulator",
    "Firmware",
    "ProbeHealth",
]
