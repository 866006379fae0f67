"""The unit controller (DESIGN §2): the scan of the six steps and the requests on it.

`core` holds its state and events, `scan_cycle` the scan, `commands` the PackML command model,
`alarm_requests` and `manual_requests` what people and monitors ask of it.
"""

from unit_controller.controller.snapshot import PROCESS_STATES, Snapshot
from unit_controller.controller.unit import UnitController

__all__ = ["PROCESS_STATES", "Snapshot", "UnitController"]
