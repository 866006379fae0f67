"""`unit-controller commission`: the report a tech files for a new or repaired unit.

Exit 0 when every device is found and healthy, 3 otherwise, 2 for a bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading

from unit_controller.cli.exits import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_REFUSED
from unit_controller.cli.loading import print_config_error
from unit_controller.cli.site import INSTALLED_CONFIG_DIR, site_config, unit_state_dir
from unit_controller.commissioning.survey import survey
from unit_controller.config import load_config
from unit_controller.errors import ConfigError
from unit_controller.state_lock import held, holder

EXIT_NOT_HEALTHY = 3


def run_commission(args: argparse.Namespace) -> int:
    """Survey the config's instruments; print the report; 0 healthy, 3 not."""
    path = site_config(args.config)
    if path is None:
        print(
            "error: no config: name the unit's with --config (an installed unit's is "
            f"{INSTALLED_CONFIG_DIR / 'unit.toml'})",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        config = load_config(path)
    except ConfigError as exc:
        print_config_error(exc)
        return EXIT_BAD_INPUT
    if config.hal.backend != "serial":
        print(
            f"error: {path} runs the {config.hal.backend} backend: commissioning talks to "
            'real instruments ([hal] backend = "serial"; `unit-controller emulate` makes a '
            "bench of emulated ones)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.outputs and not sys.stdin.isatty():
        print("error: --outputs asks before each pulse: run it at a terminal", file=sys.stderr)
        return EXIT_BAD_INPUT
    state_dir = unit_state_dir(config, args.state_dir, path)
    if held(state_dir):
        # Its ports are the daemon's (locked): each would only be retried, then named busy.
        print(
            f"error: a unit-controller (pid {holder(state_dir)}: the daemon, or a sim) is running "
            f"on {state_dir} and holds the instruments' ports: ask the daemon for the same report "
            "at the console (unit-console, then commission), or stop it first (systemctl stop "
            "unit-controller)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    try:
        report = asyncio.run(
            survey(config, state_dir=state_dir, ask=_ask if args.outputs else None)
        )
    except KeyboardInterrupt:
        # A pulse under way ends by itself: it went out as the board's own timed flash.
        print("\ninterrupted: the survey stopped; no report", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(json.dumps(report.as_json()) if args.json else report.as_text())
    return 0 if report.ok else EXIT_NOT_HEALTHY


async def _ask(question: str) -> bool:
    # On a thread of its own that never holds up the exit: Ctrl-C at the question must end the
    # command, not leave it waiting for a line nobody types.
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[str] = loop.create_future()

    def read() -> None:
        try:
            line = input(f"{question} [y/N] ")
        except (EOFError, OSError):
            line = ""
        loop.call_soon_threadsafe(_settle, answered, line)

    threading.Thread(target=read, name="commission-ask", daemon=True).start()
    answer = await answered
    return answer.strip().lower() in ("y", "yes")


def _settle(answered: asyncio.Future[str], line: str) -> None:
    if not answered.done():  # the survey may have been cancelled meanwhile
        answered.set_result(line)
