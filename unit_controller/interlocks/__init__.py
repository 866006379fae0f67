"""Interlocks, their monitors and the safety filter (DESIGN §5).

Interlocks report trips and the safety filter forces outputs off; nothing here turns anything on.
"""

from unit_controller.interlocks.heater_verifier import HeaterVerifier
from unit_controller.interlocks.interlocks import Interlocks
from unit_controller.interlocks.ph_response import PhResponseMonitor
from unit_controller.interlocks.readings import Checked, check_analog, check_discrete
from unit_controller.interlocks.safety_filter import SafetyFilter
from unit_controller.interlocks.trip import (
    Force,
    InterlockContext,
    Priority,
    Trip,
    TripAction,
    strongest_action,
)
from unit_controller.interlocks.welded_detector import WeldedSsrDetector

__all__ = [
    "Checked",
    "Force",
    "HeaterVerifier",
    "InterlockContext",
    "Interlocks",
    "PhResponseMonitor",
    "Priority",
    "SafetyFilter",
    "Trip",
    "TripAction",
    "WeldedSsrDetector",
    "check_analog",
    "check_discrete",
    "strongest_action",
]
