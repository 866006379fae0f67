"""The config as the command line asks for it: the file, its overrides and plant values;
every problem printed, None returned."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unit_controller.cli.exits import EXIT_BAD_INPUT
from unit_controller.config import (
    UnitConfig,
    load_config,
    with_overrides,
    with_plant,
)
from unit_controller.errors import ConfigError


def check_config(path: Path) -> int:
    try:
        load_config(path)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            print(f"  {problem}")
        return EXIT_BAD_INPUT
    print("ok")
    return 0


def config_from_args(
    args: argparse.Namespace, *, path: Path | None, state_dir: Path | None
) -> UnitConfig | None:
    """The config file with the command line's settings, or None after printing every problem."""
    try:
        return with_overrides(
            load_config(path), unit_id=args.unit_id, mqtt_url=args.mqtt, state_dir=state_dir
        )
    except ConfigError as exc:
        print(f"error: config {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def with_plant_values(config: UnitConfig, values: list[tuple[str, float]]) -> UnitConfig | None:
    try:
        return with_plant(config, dict(values))
    except ConfigError as exc:
        print("error: --plant:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None
