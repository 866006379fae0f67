"""The console's session with the controller: who each is (identify, greeting, the PIN state),
kept alive, and got back after the controller restarts (the console may be someone's login
shell): backoff that doubles up to a few seconds, until the controller answers.

Never gives up on its own while interactive, and says a loss and a return once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from unit_controller.console.client import ConsoleError, ControlClient, Unreachable
from unit_controller.console.screen import Screen
from unit_controller.console.text import clean, fit, wrap

RETRY_FIRST_S: Final = 0.25
# A restarted controller is found within this: short enough that the tech does not wonder,
# long enough that a console waiting all night costs the unit nothing.
RETRY_MAX_S: Final = 5.0
IDLE_TIMEOUT_GUESS_S: Final = 900.0  # a controller that does not say its idle timeout


def next_delay(delay_s: float) -> float:
    """The wait after `delay_s`: doubled, at most RETRY_MAX_S."""
    return min(delay_s * 2, RETRY_MAX_S)


async def connect_when_up(
    path: Path, *, on_failure: Callable[[ConsoleError], None] | None = None
) -> tuple[ControlClient, dict[str, Any]]:
    """A connected client and its greeting, once the controller at `path` answers.

    `on_failure` hears each failed try (say, the first one that needs an administrator).
    """
    delay = RETRY_FIRST_S
    while True:
        client = ControlClient()
        try:
            hello = await client.connect(path)
        except ConsoleError as exc:
            if on_failure is not None:
                on_failure(exc)
        else:
            return client, hello
        await asyncio.sleep(delay)
        delay = next_delay(delay)


def needs_someone(exc: ConsoleError) -> bool:
    """True when waiting will not help (the socket's permissions): worth saying, once."""
    return isinstance(exc, Unreachable) and not exc.retry


class Link:
    """The session: its connection (`client`, replaced on a reconnect), the prompt naming the
    unit, and whether the controller wants a PIN and this session gave it."""

    def __init__(
        self, *, path: Path, screen: Screen, interactive: bool, client: ControlClient
    ) -> None:
        self.client = client
        self.prompt = "> "
        self.pin_required = False
        self.unlocked = False  # this session gave the PIN (a new session has not)
        # This session turned manual mode on: the daemon ends it (and what it runs) with the
        # session. A reconnect is a new session: the old one's manual mode ended with it.
        self.manual_here = False
        self._path = path
        self._screen = screen
        self._interactive = interactive
        self._greeted = False
        self._told_why = False
        self._idle_timeout_s: float | None = None

    async def greet(self, client: ControlClient, hello: Mapping[str, Any]) -> None:
        """Say who we are to the controller; in a tty session who the controller is (or, after
        a reconnect, that it is back and the PIN is needed again)."""
        say = self._screen.say
        unit = clean(hello.get("unit") or "unit")
        old, self.prompt = self.prompt, f"{unit}> "
        self.pin_required = bool(hello.get("pin_required"))
        self.unlocked = False
        manual_ended, self.manual_here = self.manual_here, False
        idle = hello.get("idle_timeout_s")
        self._idle_timeout_s = float(idle) if isinstance(idle, int | float) and idle > 0 else None
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name anywhere (a uid without a passwd entry)
            user = f"uid{os.getuid()}"
        identity = {"client": "console", "user": user[:32]}  # the protocol's limit
        response = await client.request("identify", identity)
        if not response.ok:
            text = f"warning: the controller did not take this console: {response.error}"
            say(*wrap(clean(text), indent=len("warning: ")))
        state = clean(hello.get("state") or "?")
        if self._interactive and self._greeted:
            pin = "; a new session: give the PIN again (pin)"
            # The tech's jog or heater run did not survive the restart: never left to be guessed.
            manual = (
                "; this session's manual mode ended with it, and anything it ran was stopped"
                if manual_ended
                else ""
            )
            say(
                *wrap(
                    f"controller back: {unit}, {state}{pin if self.pin_required else ''}{manual}",
                    indent=2,
                )
            )
        elif self._interactive:
            pin = "; PIN for manual and calibration" if self.pin_required else ""
            say(
                fit(
                    f"{unit} at {clean(hello.get('site') or '?')}, controller "
                    f"{clean(hello.get('version') or '?')}, {state}{pin}"
                ),
                "type help for the commands, quit to leave",
            )
        self._greeted = True
        self._screen.rename_prompt(old, self.prompt)

    async def keep(self) -> None:
        """When the connection goes: say so once, reconnect with backoff, greet, say when back."""
        while True:
            await self.client.wait_lost()
            if self._greeted:
                self._screen.say("daemon gone; reconnecting…")
            self._told_why = False
            while True:
                client, hello = await connect_when_up(self._path, on_failure=self._not_yet)
                try:
                    await self.greet(client, hello)
                    break
                except ConsoleError:  # gone again at once: try again, without a second word
                    await client.close()
                    await asyncio.sleep(RETRY_FIRST_S)
            self.client = client

    def _not_yet(self, exc: ConsoleError) -> None:
        """A reconnect failed: said once when waiting alone will not bring the controller back."""
        if needs_someone(exc) and not self._told_why:
            self._told_why = True
            self._screen.say(*wrap(str(exc), indent=2))

    async def keep_alive(self) -> None:
        """Ask for the status now and then, so the controller never closes an open console as
        idle (a third of its idle timeout)."""
        while True:
            await asyncio.sleep((self._idle_timeout_s or IDLE_TIMEOUT_GUESS_S) / 3.0)
            if self.client.connected:
                with contextlib.suppress(ConsoleError):
                    await self.client.request("status")

    async def close(self) -> None:
        """Close the connection (the session's end)."""
        await self.client.close()
