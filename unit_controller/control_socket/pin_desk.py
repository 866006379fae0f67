"""The console PIN at the control socket: checked through the shared guard, a lockout raised as
an alarm and taken back when it ends. Refusals are OpErrors for the session that asked."""

from __future__ import annotations

import asyncio
import math
import time

from hal.log import get_logger
from unit_controller.config import UnitConfig
from unit_controller.controller import UnitController
from unit_controller.interlocks import Priority
from unit_controller.pin_guard import PinGuard, PinVerdict

from .protocol import ErrorCode, OpError

log = get_logger(__name__)

PIN_ALARM = "pin_locked_out"


class PinDesk:
    """Unlocks sessions with the PIN; one guard for every session of the daemon."""

    def __init__(self, *, config: UnitConfig, controller: UnitController) -> None:
        self._stored = config.console.pin_hash
        self._controller = controller
        self._guard = PinGuard(
            attempts=config.console.pin_attempts,
            lockout_s=config.console.pin_lockout_s,
            monotonic=time.monotonic,
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def locked_for_s(self) -> float:
        """Seconds the PIN stays locked out (0: it is not)."""
        return self._guard.locked_for_s()

    async def unlock(self, source: str, pin: str) -> None:
        """Return when `pin` is right (or none is configured); OpError saying why not."""
        if self._stored is None:
            return
        verdict = await self._guard.check(pin, self._stored)
        if verdict.ok:
            return
        log.warning(
            "control.wrong_pin",
            source=source,
            wrong_in_a_row=verdict.wrong_in_a_row,
            locked_for_s=round(verdict.locked_for_s),
        )
        if verdict.began_lockout:
            await self._locked_out(verdict)
        if verdict.locked_for_s > 0.0:
            raise OpError(
                ErrorCode.REFUSED,
                f"the PIN is locked out for {math.ceil(verdict.locked_for_s)} s "
                "after too many wrong PINs in a row",
            )
        raise OpError(ErrorCode.REFUSED, "wrong PIN")

    async def _locked_out(self, verdict: PinVerdict) -> None:
        """Say so on the alarm list, and take the alarm back when the lockout ends."""
        log.error("control.pin_locked_out", wrong_in_a_row=verdict.wrong_in_a_row)
        await self._controller.raise_alarm(
            alarm_id=PIN_ALARM,
            tag="console",
            priority=Priority.MEDIUM,
            message=(
                f"{verdict.wrong_in_a_row} wrong console PINs in a row: the PIN is locked out "
                f"for {verdict.locked_for_s:g} s (someone may be guessing it)"
            ),
        )

        async def lift() -> None:
            await asyncio.sleep(verdict.locked_for_s)
            await self._controller.clear_alarm(PIN_ALARM, "console")

        task = asyncio.create_task(lift(), name="pin-lockout")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
