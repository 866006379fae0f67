"""`unit-controller fleet`: subscribe to a broker and show every unit under a topic root.

Live: a table redrawn every second (alarms first), reconnecting while the broker is away.
`--once`: one snapshot when the retained messages are in and each online unit has reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiomqtt

from hal.log import get_logger
from unit_controller.fleet.render import render
from unit_controller.fleet.view import FleetView, lag_figures
from unit_controller.mqtt.address import BrokerAddress

log = get_logger(__name__)

EXIT_NO_BROKER = 1
# --once: the retained messages come at once on subscribing; this long at least for them.
SETTLE_S = 0.3
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """How to reach the broker and what to show."""

    address: BrokerAddress
    root: str
    once: bool = False
    as_json: bool = False
    # --once: the longest wait for every online unit's telemetry; longer than STALE_PERIODS of
    # the usual 1 s, so that a unit silent through it is judged stale, not left "online".
    wait_s: float = 4.0
    refresh_s: float = 1.0
    connect_timeout_s: float = 10.0
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    keepalive_s: int = 30
    stats_file: Path | None = None  # live: lag and counts written at every refresh


def _tls(options: FleetOptions) -> ssl.SSLContext | None:
    if not options.address.tls:
        return None
    context = ssl.create_default_context(cafile=options.ca_file)
    if options.cert_file is not None:
        context.load_cert_chain(options.cert_file, options.key_file)
    return context


def _client(options: FleetOptions) -> aiomqtt.Client:
    password = None
    if options.password_file is not None:
        password = options.password_file.read_text().strip()
    return aiomqtt.Client(
        options.address.host,
        options.address.port,
        tls_context=_tls(options),
        username=options.username,
        password=password,
        keepalive=options.keepalive_s,
        timeout=options.connect_timeout_s,
    )


async def _pump(client: aiomqtt.Client, view: FleetView) -> None:
    """Feed every message to the view until the connection ends."""
    clock, wall = time.monotonic, time.time
    async for message in client.messages:
        payload = message.payload
        raw = payload if isinstance(payload, bytes) else str(payload).encode()
        view.ingest(message.topic.value, raw, now=clock(), wall=wall())


async def _subscribe(client: aiomqtt.Client, view: FleetView) -> None:
    await client.subscribe([(topic, 1) for topic in view.subscriptions])


async def snapshot(options: FleetOptions) -> FleetView:
    """Connect, take the retained state and one round of telemetry, disconnect."""
    view = FleetView(options.root)
    async with _client(options) as client:
        await _subscribe(client, view)
        reader = asyncio.create_task(_pump(client, view))
        try:
            started = time.monotonic()
            while True:
                await asyncio.sleep(0.05)
                spent = time.monotonic() - started
                if reader.done():
                    reader.result()  # the connection ended: its error
                    break
                if spent >= options.wait_s:
                    break
                waiting = [
                    u for u in view.units.values() if u.status == "online" and u.telemetry is None
                ]
                if spent >= SETTLE_S and not waiting:
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await reader
    return view


def _print_once(view: FleetView, options: FleetOptions, out: TextIO) -> None:
    now = time.monotonic()
    if options.as_json:
        out.write(json.dumps(view.snapshot(now=now)) + "\n")
    else:
        title = f"{options.address.url} {options.root}"
        out.write(render(view.rows(now=now), title=title) + "\n")
    out.flush()


async def live(options: FleetOptions, out: TextIO, stop: asyncio.Event) -> None:
    """Redraw every `refresh_s` until `stop`; reconnect while the broker is away."""
    view = FleetView(options.root)
    away: list[str] = []  # why the broker is away now, if it is
    drawer = asyncio.create_task(_draw_loop(view, options, out, stop, away))
    delay = RECONNECT_MIN_S
    try:
        while not stop.is_set():
            try:
                async with _client(options) as client:
                    await _subscribe(client, view)
                    away.clear()
                    delay = RECONNECT_MIN_S
                    log.info("fleet.connected", url=options.address.url, root=options.root)
                    pump = asyncio.create_task(_pump(client, view))
                    waiter = asyncio.create_task(stop.wait())
                    done, _ = await asyncio.wait(
                        {pump, waiter}, return_when=asyncio.FIRST_COMPLETED
                    )
                    waiter.cancel()
                    if pump in done:
                        pump.result()
                    else:
                        pump.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await pump
            except (aiomqtt.MqttError, OSError) as exc:
                away[:] = [options.address.failure(exc)]
                log.warning("fleet.broker_away", url=options.address.url, reason=away[0])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay * random.uniform(0.8, 1.2))
                delay = min(RECONNECT_MAX_S, delay * 2)
    finally:
        drawer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drawer


async def _draw_loop(
    view: FleetView, options: FleetOptions, out: TextIO, stop: asyncio.Event, away: list[str]
) -> None:
    tty = out.isatty()
    while not stop.is_set():
        now = time.monotonic()
        lags = lag_figures(list(view.lags_s))
        view.lags_s.clear()
        if options.as_json:
            out.write(json.dumps(view.snapshot(now=now)) + "\n")
        else:
            title = f"{options.address.url} {options.root}"
            if away:
                title += f" (broker away: {away[0]}; showing what was last heard)"
            elif lags["p99_s"] is not None:
                title += f" (lag p99 {lags['p99_s']:.2f} s)"
            height = shutil.get_terminal_size((120, 40)).lines if tty else 0
            table = render(view.rows(now=now), title=title, height=height)
            out.write(("\x1b[H\x1b[2J" if tty else "\n") + table + "\n")
        out.flush()
        if options.stats_file is not None:
            stats = _stats(view, lags, connected=not away)
            await asyncio.to_thread(_write_stats, options.stats_file, stats)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), options.refresh_s)


def _stats(view: FleetView, lags: dict[str, Any], *, connected: bool) -> dict[str, Any]:
    return {
        "at": time.time(),
        "connected": connected,
        "units": len(view.units),
        "received": view.received,
        "rejected": view.rejected,
        "lag": lags,
        "cpu_s": time.process_time(),
    }


def _write_stats(path: Path, stats: dict[str, Any]) -> None:
    """Replace `path` whole (a reader never sees half a file); run off the event loop."""
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(stats))
    os.replace(part, path)


def run_fleet(options: FleetOptions, out: TextIO = sys.stdout) -> int:
    """The `fleet` command: 0 when done (or stopped with Ctrl-C / SIGTERM), 1 without a broker."""
    if options.once:
        try:
            view = asyncio.run(snapshot(options))
        except (aiomqtt.MqttError, OSError) as exc:
            print(f"error: broker {options.address.url}: {options.address.failure(exc)}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_NO_BROKER
        _print_once(view, options, out)
        return 0

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await live(options, out, stop)

    asyncio.run(main())
    return 0
