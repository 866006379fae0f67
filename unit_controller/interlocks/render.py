"""The cause-and-effect table for people: Markdown generated from `table.py`.

`python -m unit_controller.interlocks.render > docs/cause-and-effect.md` writes the page the
README links; a test checks the page matches the code.
"""

from __future__ import annotations

from unit_controller.interlocks.effects import SAFE_STATE, Output, describe
from unit_controller.interlocks.table import TABLE, Cause

_HEADER = """\
# Cause and effect

Generated from `unit_controller/interlocks/table.py` by
`python -m unit_controller.interlocks.render`; do not edit by hand (a test checks it).

Every interlock and permissive of the unit, one row each. *Action* is what the PackML machine
does while the row's alarm is active (a row that does not alarm only forces its outputs).
*Latch*: the alarm stays until acknowledged and reset, even after the condition clears; a reset
leaves it latched while a device its cause is judged on reads bad or is lost (its own device, and
TT-101 for the heater and cooling checks; none for a reagent cap, a volume the controller counts).
*Hardware*: whether something outside this software acts on the same cause.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row(number: int, cause: Cause) -> str:
    cells = [
        str(number),
        f"`{cause.name}`",
        _cell(cause.device),
        _cell(cause.condition),
        f"`{cause.alarm_id}` ({cause.priority})",
        _cell(cause.alarms),
        str(cause.action),
        "yes" if cause.latch else "no",
        _cell(describe(cause.forces))
        + (" (not a manual jog into a measuring cylinder)" if cause.cylinder_exempt else ""),
        _cell(cause.hardware),
    ]
    return "| " + " | ".join(cells) + " |"


def render_markdown() -> str:
    """The whole page."""
    lines = [_HEADER]
    lines.append(
        "| # | cause | device | condition | alarm (priority) | alarms when | action | latch "
        "| outputs forced | hardware |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    lines += [_row(number, cause) for number, cause in enumerate(TABLE, start=1)]
    lines += ["", "## Safe state of each output", "", "| output | safe state |", "|---|---|"]
    lines += [f"| {output} | {SAFE_STATE[output]} |" for output in Output]
    lines += [
        "",
        "Besides the table: outside a running batch or manual mode every output is at its "
        "safe state; a failed scan puts each at its own safe state (by the trips last in effect) "
        "and raises `scan_failed`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")
