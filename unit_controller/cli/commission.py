"""`unit-controller commission`: the report a tech files for a new or repaired unit.

Exit 0 when every device is found and healthy, 3 otherwise, 2 for a bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from unit_controller.cli.exits import EXIT_BAD_INPUT
from unit_controller.cli.loading import print_config_error
from unit_controller.cli.site import INSTALLED_CONFIG_DIR, site_config, unit_state_dir
from unit_controller.commissioning.survey import survey
from unit_controller.config import load_config
from unit_controller.errors import ConfigError

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
    report = asyncio.run(survey(config, state_dir=state_dir, ask=_ask if args.outputs else None))
    print(json.dumps(report.as_json()) if args.json else report.as_text())
    return 0 if report.ok else EXIT_NOT_HEALTHY


async def _ask(question: str) -> bool:
    answer = await asyncio.to_thread(input, f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")
