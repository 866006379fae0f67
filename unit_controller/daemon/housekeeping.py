"""The daemon's monitors beside the scan: the pH calibration due date, the time service's
sync flag, and the journal's retention. Each raises or clears its alarm through the controller.
"""

from __future__ import annotations

import asyncio

from hal.clock import Clock
from hal.log import get_logger
from unit_controller.config import UnitConfig
from unit_controller.controller import UnitController
from unit_controller.interlocks import Priority
from unit_controller.journal.store import Journal
from unit_controller.mqtt.payloads import EpochClock

log = get_logger(__name__)

PH_CALIBRATION_DUE = "ph_calibration_due"
CLOCK_NOT_SYNCHRONIZED = "clock_not_synchronized"
CALIBRATION_POINTS = ("mid", "low", "high")
# How often (real seconds) the due date is looked at, and the journal pruned.
DUE_CHECK_EVERY_S = 60.0
PRUNE_EVERY_S = 6 * 3600.0


class Housekeeping:
    """Watches what is not the process: calibration due, clock sync, journal retention."""

    def __init__(
        self,
        *,
        config: UnitConfig,
        controller: UnitController,
        journal: Journal,
        clock: Clock,
        epoch: EpochClock,
    ) -> None:
        self._config = config
        self._controller = controller
        self._journal = journal
        self._clock = clock
        self._epoch = epoch
        self.ph_due = False
        self.clock_synced: bool | None = None  # None: not known here (no time service)
        self._background: set[asyncio.Task[None]] = set()

    async def check_now(self) -> None:
        """Look at everything once (at start-up, before the unit says it is ready)."""
        await self.update_calibration_due()
        await self.update_clock_sync()

    async def run(self) -> None:
        """Keep looking until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._check_calibration_due(), name="calibration-due")
            group.create_task(self._keep_clock_and_journal(), name="clock-and-journal")

    def calibrated(self) -> None:
        """A calibration was made: it may end the overdue alarm, so look again now. The task is
        kept until it ends (the loop holds only a weak reference) and its failure is logged."""
        task = asyncio.get_running_loop().create_task(
            self.update_calibration_due(), name="calibration-due-now"
        )
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("daemon.task_failed", task=task.get_name(), error=repr(task.exception()))

    async def _check_calibration_due(self) -> None:
        while True:
            try:
                await self.update_calibration_due()
            except Exception:
                log.exception("daemon.calibration_check_failed")
            await asyncio.sleep(DUE_CHECK_EVERY_S)

    async def update_calibration_due(self) -> None:
        """Raise `ph_calibration_due` when the probe is past `[calibration] ph_due_days`."""
        controller, journal, config = self._controller, self._journal, self._config
        if journal.deferred is not None:
            return  # not known until the journal opens (a full disk at start); asked again later
        last = await journal.last_calibration(kind="ph", actions=CALIBRATION_POINTS)
        cleared = await journal.last_calibration(kind="ph", actions=("clear",))
        was_cleared = cleared is not None and (last is None or cleared >= last)
        if was_cleared:
            last = None  # a cleared probe is an uncalibrated one
        now_ms = self._epoch.ms(self._clock.monotonic())
        due_ms = config.calibration.ph_due_days * 86_400_000
        due = last is None or now_ms - last > due_ms
        tag = config.wiring.ph_tag
        if due:
            if last is not None:
                when = f"last calibrated {(now_ms - last) / 86_400_000:.1f} days ago"
            elif was_cleared:
                # Not "never": the journal holds its calibrations, and the tech just cleared it.
                when = "its calibration was cleared"
            else:
                when = "never calibrated"
            await controller.raise_alarm(
                alarm_id=PH_CALIBRATION_DUE,
                tag=tag,
                priority=Priority.LOW,
                message=f"pH probe calibration due ({when}; every "
                f"{config.calibration.ph_due_days:g} days)",
            )
        else:
            await controller.clear_alarm(PH_CALIBRATION_DUE, tag)
        self.ph_due = due

    async def _keep_clock_and_journal(self) -> None:
        pruned_at: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.update_clock_sync()
                due = pruned_at is None or loop.time() - pruned_at >= PRUNE_EVERY_S
                if due and await self._prune_journal():
                    pruned_at = loop.time()
            except Exception:
                log.exception("daemon.housekeeping_failed")
            await asyncio.sleep(self._config.clock.check_every_s)

    async def update_clock_sync(self) -> None:
        """Read the time service's flag; raise or clear `clock_not_synchronized`."""
        flag = self._config.clock.synchronized_flag
        # A stat of a file in /run: no time service means no flag, never a hang.
        if not self._config.clock_sync_required:
            return  # not known here (the simulator, or a unit without a time service): None
        synced = await asyncio.to_thread(flag.exists)
        if synced != self.clock_synced:
            log.info("clock.synchronized" if synced else "clock.unsynchronized", flag=str(flag))
        self.clock_synced = synced
        if synced:
            await self._controller.clear_alarm(CLOCK_NOT_SYNCHRONIZED, "clock")
        else:
            await self._controller.raise_alarm(
                alarm_id=CLOCK_NOT_SYNCHRONIZED,
                tag="clock",
                priority=Priority.LOW,
                message="system clock not synchronised (no time service, or not yet since "
                f"boot: {flag} is missing): fleet commands are checked against it and may "
                "be refused",
            )

    async def _prune_journal(self) -> bool:
        """Apply `[journal]` retention; not while the clock may be wrong (it could wipe it)."""
        if self.clock_synced is False or self._journal.deferred is not None:
            return False
        keep = self._config.journal
        await self._journal.prune(
            now_ms=self._epoch.ms(self._clock.monotonic()),
            keep_days=keep.keep_days,
            keep_batches_days=keep.keep_batches_days,
        )
        return True
