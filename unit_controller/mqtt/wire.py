"""How the unit's messages look on the broker: topics, payloads, QoS and the Last Will.

The link moves outbox rows and announcements; a wire says what they become. `JsonWire` is the
README's `fleet/v2` topics (DESIGN §6); `mqtt/sparkplug/wire.py` is Sparkplug B.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from unit_controller.mqtt.legacy import flatten_v1_telemetry, is_v1_telemetry
from unit_controller.mqtt.outbox import OutboxRow
from unit_controller.mqtt.topics import Topics

ONLINE = b"online"
OFFLINE = b"offline"


@dataclass(frozen=True, slots=True)
class Publication:
    """One message to publish."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Incoming:
    """A command that arrived: its name, its payload as the command gate reads it; or a
    rebirth asked for (`rebirth`), or a message that is no usable command (`error` says why:
    refused at once, with a cmd_result like any other refusal)."""

    name: str
    payload: bytes
    retained: bool = False
    rebirth: bool = False
    error: str | None = None


class Wire(Protocol):
    """What the link asks of an encoding."""

    @property
    def command_filter(self) -> str:
        """The topic filter the unit's commands arrive on."""
        ...

    def will(self) -> Publication:
        """The Last Will, registered at each connect (call it once per connect attempt)."""
        ...

    def announce(self, session: int) -> list[Publication]:
        """What goes out on every connect and rebirth, in order."""
        ...

    def alarms_update(self) -> Publication:
        """The active alarm list changed."""
        ...

    def stored(self, row: OutboxRow, *, backfill: bool) -> tuple[str, OutboxRow, int]:
        """An outbox row as it is published: (topic, the row with its payload, QoS)."""
        ...

    def incoming(self, topic: str, payload: bytes, *, retained: bool) -> list[Incoming]:
        """What a message on `command_filter` asks, in order: commands, rebirths, refusals."""
        ...

    def offline(self) -> Publication:
        """Said on a clean stop, before disconnecting."""
        ...


class JsonWire:
    """The `<root>/<unit>/...` JSON topics of the README (DESIGN §6)."""

    def __init__(
        self,
        *,
        topics: Topics,
        birth: Callable[[int], bytes],
        alarms: Callable[[], bytes],
        announcements: Callable[[], list[tuple[str, bytes]]] = list,
    ) -> None:
        self._topics = topics
        self._birth = birth
        self._alarms = alarms
        self._announcements = announcements
        # Named once: every stored message asks for its topic.
        self._telemetry = topics.telemetry
        self._backfill = topics.backfill
        self._cmd_result = topics.cmd_result
        self._events = topics.events

    @property
    def command_filter(self) -> str:
        """`<root>/<unit>/cmd/+`."""
        return self._topics.commands

    def will(self) -> Publication:
        """Retained `offline` on `status`."""
        return Publication(self._topics.status, OFFLINE, qos=1, retain=True)

    def announce(self, session: int) -> list[Publication]:
        """`online`, the birth, the alarm list, then Home Assistant's configs: all retained."""
        topics = self._topics
        return [
            Publication(topics.status, ONLINE, retain=True),
            Publication(topics.birth, self._birth(session), retain=True),
            Publication(topics.alarms, self._alarms(), retain=True),
            *(Publication(t, p, retain=True) for t, p in self._announcements()),
        ]

    def alarms_update(self) -> Publication:
        """The retained alarm list."""
        return Publication(self._topics.alarms, self._alarms(), retain=True)

    def stored(self, row: OutboxRow, *, backfill: bool) -> tuple[str, OutboxRow, int]:
        """Telemetry on `telemetry` or `backfill`, events and results on their topics."""
        if row.kind == "telemetry":
            if is_v1_telemetry(row.payload):  # stored before an upgrade to v2
                row = replace(row, payload=flatten_v1_telemetry(row.payload))
            return (self._backfill if backfill else self._telemetry), row, 1
        if row.kind == "cmd_result":
            return self._cmd_result, row, 1
        return self._events, row, 1

    def incoming(self, topic: str, payload: bytes, *, retained: bool) -> list[Incoming]:
        """`cmd/<name>`; an empty payload is how a retained message is cleared: no command."""
        name = self._topics.command_name(topic)
        if name is None or not payload:
            return []
        return [Incoming(name, payload, retained)]

    def offline(self) -> Publication:
        """Retained `offline` on `status`."""
        return Publication(self._topics.status, OFFLINE, qos=1, retain=True)
