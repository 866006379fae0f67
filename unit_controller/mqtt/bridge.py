"""Turns the controller's snapshots and events into outbox messages: telemetry and events.

Runs inside the scan's watcher and listener calls, so it only formats and buffers: it never
waits on the disk or the network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unit_controller.cadence import Cadence
from unit_controller.controller import Snapshot, UnitController
from unit_controller.events import EventKind, UnitEvent
from unit_controller.mqtt.outbox import Outbox
from unit_controller.mqtt.payloads import (
    EpochClock,
    LinkFigures,
    TelemetryHeader,
    encode,
    event_payload,
    telemetry_payload,
)
from unit_controller.storage_watch import storage_failing

# Controller seconds a cold start's telemetry waits for the link's first connection attempt.
FIRST_CONNECT_GRACE_S = 5.0


class TelemetryBridge:
    """Every `period_s` of controller time, one telemetry message; every event, one event."""

    def __init__(
        self,
        *,
        controller: UnitController,
        outbox: Outbox,
        epoch: EpochClock,
        period_s: float,
        session: Callable[[], int],
        on_alarms_changed: Callable[[], None],
        clock_synchronized: Callable[[], bool | None] = lambda: None,
        link_tried: Callable[[], bool] = lambda: True,
    ) -> None:
        """`link_tried`: True once the link's first connection attempt has ended either way."""
        self._controller = controller
        self._link_tried = link_tried
        self._outbox = outbox
        self._epoch = epoch
        self._session = session
        self._on_alarms_changed = on_alarms_changed
        self._clock_synchronized = clock_synchronized
        self._pumps = sorted(controller.config.wiring.pumps())
        self._cadence = Cadence(period_s)
        self._hold_until: float | None = None
        self.seq = 0  # the next telemetry message's number: 0, 1, 2, ... for this process
        self.latest: dict[str, Any] | None = None  # the last telemetry message (a birth's values)

    def attach(self) -> None:
        """Start receiving the controller's snapshots and events."""
        self._controller.watch(self._on_snapshot)
        self._controller.listen(self._on_event)

    def _on_snapshot(self, snap: Snapshot) -> None:
        # A cold start's first message waits (bounded) for the first connection, so it goes out
        # live on `telemetry`, not replayed on `backfill` a moment later.
        if not self._cadence.started and not self._link_tried():
            if self._hold_until is None:
                self._hold_until = snap.at + FIRST_CONNECT_GRACE_S
            if snap.at < self._hold_until:
                return
        if not self._cadence.due(snap.at):
            return
        self._put(snap)

    def final(self) -> None:
        """One more message with the last snapshot, off the cadence: a unit that stops says
        where it stopped (a service stop aborts a batch a moment before the unit goes offline,
        and a dashboard keeps the last state it was told)."""
        snap = self._controller.snapshot
        if snap is not None:
            self._put(snap)

    def _put(self, snap: Snapshot) -> None:
        outbox = self._outbox
        alarms = self._controller.alarms.active()
        payload = telemetry_payload(
            snap,
            header=TelemetryHeader(
                ts=self._epoch.ms(snap.at), seq=self.seq, sess=self._session(), boot=outbox.boot
            ),
            figures=LinkFigures(
                alarms_active=len(alarms),
                outbox_backlog=outbox.pending_count,
                outbox_dropped=outbox.dropped_total,
                reagents_ml=self._controller.reagents_ml,
                clock_synchronized=self._clock_synchronized(),
                storage_failing=storage_failing(alarms),
            ),
            pumps=self._pumps,
        )
        self.latest = payload
        outbox.put("telemetry", encode(payload))
        self.seq += 1

    def _on_event(self, event: UnitEvent) -> None:
        self._outbox.put("event", encode(event_payload(event, epoch=self._epoch)))
        if event.kind is EventKind.ALARM:
            self._on_alarms_changed()
