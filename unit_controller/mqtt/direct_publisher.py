"""Stored rows handed to paho under an aiomqtt client, each awaiting its own PUBACK, without
aiomqtt's per-publish bookkeeping.

aiomqtt's `publish` lists every call still pending to check a warning threshold, so with a
window of 200 in flight each publish walks ~200 entries: a fifth of a backlog drain's CPU here
(cProfile of `bench --only outbox`). The window waits on nothing else aiomqtt adds: its own
watchdog stands for per-publish timeouts, and a lost connection closes it, which cancels what
is in flight (the rows stay stored and go out again). Unlike aiomqtt, it reads the PUBACK's
reason code: a message the broker refuses (MQTT 5, e.g. 0x87 not authorized by its ACL) is
never counted delivered.

This reaches under aiomqtt 2.x (`Client._client`, the paho client it drives, and paho's
`on_publish`), pinned in deploy/requirements.lock; tests/mqtt cover it against Mosquitto.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiomqtt
    import paho.mqtt.client as paho


class PublishRefused(Exception):
    """The broker answered a stored message with a failure reason code: not delivered, and
    what follows on that topic will be refused alike until the broker or the unit changes."""

    def __init__(self, *, topic: str, reason: str) -> None:
        super().__init__(f"the broker refused a message on {topic}: {reason}")
        self.topic = topic
        self.reason = reason


class DirectPublisher:
    """The window's `Publisher` over the paho client of one connected aiomqtt client; the link
    publishes birth, status and the retained alarm list through it too, to read their PUBACKs'
    reason codes. Publishes made through aiomqtt itself get their PUBACKs passed on to it."""

    def __init__(self, client: aiomqtt.Client) -> None:
        # Loaded with the client (after READY: see link.py), never by importing this module.
        from paho.mqtt.client import MQTT_ERR_SUCCESS

        self._success = MQTT_ERR_SUCCESS
        self._paho: paho.Client = client._client
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, tuple[asyncio.Future[None], str]] = {}
        self._aiomqtt_pending: dict[int, Any] = client._pending_publishes
        self._theirs: Any = self._paho.on_publish  # aiomqtt's (paho types it as a union)
        self._paho.on_publish = self._on_publish

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        entry = self._pending.pop(mid, None)
        if entry is None:
            if self._theirs is not None:
                self._theirs(client, userdata, mid, reason, properties)
            return
        waiting, topic = entry
        if waiting.done():
            return
        # 0x10 (no matching subscribers) is a success; 0x80 and above are refusals.
        if getattr(reason, "is_failure", False):
            waiting.set_exception(PublishRefused(topic=topic, reason=str(reason)))
        else:
            waiting.set_result(None)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        /,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the window's watchdog stands for it)
        retain: bool = False,
    ) -> None:
        """Publish and wait for the PUBACK (at QoS 0, until paho has written it)."""
        import aiomqtt  # loaded with the client this was made from

        info = self._paho.publish(topic, payload, qos, retain)
        if info.rc != self._success:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        if info.is_published():
            return
        if info.mid in self._pending or info.mid in self._aiomqtt_pending:
            # paho's message ids wrapped round to one still awaiting its acknowledgement: an
            # acknowledgement could no longer be told from the other's. The row stays stored.
            raise aiomqtt.MqttError(f"message id {info.mid} is still awaiting its PUBACK")
        waiting = self._loop.create_future()
        entry = (waiting, topic)
        self._pending[info.mid] = entry
        try:
            await waiting
        finally:
            if self._pending.get(info.mid) is entry:
                del self._pending[info.mid]
