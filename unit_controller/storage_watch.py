"""Watches the unit's own storage: when the journal or the outbox cannot write, a
`storage_failing` alarm says what is not being saved; control goes on regardless.

A full or failing disk otherwise shows only as log lines nobody reads on a unit in a field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hal.log import get_logger
from unit_controller.alarms import Alarm
from unit_controller.controller import UnitController
from unit_controller.interlocks import Priority

log = get_logger(__name__)

STORAGE_FAILING = "storage_failing"
CHECK_EVERY_S = 2.0


def _tail(error: str, limit: int = 160) -> str:
    # The reason is at the end ("journal <path>: database or disk is full"); a long path is not.
    return error if len(error) <= limit else "…" + error[-limit:]


def storage_failing(alarms: Iterable[Alarm]) -> bool:
    """True while the storage alarm's cause is in effect (for status and telemetry)."""
    return any(a.alarm_id == STORAGE_FAILING and a.returned_at is None for a in alarms)


@dataclass(frozen=True, slots=True)
class _Store:
    name: str
    error: Callable[[], str | None]  # the last write's failure, None once a write succeeded
    loses: str | Callable[[], str]  # what is not being saved while it fails


class StorageWatch:
    """Raises `storage_failing` for each watched store that cannot write; clears it after."""

    def __init__(self, controller: UnitController) -> None:
        self._controller = controller
        self._stores: list[_Store] = []
        self._failing: dict[str, str] = {}

    def watch(
        self, name: str, error: Callable[[], str | None], *, loses: str | Callable[[], str]
    ) -> None:
        """Watch one store: `error()` is its last write failure (None: writing fine);
        `loses` says (or tells, when called as it fails) what is not being saved."""
        self._stores.append(_Store(name=name, error=error, loses=loses))

    @property
    def failing(self) -> dict[str, str]:
        """The stores that cannot write now, with why."""
        return dict(self._failing)

    async def check(self) -> None:
        """Look at every store once; raise or clear its alarm (one alarm tag per store)."""
        for store in self._stores:
            error = store.error()
            was = self._failing.get(store.name)
            if (error is None) == (was is None):
                continue
            if error is None:
                del self._failing[store.name]
                log.info("storage.recovered", store=store.name)
                await self._controller.clear_alarm(STORAGE_FAILING, store.name)
                continue
            self._failing[store.name] = error
            loses = store.loses if isinstance(store.loses, str) else store.loses()
            log.error("storage.failing", store=store.name, error=error)
            await self._controller.raise_alarm(
                alarm_id=STORAGE_FAILING,
                tag=store.name,
                priority=Priority.HIGH,
                message=(
                    f"the {store.name} cannot write ({_tail(error)}): {loses}; control "
                    "goes on (free space in the state directory)"
                ),
            )

    async def run(self, every_s: float = CHECK_EVERY_S) -> None:
        """Check every `every_s` until cancelled."""
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("storage.check_failed")
            await asyncio.sleep(every_s)
