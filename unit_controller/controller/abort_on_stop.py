"""A batch under way when the process running it stops (a service stop, Ctrl-C on a sim):
aborted through the machine, so its record ends as aborted by the stop, not as a crash; and
manual mode ended the same way, so what it still ran is journaled as stopped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from unit_controller.controller.snapshot import PROCESS_STATES
from unit_controller.controller.unit import UnitController
from unit_controller.machine import State

# Scans a stop may take to walk a batch through Aborting to Aborted.
STOP_SCANS = 10
_UNDER_WAY = PROCESS_STATES | {State.STARTING, State.COMPLETING}


async def abort_on_stop(
    controller: UnitController, *, source: str, reason: str, scan: Callable[[], Awaitable[object]]
) -> None:
    """End manual mode, if on (what it still ran is journaled as stopped by the stop), abort
    the batch under way, if any, and `scan` until the abort has settled (at most STOP_SCANS
    scans); raises what the command or a scan raises."""
    if controller.manual:
        await controller.set_manual(False, source=f"{source} ({reason})")
        await scan()
    if controller.machine.state not in _UNDER_WAY:
        return
    await controller.command("abort", source=source, reason=reason)
    for _ in range(STOP_SCANS):
        if not controller.machine.is_acting:
            break
        await scan()
