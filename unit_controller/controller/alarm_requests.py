"""Requests on the alarms: acknowledge and reset from people, raise and clear from monitors."""

from __future__ import annotations

from collections.abc import Iterable

from hal.log import get_logger
from unit_controller.controller.core import ControllerCore
from unit_controller.errors import CommandRefused
from unit_controller.interlocks import Priority
from unit_controller.safety_memory import LatchedTrip

log = get_logger(__name__)


class AlarmRequests(ControllerCore):
    """Acknowledge and reset (people), raise and clear (the host's monitors)."""

    async def acknowledge(self, alarm_id: str | None, *, source: str) -> int:
        """Acknowledge one active alarm id (every tag) or all (None); returns how many."""
        async with self._turn():
            self._refuse_unknown_alarm(alarm_id)
            count: int = self.alarms.acknowledge(alarm_id, self.clock.monotonic())
        log.info("alarm.acknowledge_requested", alarm_id=alarm_id, source=source, count=count)
        return count

    async def reset_alarms(self, alarm_id: str | None = None, *, source: str) -> int:
        """Reset latched alarms whose condition has returned; returns how many."""
        async with self._turn():
            self._refuse_unknown_alarm(alarm_id)
            count: int = self.alarms.reset(alarm_id, self.clock.monotonic())
            held = self.alarms.held_latched(alarm_id)
        log.info("alarm.reset_requested", alarm_id=alarm_id, source=source, count=count)
        if held:
            # Not a refusal: what could be reset was (the console goes on to PackML's reset);
            # every answer lists what stays held, and why is logged.
            log.warning("alarm.reset_held", held=held_latched_words(held))
        return count

    def held_latched(self, alarm_id: str | None = None) -> list[str]:
        """The latched alarms a reset leaves while their input cannot be read, as 'id (tag)'."""
        return [f"{alarm} ({tag})" for alarm, tag in self.alarms.held_latched(alarm_id)]

    def reset_leaves(self, alarm_id: str | None = None) -> list[str]:
        """The latching alarms a reset leaves, as 'id (tag): why' (cause still there, not
        acknowledged): "reset 0 alarms" alone read as nothing needing a reset."""
        return [f"{alarm} ({tag}): {why}" for alarm, tag, why in self.alarms.reset_leaves(alarm_id)]

    def _refuse_unknown_alarm(self, alarm_id: str | None) -> None:
        active = sorted({a.alarm_id for a in self.alarms.active()})
        if alarm_id is not None and alarm_id not in active:
            raise CommandRefused(
                f"no alarm {alarm_id!r} is active (active: {', '.join(active) or 'none'})"
            )

    async def raise_alarm(
        self,
        *,
        alarm_id: str,
        tag: str,
        priority: Priority,
        message: str,
        latch: bool = False,
        over: bool = False,
    ) -> None:
        """Raise an alarm from outside the cause-and-effect table (a monitor of the host, the
        journal or the outbox). `over`: its cause is already past; it stays listed until
        acknowledged (and reset, when it latches)."""
        async with self._turn():
            now = self.clock.monotonic()
            self.alarms.raise_alarm(
                alarm_id=alarm_id,
                tag=tag,
                priority=priority,
                now=now,
                latch=latch,
                message=message,
            )
            if over:
                self.alarms.clear(alarm_id, tag, now=now)

    async def restore_latched(self, latched: Iterable[LatchedTrip]) -> None:
        """Take over the latched trips a previous run had not reset: they force their outputs
        and refuse a start until acknowledged and reset, as before the restart."""
        async with self._turn():
            self.alarms.restore_latched(
                ((entry.trip, entry.acked) for entry in latched), now=self.clock.monotonic()
            )

    async def clear_alarm(self, alarm_id: str, tag: str) -> None:
        """The cause of a monitor's alarm has gone (it returns to normal once acknowledged)."""
        async with self._turn():
            self.alarms.clear(alarm_id, tag, now=self.clock.monotonic())


def held_latched_words(held: list[tuple[str, str]]) -> str:
    """Why a reset left these latched alarms, and what to do, in words."""
    named = ", ".join(f"{alarm} ({tag})" for alarm, tag in held)
    inputs = ", ".join(sorted({tag for _, tag in held}))
    return (
        f"{named} stays latched while {inputs} cannot be read: whether its condition has "
        "returned is not known; mend the input, then acknowledge and reset"
    )
