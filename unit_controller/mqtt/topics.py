"""The unit's MQTT topics under the fleet root (DESIGN §6 table).

Names only: nothing here connects, publishes or decides QoS at run time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of one unit: `<root>/<unit>/...`."""

    root: str
    unit: str

    @property
    def base(self) -> str:
        """`<root>/<unit>`."""
        return f"{self.root}/{self.unit}"

    @property
    def status(self) -> str:
        """Retained `online` / `offline`; also the Last Will."""
        return f"{self.base}/status"

    @property
    def birth(self) -> str:
        """Retained description of the unit, re-sent on every connect."""
        return f"{self.base}/birth"

    @property
    def telemetry(self) -> str:
        """Live process values, every period."""
        return f"{self.base}/telemetry"

    @property
    def backfill(self) -> str:
        """Telemetry replayed from the outbox after an outage, oldest first."""
        return f"{self.base}/backfill"

    @property
    def alarms(self) -> str:
        """Retained list of active alarms."""
        return f"{self.base}/alarms"

    @property
    def events(self) -> str:
        """State and phase changes, alarm transitions and commands."""
        return f"{self.base}/events"

    @property
    def commands(self) -> str:
        """The filter the unit subscribes to for commands (`cmd/<name>`)."""
        return f"{self.base}/cmd/+"

    @property
    def cmd_result(self) -> str:
        """One result for every command received."""
        return f"{self.base}/cmd_result"

    def command_name(self, topic: str) -> str | None:
        """The `<name>` of a `cmd/<name>` topic of this unit, else None."""
        prefix = f"{self.base}/cmd/"
        if not topic.startswith(prefix):
            return None
        return topic[len(prefix) :]
