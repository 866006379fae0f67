"""The command line's arguments: every subcommand and how its values are checked.

Imports no subcommand's implementation (nor the config models, the simulator or MQTT): `run`
and `console` start no slower for the commands they do not run.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from unit_controller import __version__
from unit_controller.cli.bench_arguments import add_bench_commands
from unit_controller.cli.fleet_arguments import add_fleet_command
from unit_controller.cli.operator_arguments import add_operator_commands
from unit_controller.cli.record_arguments import add_record_commands
from unit_controller.cli.rig_arguments import add_rig_command
from unit_controller.shipped import EXAMPLE_CONFIG as DEFAULT_CONFIG
from unit_controller.shipped import SHIPPED_RECIPES as RECIPES_DIR

if TYPE_CHECKING:
    from hal.sim.faults import FaultSpec


MIN_SPEED = 0.01


def _positive_speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed {text!r} is not a number") from None
    # Below a hundredth of real time a batch would outlast the machine (1e-300 was taken).
    if not MIN_SPEED <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(
            f"speed must be > 0: from {MIN_SPEED:g} to 1000000 (times real time), got {text}"
        )
    return value


def _progress_every(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"progress interval {text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"progress interval must be a number of simulated seconds > 0, got {text}"
        )
    return value


def _fault(text: str) -> FaultSpec:
    from hal.sim.faults import parse_fault

    try:
        return parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("seed must be >= 0")
    return value


def _plant_value(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--plant {text!r} is not NAME=VALUE (e.g. ph_noise=0.03)")
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--plant {text!r}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"--plant {text!r}: the value must be a finite number")
    return name.strip(), number


def _plant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plant",
        type=_plant_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set one plant parameter for this run (repeatable; config names, e.g. ph_noise=0.03 "
        "or black_mass.cu_pct=2), checked like the config",
    )


def _positive_int(what: str, *, limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} {text!r} is not a whole number") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{what} must be 1..{limit}, got {value}")
        return value

    return parse


def _fleet_arguments(parser: argparse.ArgumentParser, *, paced: str = "") -> None:
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        default=None,
        help="publish to the fleet broker at mqtt://host[:port] or mqtts://host[:port] "
        f"(overrides [mqtt] url){paced}",
    )
    parser.add_argument(
        "--unit-id", metavar="ID", default=None, help="unit id: MQTT client id and topic level"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the journal and the MQTT outbox live (default $STATE_DIRECTORY, else the "
        "config's, else $XDG_STATE_HOME/unit-controller/<unit id>)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="unit-controller", description="Controller of one battery-recycling unit."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="structured logs on stderr at this level (default: warning)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser(
        "sim",
        help="run one batch on the plant simulator",
        description="Run one recipe on the simulated unit in virtual time.",
    )
    what = sim.add_mutually_exclusive_group()
    what.add_argument(
        "--recipe",
        default=None,
        help=f"recipe name (in {RECIPES_DIR}) or path; default coprecipitation",
    )
    what.add_argument(
        "--campaign",
        default=None,
        metavar="R1,R2,...",
        help="run these recipes in turn on one reactor, each starting from (or feeding) the "
        "liquor the one before made, e.g. leach,purify,coprecipitation; ends with a mass balance",
    )
    sim.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"unit config (default {DEFAULT_CONFIG.name}, the mock backend)",
    )
    sim.add_argument("--seed", type=_seed, default=None, help="random seed (default from config)")
    pace = sim.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=_positive_speed, default=None, metavar="X", help="run at X times real time"
    )
    pace.add_argument(
        "--fast",
        action="store_true",
        help="run as fast as possible (default; with --backend serial: in lockstep with the "
        "emulated instruments, as fast as their bytes cross the ptys)",
    )
    sim.add_argument(
        "--backend",
        choices=["mock", "serial"],
        default="mock",
        help="mock: devices on the simulator in virtual time (default); serial: the real "
        "serial drivers talking to device emulators over pseudo-terminals",
    )
    sim.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="NAME[:TAG]@MIN",
        help="inject a fault at simulated minutes after start (repeatable), "
        "e.g. ssr_welded@12 or dosing_pump_stall:P-203@30",
    )
    sim.add_argument(
        "--progress-every",
        type=_progress_every,
        default=None,
        metavar="S",
        help="simulated seconds between status lines",
    )
    sim.add_argument(
        "--json", action="store_true", help="end stdout with one JSON line summarising the batch"
    )
    _plant_arguments(sim)
    _fleet_arguments(sim, paced="; without --speed or --fast the batch then runs in real time")

    envelope = sub.add_parser(
        "envelope",
        help="run a recipe on plants drawn from the design envelope, against on/off control",
        description="Draw N plants from the config's [sim.envelope] (reproducibly from the "
        "seed), run the recipe on each under the unit's controllers and under plain on/off "
        "control, and judge both on the plant's true pH and temperature.",
    )
    envelope.add_argument("--recipe", default="coprecipitation", help="recipe name or path")
    count = envelope.add_mutually_exclusive_group()
    count.add_argument(
        "--runs", type=_positive_int("runs", limit=10_000), default=8, help="plants (default 8)"
    )
    count.add_argument(
        "--corners",
        action="store_true",
        help="every corner of the envelope (each parameter at its low or high end) instead of "
        "drawn plants: 64 for the default ranges",
    )
    envelope.add_argument("--seed", type=_seed, default=1, help="draws the plants (default 1)")
    envelope.add_argument("--config", type=Path, default=None, help="unit config (mock backend)")
    envelope.add_argument(
        "--jobs",
        type=_positive_int("jobs", limit=1024),
        default=None,
        help="worker processes (default: every core)",
    )
    envelope.add_argument(
        "--json", action="store_true", help="end stdout with one JSON line: runs and summary"
    )
    _plant_arguments(envelope)

    check = sub.add_parser(
        "check-config",
        help="validate a config file",
        description="Print 'ok' or every problem with its TOML location.",
    )
    check.add_argument("file", type=Path)

    recipes = sub.add_parser(
        "recipes",
        help="list the recipes the daemon offers",
        description="The recipes in --recipes-dir, else the unit's recipes/ "
        "($CONFIGURATION_DIRECTORY, else /etc/unit-controller) if it exists, else the shipped "
        f"ones ({RECIPES_DIR}); one name a line. A file the daemon would refuse on this unit "
        "is named on stderr with why.",
    )
    recipes.add_argument("--recipes-dir", type=Path, default=None, metavar="DIR")

    check_recipe = sub.add_parser(
        "check-recipe",
        help="check a recipe against a unit's config before running it",
        description="Print 'ok' or every problem with its location; exit 0, or 2. A file is "
        "checked as the daemon will take it from its recipes directory (its name must be its "
        "file name).",
    )
    check_recipe.add_argument("recipe", help="a recipe file, or a name in --recipes-dir")
    check_recipe.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the unit's config (default unit.toml in $CONFIGURATION_DIRECTORY, else in "
        "/etc/unit-controller, else the simulator's)",
    )
    check_recipe.add_argument("--recipes-dir", type=Path, default=None, metavar="DIR")

    run = sub.add_parser(
        "run",
        help="run the unit's controller as a service (what systemd starts)",
        description="Start Stopped with every output off and wait for commands from the "
        "control socket (unit-console) and MQTT. SIGTERM stops cleanly.",
    )
    run.add_argument(
        "--config",
        type=Path,
        default=None,
        help="unit config (default $CONFIGURATION_DIRECTORY/unit.toml, else the simulator's)",
    )
    run.add_argument(
        "--runtime-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the control socket goes (default $RUNTIME_DIRECTORY)",
    )
    run.add_argument(
        "--recipes-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"recipes to offer (default $CONFIGURATION_DIRECTORY/recipes if it exists, else "
        f"{RECIPES_DIR})",
    )
    run.add_argument(
        "--speed",
        type=_positive_speed,
        default=None,
        metavar="X",
        help="mock backend: run the simulated plant at X times real time (default [sim] speed, "
        "else 1)",
    )
    _fleet_arguments(run)

    console = sub.add_parser(
        "console",
        help="the field-tech console (same as unit-console)",
        description="Talk to a running controller over its control socket.",
    )
    console.add_argument("--socket", type=Path, default=None, metavar="PATH")
    console.add_argument(
        "-c",
        dest="console_commands",
        default=None,
        metavar="COMMANDS",
        help="run these commands (separated by newlines or ';') as a script and leave",
    )

    sub.add_parser(
        "hash-pin",
        help="print the [console] pin_hash for a PIN read from standard input",
        description="Read a PIN from standard input (asked for twice, without echo, on a "
        "terminal) and print its hash alone: the value of pin_hash in the [console] section "
        'of unit.toml (pin_hash = "<the hash>").',
    )
    add_operator_commands(sub)
    add_fleet_command(sub)
    add_rig_command(sub)
    add_bench_commands(sub, speed=_positive_speed, fault=_fault)
    add_record_commands(sub)
    # Also after the command (`run --log-level info`, as a unit's ExecStart= is edited): an
    # option taken only before it was an "unrecognized arguments" exit 2, fatal under systemd.
    for command in sub.choices.values():
        command.add_argument(
            "--log-level",
            default=argparse.SUPPRESS,
            choices=["debug", "info", "warning", "error"],
            help="as before the command",
        )
    return parser
