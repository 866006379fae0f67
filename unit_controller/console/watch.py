"""The console's `watch`: the batch followed line by line (status lines stamped with the unit's
clock, and events) until it ends or stops, Enter, Ctrl-C or the seconds asked for.

Reads the stream only; always unwatches when it ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from unit_controller.console.client import ConsoleError, ControlClient
from unit_controller.console.render import END_STATES, render_event, render_status_line
from unit_controller.console.screen import Screen
from unit_controller.console.terminal import Item, TerminalInput

WATCH_EVERY_S: Final = 2.0  # a status line this often while watching: calm on a serial line
UNWATCH_TIMEOUT_S: Final = 5.0


async def watch(
    client: ControlClient,
    *,
    screen: Screen,
    input_: TerminalInput | None,
    seconds: float | None,
) -> None:
    """Follow the unit; with `input_` (a tech at a terminal) Enter stops it too."""
    follow = asyncio.create_task(_follow(client, screen, seconds))
    waits: set[asyncio.Task[Any]] = {follow}
    enter: asyncio.Task[Item] | None = None
    if input_ is not None:
        enter = asyncio.create_task(input_.get())
        waits.add(enter)
        screen.say("watching; press Enter to stop")
    try:
        done, _ = await asyncio.wait(waits, timeout=seconds, return_when="FIRST_COMPLETED")
        if enter is not None and enter in done:
            typed = enter.result()
            # What was typed to stop the watch is carried out next (an `abort` above all); the
            # end of input ends the session after it. A bare Enter only stops the watch.
            if typed is None or (isinstance(typed, str) and typed.strip()):
                assert input_ is not None
                input_.unget(typed)
        if follow in done:
            follow.result()  # a refusal or a lost connection is raised here
        elif enter is None or enter not in done:
            screen.say(f"watched {seconds:g} s")
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        if client.connected:
            with contextlib.suppress(ConsoleError, TimeoutError):
                async with asyncio.timeout(UNWATCH_TIMEOUT_S):
                    await client.unwatch()


async def _follow(client: ControlClient, screen: Screen, seconds: float | None) -> None:
    """Print the stream until the batch reaches an end state (see help watch)."""
    style = screen.style
    first: str | None = None
    moved = False
    async for message in client.watch(WATCH_EVERY_S):
        state: object = None
        if message.stream == "status":
            screen.say(render_status_line(message.data, style))
            state = message.data.get("state")
        elif message.stream == "event":
            screen.say(render_event(message.data, style))
            if message.data.get("kind") == "state":
                state = message.data.get("new") or message.data.get("state")
        if not isinstance(state, str):
            continue
        if first is None:
            first = state
            if state in END_STATES and seconds is None:
                screen.say(f"the unit is {state}: nothing running to follow (watch <seconds>)")
                return
        moved = moved or state != first
        if state in END_STATES and moved:
            screen.say(f"the unit is {state}")
            return
