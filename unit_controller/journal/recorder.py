"""Journals what the controller reports: every event, each batch from Execute to its end, and
the batch's trend (a row a second of the unit's clock).

Runs inside the scan as an event listener and watcher: it only buffers rows, never blocks and
never raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hal.log import get_logger
from unit_controller.alarms import BATCH_INTERRUPTED, AlarmEventKind
from unit_controller.cadence import Cadence
from unit_controller.controller.snapshot import Snapshot
from unit_controller.events import AlarmTransition, PhaseStarted, StateChanged, UnitEvent
from unit_controller.journal.store import INTERRUPTED, Journal, JournalError
from unit_controller.machine import State

if TYPE_CHECKING:
    from unit_controller.controller import UnitController
    from unit_controller.mqtt.commands import CommandResult

_ABORTED = frozenset({State.ABORTING, State.ABORTED})
log = get_logger(__name__)

# A batch ends in one of these; the acting states before them (-ING) still finish the record.
FINAL_STATES = frozenset({"COMPLETE", "STOPPED", "ABORTED"})
# One trend row a second of the unit's clock; the whole record now and then besides (phases and
# alarms write it too), so a crash loses at most this much of the per-phase statistics.
TREND_EVERY_S = 1.0
PROGRESS_EVERY_S = 60.0


class JournalRecorder:
    """Listens to a controller and writes its events and batches to the journal."""

    def __init__(
        self,
        *,
        controller: UnitController,
        journal: Journal,
        epoch_ms: Callable[[float], int],
        mark_clock: bool = False,
        keep_safety: bool = True,
    ) -> None:
        """`mark_clock`: journal where the unit's clock stands every second (a sped-up run, whose
        clock is not the wall clock, goes on from there after a restart). `keep_safety`: keep
        the controller's safety memory for the next start (False: a simulation, whose plant is
        not the reactor a daemon on the same state directory restarts on)."""
        self._controller = controller
        self._journal = journal
        self._epoch_ms = epoch_ms
        self._batch_id: int | None = None
        self._last_batch_id: int | None = None
        self._attached = False
        self._pumps: tuple[str, ...] = ()
        self._trend = Cadence(TREND_EVERY_S)
        self._next_progress_s = 0.0
        self._mark_clock = mark_clock
        self._keep_safety = keep_safety
        self._clock_marks = Cadence(TREND_EVERY_S)
        self._safety_json: str | None = None
        self._alarms_moved = True
        self._charged: bool | None = None
        self._aborted: bool | None = None
        self._ended: dict[str, Any] | None = None

    def attach(self) -> None:
        """Start listening to the controller (once; a second call does nothing)."""
        if not self._attached:
            self._controller.listen(self._on_event)
            self._controller.watch(self._on_snapshot)
            self._attached = True

    @property
    def batch_id(self) -> int | None:
        """The journal id of the batch under way (None between batches)."""
        return self._batch_id

    @property
    def ended(self) -> dict[str, Any] | None:
        """The last batch this run ended, as it gave it to the journal (id, final_state,
        end_ts, record): what the journal says once its write is through."""
        return self._ended

    @property
    def last_batch_id(self) -> int | None:
        """The journal id of the batch under way or, between batches, of the last one."""
        return self._last_batch_id

    def close_open_batch(self, final_state: str) -> None:
        """End the batch under way as it stands (a simulation that stops in HELD)."""
        if self._batch_id is None:
            return
        ts_ms = self._epoch_ms(self._controller.clock.monotonic())
        try:
            self._finish(self._batch_id, ts_ms=ts_ms, final_state=final_state)
        except JournalError as exc:
            log.error("journal.record_failed", error=str(exc), text="batch end")

    def _on_event(self, event: UnitEvent) -> None:
        if isinstance(event, AlarmTransition):
            self._alarms_moved = True  # the latched trips a restart keeps may have changed
        ts_ms = self._epoch_ms(event.at)
        try:
            # The change that puts a batch under way is journaled as the batch's; the one that
            # ends it, before the batch is closed, is its too.
            if isinstance(event, StateChanged) and _starts_batch(event):
                self._state_changed(event, ts_ms)
            self._journal.record_event(
                ts_ms=ts_ms, kind=str(event.kind), text=event.text, data=event.data
            )
            if isinstance(event, StateChanged) and not _starts_batch(event):
                self._state_changed(event, ts_ms)
            elif isinstance(event, PhaseStarted | AlarmTransition) and self._batch_id is not None:
                # The record so far, at every phase and alarm: a crash leaves what was done.
                batch = self._controller.batch
                if batch is not None:
                    self._journal.batch_progress(
                        self._batch_id, ts_ms=ts_ms, record=batch.summary(phase_stats=True)
                    )
            if (
                isinstance(event, AlarmTransition)
                and event.alarm_id == BATCH_INTERRUPTED
                and event.transition == AlarmEventKind.RESET
            ):
                self._journal.interrupted_reset()
        except JournalError as exc:
            # The scan goes on without its journal rather than stop over a disk.
            log.error("journal.record_failed", error=str(exc), text=event.text)

    def _state_changed(self, event: StateChanged, ts_ms: int) -> None:
        new = event.new
        controller = self._controller
        if _starts_batch(event):
            if self._batch_id is not None:  # not expected: every batch passes a final state
                self._finish(self._batch_id, ts_ms=ts_ms, final_state=INTERRUPTED)
            loaded = controller.recipe
            pumps = controller.config.wiring.pumps()
            self._pumps = tuple(sorted(pumps))
            self._batch_id = self._journal.batch_started(
                ts_ms=ts_ms,
                recipe=loaded.recipe.name if loaded else "unknown",
                recipe_sha256=loaded.sha256 if loaded else "",
                trend_meta={
                    # The record counts its times (phases, alarms) from here, a scan or two
                    # before Execute: `start_ts`.
                    "record_origin_ts": self._epoch_ms(controller.batch.start_s)
                    if controller.batch is not None
                    else ts_ms,
                    "pumps": list(self._pumps),
                    "reagents": {tag: str(pumps[tag].reagent) for tag in self._pumps},
                    "phases": [p.name for p in loaded.recipe.phases] if loaded else [],
                    "tolerances": [
                        {
                            "temperature_c": p.tolerance_c if p.temperature_c is not None else None,
                            "ph": p.ph.tolerance if p.ph is not None else None,
                        }
                        for p in (loaded.recipe.phases if loaded else ())
                    ],
                },
            )
            self._last_batch_id = self._batch_id
            self._trend.start_at(event.at)
            self._next_progress_s = event.at
        elif new.value in FINAL_STATES and self._batch_id is not None:
            self._finish(self._batch_id, ts_ms=ts_ms, final_state=new.value)

    def _keep_safety_memory(self) -> None:
        # Latched trips and the reactor's charge change rarely: written when they do.
        memory = self._controller.safety_memory().to_json()
        if memory != self._safety_json:
            self._journal.mark_safety(memory)
            self._safety_json = memory

    def _on_snapshot(self, snap: Snapshot) -> None:
        aborted = snap.state in _ABORTED
        if self._keep_safety and (
            self._alarms_moved
            or self._controller.reactor_charged is not self._charged
            or aborted is not self._aborted
        ):
            self._alarms_moved = False
            self._charged = self._controller.reactor_charged
            self._aborted = aborted
            try:
                self._keep_safety_memory()
            except JournalError as exc:
                log.error("journal.record_failed", error=str(exc), text="safety memory")
        if self._mark_clock and self._clock_marks.due(snap.at):
            try:
                self._journal.mark_clock(self._epoch_ms(snap.at))
            except JournalError as exc:
                log.error("journal.record_failed", error=str(exc), text="clock")
        batch_id = self._batch_id
        if batch_id is None or not self._trend.due(snap.at):
            return
        image, targets = snap.image, snap.targets
        batch = self._controller.batch
        totals = batch.reagents_ml if batch is not None else {}
        ts_ms = self._epoch_ms(snap.at)
        try:
            self._journal.trend_row(
                batch_id,
                ts_ms=ts_ms,
                state_no=snap.state_no,
                phase=None if snap.progress is None else snap.progress.number - 1,
                values={
                    "t": image.temperature.value if image.temperature.good else None,
                    "t_sp": targets.temperature_c,
                    "ph": image.ph.value if image.ph.good else None,
                    "ph_sp": targets.ph.setpoint if targets.ph is not None else None,
                    "duty": snap.heater_duty,
                },
                rates_ml_min=[snap.outputs.pumps.get(tag, 0.0) for tag in self._pumps],
                totals_ml=[totals.get(tag, 0.0) for tag in self._pumps],
            )
            if batch is not None and snap.at >= self._next_progress_s:
                self._next_progress_s = snap.at + PROGRESS_EVERY_S
                self._journal.batch_progress(
                    batch_id, ts_ms=ts_ms, record=batch.summary(phase_stats=True)
                )
        except JournalError as exc:
            log.error("journal.record_failed", error=str(exc), text="trend")

    def _finish(self, batch_id: int, *, ts_ms: int, final_state: str) -> None:
        self._batch_id = None
        # The controller finished the record in the acting state just before this one.
        batch = self._controller.batch
        record = batch.summary(phase_stats=True) if batch is not None else {}
        self._ended = {
            "id": batch_id, "final_state": final_state, "end_ts": ts_ms, "record": record
        }  # fmt: skip
        self._journal.batch_finished(batch_id, ts_ms=ts_ms, final_state=final_state, record=record)


def _starts_batch(event: StateChanged) -> bool:
    # Under way once Starting is done: into Execute, or Held at once (a trip at the start).
    return event.old is State.STARTING and event.new in (State.EXECUTE, State.HOLDING)


def record_remote_command(
    journal: Journal, *, source: str, command: str, args: dict[str, object], result: CommandResult
) -> None:
    """A remote (MQTT) command and its result, stamped as its cmd_result (the daemon's and a
    simulated unit's FleetService `on_command`)."""
    journal.record_command(
        ts_ms=result.ts,
        source=source,
        command=command,
        args=args,
        ok=result.ok,
        error=result.error,
        result={"state": result.state, "id": result.id},
    )
