"""Journals what the controller reports: every event, and each batch from Execute to its end.

Runs inside the scan as an event listener: it only buffers rows, never blocks and never raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from unit_controller.alarms import BATCH_INTERRUPTED, AlarmEventKind
from unit_controller.events import AlarmTransition, PhaseStarted, StateChanged, UnitEvent
from unit_controller.journal.store import INTERRUPTED, Journal, JournalError
from unit_controller.machine import State

if TYPE_CHECKING:
    from unit_controller.controller import UnitController

log = structlog.get_logger(__name__)

# A batch ends in one of these; the acting states before them (-ING) still finish the record.
FINAL_STATES = frozenset({"COMPLETE", "STOPPED", "ABORTED"})


class JournalRecorder:
    """Listens to a controller and writes its events and batches to the journal."""

    def __init__(
        self,
        *,
        controller: UnitController,
        journal: Journal,
        epoch_ms: Callable[[float], int],
    ) -> None:
        self._controller = controller
        self._journal = journal
        self._epoch_ms = epoch_ms
        self._batch_id: int | None = None
        self._attached = False

    def attach(self) -> None:
        """Start listening to the controller (once; a second call does nothing)."""
        if not self._attached:
            self._controller.listen(self._on_event)
            self._attached = True

    @property
    def batch_id(self) -> int | None:
        """The journal id of the batch under way (None between batches)."""
        return self._batch_id

    def _on_event(self, event: UnitEvent) -> None:
        ts_ms = self._epoch_ms(event.at)
        try:
            self._journal.record_event(
                ts_ms=ts_ms, kind=str(event.kind), text=event.text, data=event.data
            )
            if isinstance(event, StateChanged):
                self._state_changed(event, ts_ms)
            elif isinstance(event, PhaseStarted | AlarmTransition) and self._batch_id is not None:
                # The record so far, at every phase and alarm: a crash leaves what was done.
                batch = self._controller.batch
                if batch is not None:
                    self._journal.batch_progress(
                        self._batch_id, record=batch.summary(phase_stats=True)
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
        old, new = event.old, event.new
        controller = self._controller
        # Under way once Starting is done: into Execute, or Held at once (a trip at the start).
        if old is State.STARTING and new in (State.EXECUTE, State.HOLDING):
            if self._batch_id is not None:  # not expected: every batch passes a final state
                self._finish(self._batch_id, ts_ms=ts_ms, final_state=INTERRUPTED)
            loaded = controller.recipe
            self._batch_id = self._journal.batch_started(
                ts_ms=ts_ms,
                recipe=loaded.recipe.name if loaded else "unknown",
                recipe_sha256=loaded.sha256 if loaded else "",
            )
        elif new.value in FINAL_STATES and self._batch_id is not None:
            self._finish(self._batch_id, ts_ms=ts_ms, final_state=new.value)

    def _finish(self, batch_id: int, *, ts_ms: int, final_state: str) -> None:
        self._batch_id = None
        # The controller finished the record in the acting state just before this one.
        batch = self._controller.batch
        record = batch.summary(phase_stats=True) if batch is not None else {}
        self._journal.batch_finished(batch_id, ts_ms=ts_ms, final_state=final_state, record=record)
