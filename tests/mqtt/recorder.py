"""MQTT clients for tests: one-shot `publish`, a plain `mqtt_client`, and a `Recorder` that
records every message on a topic filter and reconnects by itself.

Test support only: never starts or stops a broker (broker.py does), and never waits without a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.mqtt.broker import BrokerTls, Mosquitto

CLIENT_TIMEOUT_S = 5.0
RETRY_MIN_S = 0.05  # the recorder's reconnect backoff: short, it is a test on loopback
RETRY_MAX_S = 0.5

Target = Mosquitto | str
"""A started broker, or a URL "mqtt://host:port" (for "mqtts://", pass the client's tls)."""
C = TypeVar("C", bound=aiomqtt.Client)


def _endpoint(
    target: Target, tls: BrokerTls | None, default_cn: str
) -> tuple[str, int, BrokerTls | None]:
    if isinstance(target, Mosquitto):
        if target.tls and tls is None:
            tls = target.client_tls(default_cn)
        return target.host, target.port, tls if target.tls else None
    url = urlsplit(target)
    if url.scheme not in ("mqtt", "mqtts") or url.hostname is None:
        raise ValueError(f"broker URL {target!r}: expected mqtt://host:port or mqtts://host:port")
    if url.scheme == "mqtts" and tls is None:
        raise ValueError(f"{target}: a TLS broker needs the client's BrokerTls")
    port = url.port or (8883 if url.scheme == "mqtts" else 1883)
    return url.hostname, port, tls if url.scheme == "mqtts" else None


def mqtt_client(
    target: Target,
    *,
    identifier: str | None = None,
    clean_session: bool | None = None,
    tls: BrokerTls | None = None,
    cn: str = "test-client",
    timeout: float = CLIENT_TIMEOUT_S,
) -> aiomqtt.Client:
    """An aiomqtt.Client (not yet connected: `async with` it) for a broker or URL.

    On a TLS Mosquitto without `tls`, it gets a certificate with common name `cn`.
    """
    return _client(
        aiomqtt.Client,
        target,
        identifier=identifier,
        clean_session=clean_session,
        tls=tls,
        cn=cn,
        timeout=timeout,
    )


def _client(
    kind: type[C],
    target: Target,
    *,
    identifier: str | None,
    clean_session: bool | None,
    tls: BrokerTls | None,
    cn: str,
    timeout: float,
) -> C:
    host, port, tls = _endpoint(target, tls, cn)
    params = None
    if tls is not None:
        params = aiomqtt.TLSParameters(
            ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file)
        )
    return kind(
        host,
        port,
        identifier=identifier,
        clean_session=clean_session,
        tls_params=params,
        timeout=timeout,
    )


def _encode(payload: bytes | str | dict[str, Any] | list[Any]) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload).encode()


async def publish(
    target: Target,
    topic: str,
    payload: bytes | str | dict[str, Any] | list[Any],
    *,
    retain: bool = False,
    qos: int = 1,
    tls: BrokerTls | None = None,
) -> None:
    """Connect, publish one message (dicts and lists as JSON), wait for its PUBACK, disconnect."""
    async with mqtt_client(target, tls=tls, cn="test-publisher") as client:
        await client.publish(topic, _encode(payload), qos=qos, retain=retain)


@dataclass(frozen=True)
class Received:
    """One message as the recorder got it; `at` is time.monotonic() on arrival."""

    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)


class _SessionClient(aiomqtt.Client):
    """aiomqtt.Client that remembers CONNACK's session-present flag and can drop its link.

    These reach into aiomqtt 2.x internals (`_on_connect`, `_on_disconnect`, `_client`); it is
    pinned <3 in pyproject.
    """

    session_present = False

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        self.session_present = flags.session_present
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        # Cancelled mid-connect (the recorder closing while the broker is away), aiomqtt would
        # ask the cancelled CONNACK future for its exception inside paho's callback.
        if self._connected.cancelled():
            return
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def drop(self) -> None:
        """Send DISCONNECT now; the message iterator then ends with MqttError."""
        self._client.disconnect()


class Recorder:
    """Subscribes to `topic_filter` at QoS 1 and records every message, reconnecting by itself
    (short backoff) whenever the broker goes away, without losing what it recorded.

    `persistent=True` uses clean_session=False with a fixed identifier: the broker keeps the
    subscription and queues QoS 1 messages while the recorder is away (also across a broker
    restart), and it does not resubscribe when the broker says the session is still there (a
    resubscription would replay retained messages). A plain recorder resubscribes on every
    connection and misses what was published while it was away.

        async with Recorder(mosquitto) as rec:
            await rec.wait_for(lambda r: r.topic.endswith("/status") and r.payload == b"online")
    """

    def __init__(
        self,
        target: Target,
        *,
        topic_filter: str = "fleet/v2/#",
        persistent: bool = False,
        identifier: str | None = None,
        tls: BrokerTls | None = None,
    ) -> None:
        self.target = target
        self.topic_filter = topic_filter
        self.persistent = persistent
        self.identifier = identifier or ("test-recorder" if persistent else None)
        self._tls = tls
        self.received: list[Received] = []
        """Every message so far, in arrival order."""
        self.connections = 0
        """How many times it has connected (and subscribed, when needed)."""
        self._may_connect = asyncio.Event()
        self._client: _SessionClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    async def __aenter__(self) -> Recorder:
        """Connect and subscribe; a failure to do so the first time is raised here."""
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._may_connect.set()
        self._task = asyncio.create_task(self._run(first), name=f"Recorder({self.topic_filter})")
        try:
            await first
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Disconnect and stop reconnecting."""
        await self._close()

    async def _close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def connected(self) -> bool:
        """Whether it is connected and subscribed right now (as far as it has noticed)."""
        return self._client is not None

    async def _run(self, first: asyncio.Future[None]) -> None:
        delay = RETRY_MIN_S
        while True:
            await self._may_connect.wait()
            connections = self.connections
            try:
                await self._connection(first)
            except aiomqtt.MqttError as exc:
                if not first.done():
                    first.set_exception(exc)
                    return
            if self.connections > connections:
                delay = RETRY_MIN_S
            if self._may_connect.is_set():
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def _connection(self, first: asyncio.Future[None]) -> None:
        client = _client(
            _SessionClient,
            self.target,
            identifier=self.identifier,
            clean_session=False if self.persistent else None,
            tls=self._tls,
            cn="test-recorder",
            timeout=CLIENT_TIMEOUT_S,
        )
        async with client:
            try:
                if not client.session_present:
                    await client.subscribe(self.topic_filter, qos=1)
                if self._may_connect.is_set():
                    self._client = client
                    self.connections += 1
                    self._notify()
                    if not first.done():
                        first.set_result(None)
                else:
                    client.drop()  # offline() began while this connection was being made
                # On disconnection this yields what is still queued, then raises MqttError.
                async for message in client.messages:
                    self._record(message)
            finally:
                self._client = None
                self._notify()

    def _record(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            payload = str(payload).encode()
        self.received.append(
            Received(
                topic=message.topic.value,
                payload=bytes(payload),
                retain=bool(message.retain),
                at=time.monotonic(),
            )
        )
        self._notify()

    def _notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def _until(
        self, condition: Callable[[], bool], *, within_s: float, failure: Callable[[], str]
    ) -> None:
        """Wait until `condition` holds, re-checking on each message or (dis)connection."""
        assert self._task is not None, "use the Recorder as `async with`"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(failure())
            change: asyncio.Future[None] = loop.create_future()
            self._waiters.add(change)
            try:
                await asyncio.wait(
                    {change, self._task}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                self._waiters.discard(change)
            if self._task.done():
                self._task.result()  # raises what stopped the recorder
                raise AssertionError("the recorder stopped")

    async def wait_for(
        self,
        predicate: Callable[[Received], bool],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 -- the bound is the caller's intent; enforced here
    ) -> Received:
        """The first message (already recorded or still to come) that satisfies `predicate`;
        AssertionError naming the last topics received if none does within `timeout` s."""
        found: list[Received] = []
        seen = 0

        def matched() -> bool:
            nonlocal seen
            found.extend(r for r in self.received[seen:] if predicate(r))
            seen = len(self.received)
            return bool(found)

        await self._until(matched, within_s=timeout, failure=lambda: self._nothing(timeout))
        return found[0]

    async def wait_connected(
        self,
        *,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 -- the bound is the caller's intent; enforced here
    ) -> None:
        """Wait until it is connected, having connected at least `count` times in all."""
        await self._until(
            lambda: self.connected and self.connections >= count,
            within_s=timeout,
            failure=lambda: (
                f"the recorder was not connected ({count} times) within {timeout} s: "
                f"{self.connections} connections, connected={self.connected}, "
                f"broker {self.target!r}"
            ),
        )

    def _nothing(self, timeout: float) -> str:
        last = "\n".join(
            f"  {r.topic}{' (retained)' if r.retain else ''}: {r.payload[:80]!r}"
            for r in self.received[-10:]
        )
        return (
            f"no message on {self.topic_filter} matched within {timeout} s; "
            f"{len(self.received)} received, connected={self.connected}, last:\n{last or '  none'}"
        )

    def on(self, topic_suffix: str) -> list[Received]:
        """Messages whose topic ends with `topic_suffix` at a level boundary ("status", "cmd/x")."""
        suffix = topic_suffix.strip("/")
        return [r for r in self.received if r.topic == suffix or r.topic.endswith("/" + suffix)]

    def json(self, topic_suffix: str) -> list[Any]:
        """The payloads of `on(topic_suffix)`, parsed as JSON."""
        return [r.json() for r in self.on(topic_suffix)]

    async def publish(
        self,
        topic: str,
        payload: bytes | str | dict[str, Any] | list[Any],
        *,
        retain: bool = False,
        qos: int = 1,
    ) -> None:
        """Publish over the recorder's own connection, as a dashboard would (and must, where the
        broker ties the client id to the certificate); waits for the PUBACK."""
        if self._client is None:
            raise AssertionError(f"the recorder is not connected to {self.target!r}")
        await self._client.publish(topic, _encode(payload), qos=qos, retain=retain)

    @contextlib.asynccontextmanager
    async def offline(
        self,
        *,
        disconnect: bool = True,
        timeout: float = 10.0,  # noqa: ASYNC109 -- bounds each wait
    ) -> AsyncIterator[None]:
        """Keep the recorder away from the broker for the block.

        disconnect=True sends DISCONNECT now (a persistent session then queues for it) and, on
        leaving, waits until it has reconnected. disconnect=False leaves it connected but keeps
        it from coming back once the link drops, e.g. around `broker.restart()`; on leaving it
        waits until it is connected (at once if it has not yet noticed a drop).
        """
        self._may_connect.clear()
        count = self.connections
        if disconnect:
            if self._client is not None:
                self._client.drop()
            await self._until(
                lambda: not self.connected,
                within_s=timeout,
                failure=lambda: f"the recorder did not disconnect within {timeout} s",
            )
            count += 1
        try:
            yield
        finally:
            self._may_connect.set()
        await self.wait_connected(count=count, timeout=timeout)
