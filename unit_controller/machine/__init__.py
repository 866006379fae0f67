"""The PackML state machine of the unit (states, commands, transition table).

It only changes state and reports; it never does slow work or touches an output.
"""

from unit_controller.machine.packml import (
    ACTING_STATES,
    FINISH,
    MODE_STATES,
    SC,
    STATE_NUMBER,
    TRANSITIONS,
    Command,
    Guard,
    GuardCheck,
    OnChange,
    PackMLMachine,
    State,
    UnitMode,
)

__all__ = [
    "ACTING_STATES",
    "FINISH",
    "MODE_STATES",
    "SC",
    "STATE_NUMBER",
    "TRANSITIONS",
    "Command",
    "Guard",
    "GuardCheck",
    "OnChange",
    "PackMLMachine",
    "State",
    "UnitMode",
]
