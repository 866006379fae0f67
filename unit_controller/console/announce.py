"""Announcements: a prompt waiting for the tech, an alarm raised or cleared, printed at the console
as it happens, above whatever is being typed, with a bell for what needs someone.

Its own connection to the controller, watching events only, so no command waits behind it;
it re-subscribes by itself after the controller restarts and never prints about its link.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from unit_controller.console.client import (
    ConsoleError,
    ControlClient,
    RequestFailed,
    StreamMessage,
)
from unit_controller.console.link import RETRY_FIRST_S, next_delay
from unit_controller.console.screen import Screen
from unit_controller.console.text import Style, clean, clock, wrap

# An older controller streams status lines with its events (no `status: false`): as rarely as
# it allows; they are dropped here.
OLD_CONTROLLER_EVERY_S: Final = 60.0
_INDENT: Final = len("HH:MM:SS ALARM   ")


def announcement(event: Mapping[str, Any], style: Style) -> tuple[list[str], bool] | None:
    """The lines for one controller event and whether they ring; None when not announced.

    Announced: a prompt raised, an alarm raised, returned or reset (ISA-18.2: a new alarm
    sounds; a return to normal is shown, silently), and a manual action cut short.
    Acknowledgements are someone's command.
    """
    facts = {**event, **event["data"]} if isinstance(event.get("data"), Mapping) else event
    when = clock(event.get("ts"))
    kind = event.get("kind")
    if kind == "prompt":
        prompt = clean(facts.get("prompt") or facts.get("text") or "a confirmation")
        text = f"{when} PROMPT  {prompt}: type confirm once done"
        return _painted(text, "yellow", style), True
    if kind == "command" and facts.get("command") == "manual_stopped":
        # A jog or heater run the tech started, cut short (a trip, another session's stop).
        text = f"{when} MANUAL  {clean(facts.get('text', 'manual action stopped'))}"
        return _painted(text, "yellow", style), True
    if kind != "alarm":
        return None
    alarm = f"{clean(facts.get('alarm_id', '?'))} ({clean(facts.get('tag', '?'))})"
    transition, state = facts.get("transition"), facts.get("state")
    if transition == "raised":
        priority = clean(facts.get("priority", "")).upper()
        text = f"{when} ALARM   {priority} {alarm}: {clean(facts.get('message', ''))}"
        return _painted(text, "red", style), True
    if transition == "returned":
        name = clean(facts.get("alarm_id", "?"))
        if state == "latched":
            then = f"cause gone, still latched: ack {name}, then reset"
        elif state == "unack_returned":
            then = f"back to normal, not acknowledged yet (ack {name})"
        else:
            then = "cleared"
        return _painted(f"{when} alarm   {alarm} {then}", None, style), False
    if transition == "reset":
        return _painted(f"{when} alarm   {alarm} reset: cleared", None, style), False
    return None


def _painted(text: str, colour: str | None, style: Style) -> list[str]:
    """Wrapped, never cut: an announcement is read once, as it comes."""
    return [style.paint(line, colour) for line in wrap(text, indent=_INDENT)]


class Announcer:
    """Keeps an events-only watch on the controller and announces what `announcement` says.

    `paused` while the console's own `watch` prints the same events.
    """

    def __init__(self, *, path: Path, screen: Screen) -> None:
        self._path = path
        self._screen = screen
        self.paused = False
        self._last_prompt: str | None = None
        self._subscribed = False
        self.ready = asyncio.Event()  # set once the first subscription has been tried

    @property
    def last_prompt(self) -> str | None:
        """The last prompt announced (shown to the tech), or None."""
        return self._last_prompt

    async def run(self) -> None:
        """Subscribe, announce, and subscribe again whenever the link goes (until cancelled)."""
        delay = RETRY_FIRST_S
        while True:
            client = ControlClient()
            self._subscribed = False
            try:
                await client.connect(self._path)
                await self._follow(client)
            except ConsoleError:
                pass  # not there (yet), or gone: try again
            finally:
                self.ready.set()
                await client.close()
            if self._subscribed:
                delay = RETRY_FIRST_S  # it was up: a new loss starts the backoff afresh
            await asyncio.sleep(delay)
            delay = next_delay(delay)

    async def _follow(self, client: ControlClient) -> None:
        try:
            stream = await client.subscribe(status=False)
        except RequestFailed as exc:
            if exc.response.code != "bad_request":
                raise
            stream = await client.subscribe(OLD_CONTROLLER_EVERY_S)
        self._subscribed = True
        await self._pending_prompt(client)
        self.ready.set()
        async for message in stream:
            self._heard(message)

    async def _pending_prompt(self, client: ControlClient) -> None:
        with contextlib.suppress(ConsoleError):
            response = await client.request("status")
            prompt = (response.result or {}).get("awaiting_confirmation")
            if isinstance(prompt, str) and prompt != self._last_prompt:
                status = response.result or {}
                self._heard(
                    StreamMessage(
                        stream="event",
                        data={"ts": status.get("ts"), "kind": "prompt", "prompt": prompt},
                    )
                )

    def _heard(self, message: StreamMessage) -> None:
        if message.stream != "event":
            return
        if message.data.get("kind") == "prompt":
            prompt = message.data.get("prompt")
            self._last_prompt = prompt if isinstance(prompt, str) else None
        if self.paused:
            return
        said = announcement(message.data, self._screen.style)
        if said is not None:
            lines, bell = said
            self._screen.announce(*lines, bell=bell)
