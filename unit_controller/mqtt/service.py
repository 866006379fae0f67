"""The fleet service of one unit: outbox, telemetry bridge, broker link and remote commands.

An adapter around the controller (DESIGN §2 step 7): the scan never waits on it, and a broken
broker, disk or payload here never stops control.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from hal.clock import Clock
from hal.log import get_logger
from unit_controller import __version__
from unit_controller.config import UnitConfig
from unit_controller.controller import UnitController
from unit_controller.events import CommandHandled, UnitEvent
from unit_controller.interlocks import Priority
from unit_controller.mqtt.bridge import TelemetryBridge
from unit_controller.mqtt.commands import REMOTE_COMMANDS, CommandGate, CommandResult, shown_name
from unit_controller.mqtt.discovery import discovery_messages
from unit_controller.mqtt.dispatch import CommandDispatcher, handle_command
from unit_controller.mqtt.link import FleetLink
from unit_controller.mqtt.outbox import Outbox
from unit_controller.mqtt.payloads import (
    EpochClock,
    alarms_payload,
    birth_payload,
    encode,
    telemetry_metrics,
)
from unit_controller.mqtt.settings import operators_of
from unit_controller.mqtt.topics import Topics
from unit_controller.recipes.loader import RECIPES_DIR, offered_recipes, recipes_signature

log = get_logger(__name__)

OUTBOX_FILE = "outbox.sqlite3"
DROPPED_ALARM = "telemetry_dropped"
# The connection keeps dropping once up: most often another client with this unit's id (a
# second unit configured with it), which makes the broker drop one for the other, for ever.
FLAPPING_ALARM = "mqtt_link_flapping"
REFUSED_ALARM = "mqtt_publish_refused"
# This many drops of an established connection within FLAPPING_WINDOW_S (real seconds) raise
# it; none for as long (and connected) returns it.
FLAPPING_DROPS = 3
FLAPPING_WINDOW_S = 60.0
# How often the service looks at the outbox for drops (real seconds): drops come only after
# the broker has been away for long, and each look is a wake-up of an otherwise idle process.
MONITOR_EVERY_S = 5.0
# On a stop with the broker away: how long to wait for it before leaving the backlog stored.
RECONNECT_GRACE_S = 3.0


class CommandRecorder(Protocol):
    """Where every remote command and its result is recorded (the journal)."""

    def __call__(
        self, *, source: str, command: str, args: dict[str, Any], result: CommandResult
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class StopReport:
    """How a clean stop went: was everything sent, and did the broker get `offline`."""

    drained: bool
    left: int
    offline_published: bool


class FleetService:
    """Connects one unit's controller to the fleet broker (start with `async with`)."""

    def __init__(
        self,
        *,
        config: UnitConfig,
        controller: UnitController,
        clock: Clock,
        state_dir: Path,
        recipes_dir: Path = RECIPES_DIR,
        wall: Callable[[], float] = time.time,
        on_command: CommandRecorder | None = None,
        clock_synchronized: Callable[[], bool | None] = lambda: None,
        epoch: EpochClock | None = None,
        outbox_thread: ThreadPoolExecutor | None = None,
    ) -> None:
        """`epoch`: the unit's clock for every stamp it writes (the daemon's, shared with the
        journal and the console), so a sped-up simulation never mixes clocks. `outbox_thread`:
        a one-thread executor the outbox shares with other units' (the fleet test rig)."""
        settings = config.mqtt
        self._record_command = on_command
        self._clock_synchronized = clock_synchronized
        self.config = config
        self.settings = settings
        self.controller = controller
        self.topics = Topics(root=settings.root, unit=config.unit.id)
        self.outbox = Outbox(
            path=state_dir / OUTBOX_FILE,
            max_bytes=settings.outbox.max_bytes,
            max_age_s=settings.outbox.max_age_s,
            wall=wall,
            thread=outbox_thread,
        )
        self._recipes_dir = recipes_dir
        self._recipes: list[str] = []
        self._rechecking: asyncio.Task[None] | None = None
        self._recheck_again = False
        self._recipes_signature: tuple[tuple[str, int, int, int], ...] | None = None
        self.epoch = epoch or EpochClock(clock=clock, wall=wall)
        self._clock = clock
        self._metrics = telemetry_metrics(config.wiring)
        self.gate = CommandGate(
            replay=self.outbox,
            max_lifetime_s=settings.command_max_lifetime_s,
            clock_skew_s=settings.command_clock_skew_s,
            wall=wall,
            unit=config.unit.id,
            operators=operators_of(settings),
            allow_unsigned=settings.allow_unsigned,
        )
        wire = None
        if settings.payload == "sparkplug":
            # protobuf only where Sparkplug is asked for: the JSON fleet never pays for it.
            from unit_controller.mqtt.sparkplug.wire import SparkplugWire

            wire = SparkplugWire(
                group=settings.sparkplug_group or config.unit.site,
                node=config.unit.id,
                metrics=self._metrics,
                latest=lambda: self.bridge.latest,
                alarms=self._alarms,
                commands=REMOTE_COMMANDS,
                wall=wall,
            )
        self.link = FleetLink(
            settings=settings,
            topics=self.topics,
            client_id=config.unit.id,
            outbox=self.outbox,
            birth=self._birth,
            alarms=self._alarms,
            on_command=self._command,
            on_refusal=self._refused_unread,
            announcements=self._discovery,
            wire=wire,
            announcing=self._recheck_recipes,
        )
        self.dispatcher = CommandDispatcher(
            controller=controller, on_rebirth=self.link.rebirth, wall=wall
        )
        self.bridge = TelemetryBridge(
            controller=controller,
            outbox=self.outbox,
            epoch=self.epoch,
            period_s=settings.telemetry_period_s,
            session=lambda: self.link.session,
            on_alarms_changed=self.link.alarms_changed,
            clock_synchronized=clock_synchronized,
            link_tried=lambda: self.link.tried,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._dropped_seen = 0
        self._dropped_base = 0  # dropped_total as the standing telemetry_dropped began
        self._set_aside_said: Path | None = None
        self._dropped_alarm = False  # raised by this process and not cleared since
        self._opened = False
        self._flapping_alarm = False
        self._refused_alarm = False
        self._refused_alarm_message: str | None = None

    async def __aenter__(self) -> FleetService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def open(self) -> None:
        """Open the outbox (OutboxError if it cannot be used) and take the controller's events
        into it, publishing nothing yet: a daemon opens before it raises its start-up alarms
        (an interrupted batch), so they go out on `events` too."""
        await self.outbox.open()
        # Until this boot's first connection, what it stores says the session it follows
        # (as after an outage within a run), never 0, which no session is.
        self.link.session = self.link.session or self.outbox.last_session
        self._dropped_seen = self.outbox.dropped_total
        try:
            await self._refresh_recipes()
        except BaseException:
            # `stop` only closes a service that started: the outbox would stay open.
            await self.outbox.close()
            raise
        self.bridge.attach()
        self.controller.listen(self._on_event)
        self._opened = True

    async def start(self) -> None:
        """Open (unless `open` did already), then link and publish."""
        if not self._opened:
            await self.open()
        # Here, not in `open`: after the daemon's start-up alarms, which keep the first-out.
        await self._said_set_aside()
        self._tasks = [
            asyncio.create_task(
                self.outbox.run_flusher(
                    self.link.committed, every_s=self.settings.outbox.commit_every_s
                ),
                name="outbox-flusher",
            ),
            asyncio.create_task(self.link.run(), name="mqtt-link"),
            asyncio.create_task(self._monitor(), name="outbox-monitor"),
        ]
        log.info(
            "mqtt.service_started",
            url=self.settings.address.url,
            unit=self.config.unit.id,
            outbox=str(self.outbox.path),
            backlog=self.outbox.pending_count,
            boot=self.outbox.boot,
        )

    def refuse_commands(self, why: str) -> None:
        """Answer every command from now on with a refusal that says `why` (a unit whose scans
        have stopped can carry none out); not journaled once the journal has closed."""
        self.dispatcher.refusing = why

    async def stop(self, *, drain_timeout_s: float | None = None) -> StopReport:
        """Wait (bounded) for the outbox to drain, publish `offline`, disconnect, close."""
        if not self._tasks:
            if self._opened:
                await self.outbox.close()  # opened, never started: nothing was published
            return StopReport(
                drained=False, left=self.outbox.pending_count, offline_published=False
            )
        self.bridge.final()
        timeout = self.settings.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        drained = False
        # A broker that is away now gets a short grace to come back; the outbox keeps the rest
        # for the next start, so a stop never hangs on a broken network.
        grace = timeout if self.link.connected else min(timeout, RECONNECT_GRACE_S)
        if await self.link.wait_connected(grace):
            drained = await self.link.wait_drained(max(0.0, deadline - loop.time()))
        offline = await self.link.say_offline()
        tasks, self._tasks = self._tasks, []
        if self._rechecking is not None:
            tasks.append(self._rechecking)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.outbox.close()
        left = self.outbox.pending_count
        log.info("mqtt.service_stopped", drained=drained, left=left, offline_published=offline)
        return StopReport(drained=drained and left == 0, left=left, offline_published=offline)

    def _now_ms(self) -> int:
        return self.epoch.ms(self._clock.monotonic())

    def _on_event(self, event: UnitEvent) -> None:
        if isinstance(event, CommandHandled) and event.command == "authority":
            self.link.rebirth()  # the retained birth says whether this unit takes commands

    # --- what the link asks for ------------------------------------------------------------
    async def _refresh_recipes(self, *, rebirth_on_change: bool = False) -> None:
        """What the birth offers: the recipes this unit would run now (files change)."""
        signature, offered = await asyncio.to_thread(self._read_recipes)
        self._recipes_signature = signature
        if offered != self._recipes:
            self._recipes = offered
            if rebirth_on_change:
                self.link.rebirth()  # the birth that just went out offered the old list

    def _read_recipes(self) -> tuple[tuple[tuple[str, int, int, int], ...], list[str]]:
        # The signature first: a file changed while the list is read differs from it at the
        # next look, and is read then.
        signature = recipes_signature(self._recipes_dir)
        return signature, offered_recipes(self.config, self._recipes_dir)

    async def check_recipes(self) -> None:
        """Offer the fleet a recipe file added, edited or removed since the list was read,
        without waiting for a birth: a changed list is born again."""
        signature = await asyncio.to_thread(recipes_signature, self._recipes_dir)
        if signature != self._recipes_signature:
            self._recheck_recipes()

    def _recheck_recipes(self) -> None:
        """A birth goes out: read the recipes again meanwhile (off the loop, never delaying
        it); a change is born again."""
        if self._rechecking is not None and not self._rechecking.done():
            # The read under way may have passed a file changed since: read once more after.
            self._recheck_again = True
            return
        self._rechecking = asyncio.create_task(self._recheck())

    async def _recheck(self) -> None:
        while True:
            self._recheck_again = False
            try:
                await self._refresh_recipes(rebirth_on_change=True)
            except Exception:
                log.exception("mqtt.recipes_unread")
            if not self._recheck_again:
                return

    def _birth(self, session: int) -> bytes:
        unit = self.config.unit
        return encode(
            birth_payload(
                unit=unit.id,
                site=unit.site,
                version=__version__,
                sess=session,
                boot=self.outbox.boot,
                ts=self._now_ms(),
                metrics=self._metrics,
                recipes=self._recipes,
                telemetry_period_s=self.settings.telemetry_period_s,
                commands=REMOTE_COMMANDS,
                clock_synchronized=self._clock_synchronized(),
                authority=self.controller.authority.value,
            )
        )

    def _discovery(self) -> list[tuple[str, bytes]]:
        if not self.settings.discovery:
            return []
        return discovery_messages(
            topics=self.topics,
            prefix=self.settings.discovery_prefix,
            site=self.config.unit.site,
            version=__version__,
        )

    def _alarms(self) -> bytes:
        return encode(
            alarms_payload(self.controller.alarms.active(), ts=self._now_ms(), epoch=self.epoch)
        )

    async def _command(self, name: str, payload: bytes, retained: bool) -> CommandResult:
        # Whatever goes wrong with one message is that message's refusal: the link stays up.
        try:
            return await self._handle(name, payload, retained)
        except Exception as exc:
            log.exception("mqtt.command_crashed", command=shown_name(name))
            return CommandResult(
                id=None,
                ok=False,
                error=f"internal error: {exc!r}",
                ts=self._now_ms(),
                command=shown_name(name),
            )

    async def _handle(self, name: str, payload: bytes, retained: bool) -> CommandResult:
        result = await handle_command(
            gate=self.gate,
            dispatcher=self.dispatcher,
            name=name,
            payload=payload,
            retained=retained,
        )
        # Stamped on the unit's clock, like the events the command caused (a command's own
        # ts/exp were judged on the wall clock by the gate).
        return self._answered(name, payload, replace(result, ts=self._now_ms()))

    def _refused_unread(self, name: str, error: str, payload: bytes = b"") -> CommandResult:
        """A message on the command topics refused before any check (an NCMD metric of the
        wrong type, a queue full or a stop): refused, journaled and reported as any other,
        with the id and sender its payload claims where they can be read."""
        command_id, by, args = self.gate.claims(payload)
        log.warning("command.refused", name=shown_name(name), id=command_id, error=error)
        refused = self.dispatcher.failed(name=name, command_id=command_id, error=error)
        refused = replace(refused, ts=self._now_ms(), by=by, args=args)
        return self._answered(name, payload, refused)

    def _answered(self, name: str, payload: bytes, result: CommandResult) -> CommandResult:
        """Journal a command's result and, for a refusal, report it as an event."""
        name = shown_name(name)  # from the topic: anything at all, bidi overrides included
        self._report(name, payload, result)
        if not result.ok:
            # Accepted commands are reported by the controller; refusals are ours to report.
            self.outbox.put(
                "event",
                encode(
                    {
                        "ts": result.ts,
                        "kind": "command",
                        "text": f"{name} refused: {result.error}",
                        "command": name,
                        "source": f"mqtt:{result.by or '?'}",
                        "id": result.id,
                        "ok": False,
                        "error": result.error,
                    }
                ),
            )
        return result

    def _report(self, name: str, payload: bytes, result: CommandResult) -> None:
        """Hand every command and its result to the journal (when there is one)."""
        if self._record_command is None:
            return
        # The gate parsed the payload once, with its limits; never parse it again here.
        by = result.by or "?"
        try:
            self._record_command(
                source=f"mqtt:{by}", command=name[:64], args=dict(result.args), result=result
            )
        except Exception as exc:
            if self.dispatcher.refusing is not None:
                # Stopping: the journal has closed before the outbox drains (daemon.run).
                log.warning(
                    "mqtt.command_not_journaled", command=name[:64], id=result.id, error=str(exc)
                )
                return
            log.exception("mqtt.command_record_failed", command=name[:64])

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(MONITOR_EVERY_S)
            await self.check_outbox()
            await self.check_link()
            await self.check_refused()
            await self.check_recipes()

    async def check_link(self) -> None:
        """Raise an alarm while the connection keeps dropping once up (FLAPPING_DROPS within
        FLAPPING_WINDOW_S); return it once one connection has stayed up as long (a broker that
        was away and is back has not shown the clash is over)."""
        link = self.link
        now = asyncio.get_running_loop().time()
        recent = [at for at in link.drops if now - at < FLAPPING_WINDOW_S]
        if len(recent) >= FLAPPING_DROPS and not self._flapping_alarm:
            await self.controller.raise_alarm(
                alarm_id=FLAPPING_ALARM,
                tag="mqtt",
                priority=Priority.LOW,
                message=(
                    f"the broker connection dropped {len(recent)} times within "
                    f"{FLAPPING_WINDOW_S:g} s, each time once up: is a second unit configured "
                    f"with [unit] id '{self.config.unit.id}'? The broker drops one client for "
                    "another with the same id (else: the network or the broker)"
                ),
            )
            self._flapping_alarm = True
        elif (
            self._flapping_alarm
            and link.connected
            and now - max(link.connected_at, link.drops[-1] if link.drops else 0.0)
            >= FLAPPING_WINDOW_S
        ):
            await self.controller.clear_alarm(FLAPPING_ALARM, "mqtt")
            self._flapping_alarm = False

    async def check_refused(self) -> None:
        """Raise an alarm while the broker refuses stored messages (it returns once a backfill
        has gone out whole) or retained ones (once each goes out again)."""
        message = self._refused_message()
        if message is not None and message != self._refused_alarm_message:
            await self.controller.raise_alarm(
                alarm_id=REFUSED_ALARM, tag="mqtt", priority=Priority.LOW, message=message
            )
            self._refused_alarm = True
            self._refused_alarm_message = message
        elif message is None and self._refused_alarm:
            await self.controller.clear_alarm(REFUSED_ALARM, "mqtt")
            self._refused_alarm = False
            self._refused_alarm_message = None

    def _refused_message(self) -> str | None:
        refused, retained = self.link.refused, self.link.retained_refused
        acl = (
            f"Does the broker's ACL let unit '{self.config.unit.id}' write under "
            f"{self.config.mqtt.root}"
            + (f" and {self.config.mqtt.discovery_prefix}/" if self.config.mqtt.discovery else "")
            + "? (deploy/mosquitto/acl)"
        )
        if refused is not None:
            return f"{refused}; the messages stay in the outbox. {acl}"
        if retained:
            topic, reason = next(iter(retained.items()))
            more = f" (and {len(retained) - 1} more topics)" if len(retained) > 1 else ""
            return (
                f"the broker refused a retained message on {topic}{more}: {reason}; what the "
                f"fleet holds for this unit there is stale. {acl}"
            )
        return None

    async def _telemetry_dropped(self, message: str) -> None:
        """Raise telemetry_dropped (or bring its message up to date); it returns once the
        outbox is sent (`check_outbox`)."""
        await self.controller.raise_alarm(
            alarm_id=DROPPED_ALARM, tag="outbox", priority=Priority.LOW, message=message
        )
        self._dropped_alarm = True

    async def _said_set_aside(self) -> bool:
        """Raise telemetry_dropped for an outbox file set aside (at open, or damaged since) not
        said yet; whether it did."""
        kept = self.outbox.set_aside
        if kept is None or kept == self._set_aside_said:
            return False
        self._set_aside_said = kept
        await self._telemetry_dropped(
            f"the outbox file was unreadable: kept as {kept.name}, a new one started; "
            "telemetry it held is not sent"
        )
        self._dropped_seen = self.outbox.dropped_total  # its rows are what this says
        self._dropped_base = self._dropped_seen
        return True

    async def check_outbox(self) -> None:
        """Raise an alarm when the outbox dropped messages; return it once the backlog is sent."""
        if await self._said_set_aside():
            return
        dropped = self.outbox.dropped_total
        if dropped > self._dropped_seen:
            if not self._dropped_alarm:
                # Counted from here: the file's lifetime total holds drops said before (in an
                # earlier outage, or an earlier run: 35,831 said 5 s after a restart).
                self._dropped_base = self._dropped_seen
            await self._telemetry_dropped(
                f"{dropped - self._dropped_base} stored messages dropped, oldest first "
                "(telemetry, and any events and command results among them): the outbox "
                "reached its cap while the broker was away"
            )
            self._dropped_seen = dropped
        elif self._dropped_alarm and self.link.connected and self.outbox.pending_count == 0:
            # Only an alarm of ours to clear: a clear takes a turn in the scan, not to be
            # spent every second for nothing.
            await self.controller.clear_alarm(DROPPED_ALARM, "outbox")
            self._dropped_alarm = False
