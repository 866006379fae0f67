"""Fault specs as typed on the command line: `NAME[:TAG]@MINUTES`, and every bad form refused.

Parsing only; what a fault does to a device is in test_mock_unit.py.
"""

from __future__ import annotations

import pytest

from hal.sim.faults import FaultSpec, parse_fault


def test_parse_fault_reads_name_and_minutes_as_simulated_seconds() -> None:
    assert parse_fault("ssr_welded@12") == FaultSpec(name="ssr_welded", tag=None, at_s=720.0)


def test_parse_fault_reads_a_device_tag_and_fractional_minutes() -> None:
    spec = parse_fault("dosing_pump_stall:P-203@30.5")
    assert spec == FaultSpec(name="dosing_pump_stall", tag="P-203", at_s=1830.0)


def test_parse_fault_accepts_minute_zero_and_surrounding_blanks() -> None:
    assert parse_fault("  estop@0 ") == FaultSpec(name="estop", tag=None, at_s=0.0)


@pytest.mark.parametrize("text", ["ssr_welded@12", "dosing_pump_stall:P-203@30.5", "estop@0"])
def test_fault_spec_prints_as_it_was_typed(text: str) -> None:
    assert str(parse_fault(text)) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("estop", "is not NAME[:TAG]@MINUTES (e.g. ssr_welded@12)"),
        ("estop@", "is not NAME[:TAG]@MINUTES"),
        ("@5", "is not NAME[:TAG]@MINUTES"),
        ("", "is not NAME[:TAG]@MINUTES"),
        ("ESTOP@5", "is not NAME[:TAG]@MINUTES"),
        ("estop@5@6", "is not NAME[:TAG]@MINUTES"),
        ("dosing_pump_stall:@5", "is not NAME[:TAG]@MINUTES"),
        ("dosing_pump_stall:P 203@5", "is not NAME[:TAG]@MINUTES"),
        ("estop@abc", "minutes 'abc' is not a number"),
        ("estop@-1", "minutes must be a finite number >= 0"),
        ("estop@nan", "minutes must be a finite number >= 0"),
        ("estop@inf", "minutes must be a finite number >= 0"),
        ("estop@1_0", "minutes '1_0' is not a plain number"),
        ("estop@1e1", "minutes '1e1' is not a plain number"),
    ],
)
def test_parse_fault_refuses_bad_forms_saying_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="fault") as info:
        parse_fault(text)
    message = str(info.value)
    assert repr(text) in message  # the operator sees what they typed
    assert says in message
