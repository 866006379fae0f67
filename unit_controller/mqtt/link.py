"""The connection to the fleet broker: connect, announce, publish the outbox, take commands.

Runs beside the scan and never blocks it: the scan only puts messages in the outbox. A message
leaves the outbox only on its PUBACK; whatever was not acknowledged goes out again on `backfill`.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from paho.mqtt.subscribeoptions import SubscribeOptions

from hal.log import get_logger
from unit_controller.mqtt.commands import MAX_PAYLOAD_BYTES, CommandResult
from unit_controller.mqtt.direct_publisher import DirectPublisher, PublishRefused
from unit_controller.mqtt.outbox import Outbox, OutboxRow
from unit_controller.mqtt.paho_imports import defer_unused_imports
from unit_controller.mqtt.settings import MqttSettings
from unit_controller.mqtt.topics import Topics
from unit_controller.mqtt.window import PublishWindow
from unit_controller.mqtt.wire import JsonWire, Publication, Wire

if TYPE_CHECKING:
    # Imported by `run`, the first time the link connects: aiomqtt with paho is ~15 ms of a
    # start, and READY does not wait for a broker, so a start with MQTT is as quick to READY
    # as one without.
    import aiomqtt

log = get_logger(__name__)

# Messages in flight (published, PUBACK not yet back), live and backlog together; each PUBACK
# frees a slot for the next one. paho keeps the wire order.
WINDOW = 200
# Rows per read of stored messages, and pages read ahead of the one going out: slack for the
# outbox's thread, which a busy machine may leave waiting for a core for tens of milliseconds.
PAGE = WINDOW
READ_AHEAD_PAGES = 3
# Past this many live rows waiting in memory, the live publisher reads them from disk instead.
LIVE_MEMORY_ROWS = 5000
# Drops of an established connection remembered (for the service's flapping alarm).
DROPS_KEPT = 16
# Commands taken off the broker (PUBACKed) and not yet handled, at most: past it one is refused
# at once, so a dashboard in a retry loop cannot grow the daemon without end.
COMMANDS_WAITING_MAX = 1000
# Commands handed to the controller together, in the order received: its scan applies every
# one waiting at its first step, so a burst costs a scan, not a scan a command (a flood of 600
# held an abort behind it for a minute).
COMMANDS_PER_TURN = 100

CommandHandler = Callable[[str, bytes, bool], Awaitable[CommandResult]]
# A message on the command topics refused before any check (name, why, payload): its refusal,
# with the id and sender the payload claims where they can be read.
RefusalHandler = Callable[[str, str, bytes], CommandResult]


def _bare_refusal(name: str, error: str, payload: bytes = b"") -> CommandResult:
    """A refusal with nothing to journal it (a link without a service: tests, tools)."""
    import time

    return CommandResult(id=None, ok=False, error=error, ts=int(time.time() * 1000), command=name)


async def _first_failure(*work: Awaitable[None]) -> None:
    """Run `work` together until one fails; cancel the rest and raise that failure."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    # The backfill ends by itself; the others only by failing. Nothing else returns.


def reconnect_delay(attempt: int, *, low_s: float, high_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: a random delay in the upper half of low·2^attempt."""
    ceiling = min(high_s, low_s * 2 ** min(attempt, 32))
    # Jitter spreads a site's units out after a broker restart instead of a stampede.
    return rng.uniform(ceiling / 2, ceiling)


class FleetLink:
    """Keeps one unit connected to the fleet broker and moves its outbox over the link."""

    def __init__(
        self,
        *,
        settings: MqttSettings,
        topics: Topics,
        client_id: str,
        outbox: Outbox,
        birth: Callable[[int], bytes],
        alarms: Callable[[], bytes],
        on_command: CommandHandler,
        on_refusal: RefusalHandler | None = None,
        rng: random.Random | None = None,
        announcements: Callable[[], list[tuple[str, bytes]]] = list,
        wire: Wire | None = None,
        announcing: Callable[[], None] | None = None,
    ) -> None:
        """`announcements`: more retained (topic, payload) sent after the birth on every
        connect and rebirth (Home Assistant's discovery configs); `wire`: how messages look
        on the broker (default the JSON topics, from `birth`, `alarms` and `announcements`);
        `on_refusal`: the answer to a message that is no command (default: a bare refusal);
        `announcing`: told as each birth goes out (never waited for: a birth is not delayed)."""
        self._announcing = announcing
        self._on_refusal: RefusalHandler = on_refusal or _bare_refusal
        self._settings = settings
        self._address = settings.address
        self._wire: Wire = wire or JsonWire(
            topics=topics, birth=birth, alarms=alarms, announcements=announcements
        )
        self._client_id = client_id
        self._outbox = outbox
        self._on_command = on_command
        self._rng = rng or random.Random()
        self._client: aiomqtt.Client | None = None
        self._live: deque[OutboxRow] = deque()
        self._live_wakeup = asyncio.Event()
        self._live_overflow = False
        self._accepting_live = False
        self._alarms_dirty = asyncio.Event()
        self._rebirth = asyncio.Event()
        self._connected = asyncio.Event()
        self._tried = False
        self._stopping = False
        self.session = 0
        self.connects = 0
        # When (loop time) each connection that was up dropped, newest last: a burst of them
        # is a link that flaps (another client with this unit's id makes the broker drop one
        # for the other, for ever).
        self.drops: deque[float] = deque(maxlen=DROPS_KEPT)
        # The broker's last refusal of a stored message, until a backfill goes out whole.
        self.refused: PublishRefused | None = None
        # Retained and announcement topics (birth, alarms, discovery configs) the broker
        # refused last time, by topic, until one goes out on that topic: not stored, so the
        # link goes on, but the fleet's retained view of the unit is stale.
        self.retained_refused: dict[str, str] = {}
        self.connected_at = 0.0  # loop time the connection now up (or the last one) came up
        # Commands received and not yet handled, oldest first: they outlive the connection that
        # brought them (the broker has its PUBACK; a drop must not lose them unanswered).
        self._commands: deque[tuple[str, bytes, bool]] = deque()
        self._commands_waiting = asyncio.Event()

    # --- what the rest of the unit calls -------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while a connection is up (announced and subscribed)."""
        return self._connected.is_set()

    @property
    def tried(self) -> bool:
        """True once the first connection attempt has ended (connected or failed)."""
        return self._tried

    @property
    def commands_waiting(self) -> int:
        """Commands received from the broker that wait for the ones before them."""
        return len(self._commands)

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for a connection; True if there is one."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def committed(self, rows: list[OutboxRow]) -> None:
        """Rows just committed to the outbox: publish them live while connected."""
        if not self._accepting_live:
            return  # they are on disk: the next connection sends them as backlog
        if len(self._live) + len(rows) > LIVE_MEMORY_ROWS:
            self._live_overflow = True
            self._live.clear()
        else:
            self._live.extend(rows)
        self._live_wakeup.set()

    def alarms_changed(self) -> None:
        """The active alarm list changed: publish the retained list again."""
        self._alarms_dirty.set()

    def rebirth(self) -> None:
        """Send birth (and the retained status and alarms) again, as on a connect."""
        self._rebirth.set()

    # --- the connection loop -------------------------------------------------------------
    async def run(self) -> None:
        """Connect, serve the connection, and reconnect with backoff, until cancelled."""
        defer_unused_imports()
        commands = asyncio.ensure_future(self._handle_commands())
        try:
            await self._connect_again_and_again()
        finally:
            commands.cancel()
            await asyncio.gather(commands, return_exceptions=True)
            self._refuse_waiting(
                "the unit is stopping: send it again, with a new id, once it is back online"
            )

    def _refuse_waiting(self, why: str) -> None:
        """Answer every command still waiting with a refusal: none goes unanswered."""
        waiting, self._commands = self._commands, deque()
        if waiting:
            log.warning("mqtt.commands_refused_waiting", count=len(waiting), reason=why)
        for name, payload, _ in waiting:
            try:
                self._answer(self._on_refusal(name, why, payload))
            except Exception:
                log.exception("mqtt.command_unanswered", command=name)

    async def _connect_again_and_again(self) -> None:
        import aiomqtt

        attempt = 0
        while not self._stopping:
            try:
                await self._connection()
                attempt = 0  # it was up: the next failure starts the backoff afresh
            except Exception as exc:
                if self._stopping:
                    return
                refused = exc if isinstance(exc, PublishRefused) else None
                if refused is None and not isinstance(exc, aiomqtt.MqttError | OSError):
                    # A bug of ours must not end fleet reporting: log it and connect again.
                    log.exception("mqtt.link_failed")
                if self.connects and self.connected and refused is None:
                    attempt = 0
                delay = reconnect_delay(
                    attempt,
                    low_s=self._settings.reconnect_min_s,
                    high_s=self._settings.reconnect_max_s,
                    rng=self._rng,
                )
                if self.connected and refused is None:  # a refusal has its own alarm
                    self.drops.append(asyncio.get_running_loop().time())
                if refused is not None:
                    # Not the network: the broker (its ACL, say) or this unit's topics are wrong,
                    # and only a person can put it right. Nothing is dropped meanwhile.
                    self.refused = refused
                    log.error(
                        "mqtt.publish_refused",
                        topic=refused.topic,
                        reason=refused.reason,
                        kept="the refused message and those after it stay in the outbox",
                    )
                event = "mqtt.disconnected" if self.connected else "mqtt.connect_failed"
                log.warning(
                    event,
                    url=self._address.url,
                    reason=self._address.failure(exc),
                    retry_in_s=round(delay, 2),
                )
                attempt += 1
                self._tried = True
                self._down()
                await asyncio.sleep(delay)
            finally:
                self._down()

    def _down(self) -> None:
        self._connected.clear()
        self._accepting_live = False
        self._live.clear()
        self._live_overflow = False
        self._client = None

    def _new_client(self, password: str | None) -> aiomqtt.Client:
        import aiomqtt

        settings = self._settings
        will = self._wire.will()
        tls = None
        if self._address.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(settings.ca_file) if settings.ca_file else None,
                certfile=str(settings.cert_file) if settings.cert_file else None,
                keyfile=str(settings.key_file) if settings.key_file else None,
            )
        client = aiomqtt.Client(
            self._address.host,
            self._address.port,
            identifier=self._client_id,
            username=settings.username,
            password=password,
            will=aiomqtt.Will(will.topic, will.payload, qos=will.qos, retain=will.retain),
            # MQTT 5: only it can tell a live subscriber that a command was published retained
            # (retain-as-published), which 3.1.1 brokers clear; each connect starts clean.
            protocol=aiomqtt.ProtocolVersion.V5,
            keepalive=settings.keepalive_s,
            timeout=settings.connect_timeout_s,
            tls_params=tls,
            tls_insecure=None,
            # The PublishWindow keeps WINDOW messages in flight; paho's own cap would only add
            # a scan of every message in flight at each PUBACK (0: no cap of its own).
            max_inflight_messages=0,
        )
        # The window's rows (telemetry, events, command results) bypass aiomqtt's pending calls
        # (DirectPublisher); what goes through aiomqtt (birth, status, the retained alarm list)
        # is published one at a time, far below its warning at 10.
        return client

    async def _connection(self) -> None:
        log.info("mqtt.connecting", url=self._address.url, client_id=self._client_id)
        # The password file is read at each connect (it may be rotated), off the event loop.
        password = await asyncio.to_thread(self._settings.password)
        async with self._new_client(password) as client:
            self._client = client
            direct = DirectPublisher(client)
            self.session = await self._outbox.next_session()
            self.connects += 1
            # Live rows committed from here on are published live; up to `backlog_end`,
            # whatever is on disk is the backlog (max_id runs after any commit in progress).
            self._accepting_live = True
            backlog_end = await self._outbox.max_id()
            # Subscribed before `online` goes out: a dashboard that sees the unit online can
            # command it at once.
            await client.subscribe(
                self._wire.command_filter,
                # Retained commands stored at the broker are never sent; one published retained
                # while we listen arrives flagged, and the gate refuses it.
                options=SubscribeOptions(
                    qos=1,
                    retainAsPublished=True,
                    retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND,
                ),
            )
            await self._announce(direct)
            self.connected_at = asyncio.get_running_loop().time()
            self._connected.set()
            self._tried = True
            log.info(
                "mqtt.connected",
                url=self._address.url,
                sess=self.session,
                backlog=self._outbox.pending_count,
            )
            window = PublishWindow(
                client=direct,
                outbox=self._outbox,
                size=WINDOW,
                timeout_s=self._settings.publish_timeout_s,
            )
            try:
                await _first_failure(
                    self._receive(client),
                    self._publish_live(window, after_id=backlog_end),
                    self._backfill(window, up_to_id=backlog_end),
                    self._retained_updates(direct),
                    window.failed(),
                )
            finally:
                await window.close()

    async def _announce(self, client: DirectPublisher) -> None:
        if self._announcing is not None:
            try:
                self._announcing()
            except Exception:
                log.exception("mqtt.announcing_failed")  # a link never stops for it
        self._alarms_dirty.clear()  # the announcement carries the alarm list as it is now
        for message in self._wire.announce(self.session):
            await self._publish_unstored(client, message)

    async def _publish_unstored(self, client: DirectPublisher, message: Publication) -> None:
        """Publish what the outbox does not keep (birth, status, alarms, discovery): a broker
        that refuses it is said (mqtt_publish_refused), and the link goes on."""
        import aiomqtt

        try:
            async with asyncio.timeout(self._settings.publish_timeout_s):
                await client.publish(
                    message.topic, message.payload, message.qos, retain=message.retain
                )
        except PublishRefused as refused:
            if self.retained_refused.get(message.topic) != refused.reason:
                log.error(
                    "mqtt.publish_refused",
                    topic=message.topic,
                    reason=refused.reason,
                    kept="not stored: it goes again at the next change or connect",
                )
            self.retained_refused[message.topic] = refused.reason
            return
        except TimeoutError:
            raise aiomqtt.MqttError(f"no PUBACK for {message.topic} in time") from None
        self.retained_refused.pop(message.topic, None)

    async def _retained_updates(self, client: DirectPublisher) -> None:
        while True:
            wait_alarms = asyncio.ensure_future(self._alarms_dirty.wait())
            wait_birth = asyncio.ensure_future(self._rebirth.wait())
            try:
                await asyncio.wait({wait_alarms, wait_birth}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                wait_alarms.cancel()
                wait_birth.cancel()
            if self._rebirth.is_set():
                self._rebirth.clear()
                await self._announce(client)
                log.info("mqtt.rebirth", sess=self.session)
            if self._alarms_dirty.is_set():
                self._alarms_dirty.clear()
                await self._publish_unstored(client, self._wire.alarms_update())

    async def _receive(self, client: aiomqtt.Client) -> None:
        # Only taken off the client here, at once: its queue goes with it when the link drops.
        async for message in client.messages:
            payload = message.payload
            raw = payload if isinstance(payload, bytes) else str(payload).encode()
            for command in self._wire.incoming(message.topic.value, raw, retained=message.retain):
                if command.rebirth:
                    self.rebirth()
                elif command.error is not None:
                    # No command at all (an NCMD metric of the wrong type): refused as such.
                    self._answer(self._on_refusal(command.name, command.error, b""))
                elif len(command.payload) > MAX_PAYLOAD_BYTES:
                    # Refused before it waits: a flood of large messages must not grow the
                    # daemon by the broker's message size times the queue.
                    self._answer(
                        self._on_refusal(
                            command.name,
                            f"payload is {len(command.payload)} bytes; at most "
                            f"{MAX_PAYLOAD_BYTES} allowed",
                            b"",
                        )
                    )
                elif len(self._commands) >= COMMANDS_WAITING_MAX:
                    self._answer(
                        self._on_refusal(
                            command.name,
                            f"{len(self._commands)} commands from the fleet are waiting to be "
                            "handled: this one is refused; send it again, with a new id, once "
                            "they are",
                            command.payload,
                        )
                    )
                else:
                    self._commands.append((command.name, command.payload, command.retained))
                    self._commands_waiting.set()

    async def _handle_commands(self) -> None:
        """Hand the commands received to the unit, in order, for the link's whole life."""
        while True:
            await self._commands_waiting.wait()
            self._commands_waiting.clear()
            while self._commands:
                turn = [
                    self._commands.popleft()
                    for _ in range(min(COMMANDS_PER_TURN, len(self._commands)))
                ]
                # Started in order: each is checked (its id remembered on the outbox's one
                # worker, first come first served) and queued to the scan before the next.
                handled = [
                    asyncio.ensure_future(self._on_command(name, payload, retained))
                    for name, payload, retained in turn
                ]
                answered = 0
                try:
                    for (name, payload, _), task in zip(turn, handled, strict=True):
                        try:
                            result = await task
                        except Exception as exc:  # a handler must answer; a bug of its own
                            log.exception("mqtt.command_crashed", command=name)
                            result = self._on_refusal(name, f"internal error: {exc!r}", payload)
                        self._answer(result)
                        answered += 1
                except BaseException:
                    # Stopping: what finished is answered; what waits on a scan that will not
                    # come goes back to the queue, which the stop refuses whole.
                    unfinished = []
                    for command, task in list(zip(turn, handled, strict=True))[answered:]:
                        if task.done() and not task.cancelled() and task.exception() is None:
                            self._answer(task.result())
                        else:
                            task.cancel()
                            unfinished.append(command)
                    self._commands.extendleft(reversed(unfinished))
                    raise

    def _answer(self, result: CommandResult) -> None:
        self._outbox.put("cmd_result", result.to_json())

    async def _send_stored(
        self, window: PublishWindow, *, after_id: int, up_to_id: int, backfill: bool
    ) -> tuple[int, int]:
        """Publish the stored rows after_id < id <= up_to_id oldest first, reading pages ahead
        while these go out; (rows put in the window, the last id put)."""
        outbox = self._outbox
        stored = self._wire.stored
        # Pages read and waiting; [] ends them, an exception is the reader's failure.
        pages: asyncio.Queue[list[OutboxRow] | Exception] = asyncio.Queue(READ_AHEAD_PAGES)

        async def read_pages() -> None:
            last = after_id
            try:
                while rows := await outbox.read(after_id=last, up_to_id=up_to_id, limit=PAGE):
                    await pages.put(rows)
                    last = rows[-1].id
            except Exception as exc:
                await pages.put(exc)
                return
            await pages.put([])

        sent, last = 0, after_id
        reader = asyncio.ensure_future(read_pages())
        try:
            while rows := await pages.get():
                if isinstance(rows, Exception):
                    raise rows
                for row in rows:
                    topic, sent_row, qos = stored(row, backfill=backfill)
                    await window.put(topic, sent_row, qos)
                last = rows[-1].id
                sent += len(rows)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        return sent, last

    async def _publish_live(self, window: PublishWindow, *, after_id: int) -> None:
        last = after_id
        while True:
            await self._live_wakeup.wait()
            self._live_wakeup.clear()
            while self._live_overflow:
                # Too much arrived to hold in memory: catch up from disk, then go on live.
                self._live_overflow = False
                newest = await self._outbox.max_id()
                _, last = await self._send_stored(
                    window, after_id=last, up_to_id=newest, backfill=False
                )
            while self._live:
                row = self._live.popleft()
                if row.id > last:
                    topic, sent_row, qos = self._wire.stored(row, backfill=False)
                    await window.put(topic, sent_row, qos)
                    last = row.id

    async def _backfill(self, window: PublishWindow, *, up_to_id: int) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent, _ = await self._send_stored(window, after_id=0, up_to_id=up_to_id, backfill=True)
        if sent:
            await window.drained()
            log.info("mqtt.backfill_done", rows=sent, seconds=round(loop.time() - started, 2))
            # A refused message stays stored, so it was among these: the broker took it now.
            self.refused = None

    # --- a clean stop ----------------------------------------------------------------------
    async def wait_drained(self, timeout_s: float) -> bool:
        """Wait (bounded) until every stored message was acknowledged; True if so."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._outbox.pending_count > 0:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def say_offline(self) -> bool:
        """Publish the retained `offline` status on a clean stop; True if the broker took it."""
        self._stopping = True
        client = self._client
        if client is None or not self.connected:
            return False
        import aiomqtt

        try:
            await _publish(client, self._wire.offline(), timeout_s=self._settings.publish_timeout_s)
        except (aiomqtt.MqttError, OSError) as exc:
            log.warning("mqtt.offline_not_published", reason=str(exc))
            return False
        log.info("mqtt.offline_published")
        return True


async def _publish(client: aiomqtt.Client, message: Publication, *, timeout_s: float) -> None:
    await client.publish(
        message.topic, message.payload, qos=message.qos, retain=message.retain, timeout=timeout_s
    )
