"""The unit controller: the scan and every request on it, one class (DESIGN §2)."""

from __future__ import annotations

from unit_controller.controller.alarm_requests import AlarmRequests
from unit_controller.controller.commands import CommandModel
from unit_controller.controller.manual_requests import ManualRequests
from unit_controller.controller.scan_cycle import ScanCycle


class UnitController(ScanCycle, CommandModel, AlarmRequests, ManualRequests):
    """Owns the scan and the command model of one unit.

    Requests from every source (MQTT, control socket, console, simulator) go through its
    methods, which take the controller's own lock: none lands between two steps of a scan.
    """
