"""Command line: `unit-controller sim` and `unit-controller check-config`.

Exit codes: 0 success/COMPLETE, 2 bad input (config, recipe, flag), 3 a batch that did not complete.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hal.mock.unit import UnknownFault
from hal.sim.faults import FaultSpec, parse_fault
from unit_controller import __version__
from unit_controller.config import (
    DEFAULT_CONFIG,
    UnitConfig,
    load_config,
    state_directory,
    with_overrides,
    with_plant,
)
from unit_controller.errors import CommandRefused, ConfigError, RecipeError
from unit_controller.journal.store import JournalError
from unit_controller.logs import configure_logging
from unit_controller.mqtt.outbox import OutboxError
from unit_controller.recipes.loader import RECIPES_DIR, list_recipes
from unit_controller.sim.runner import (
    DEFAULT_SERIAL_SPEED,
    EXIT_BAD_INPUT,
    EXIT_NOT_COMPLETE,
    SimOptions,
    SimulationRun,
)


def _positive_speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed {text!r} is not a number") from None
    if not 0 < value <= 1_000_000:
        raise argparse.ArgumentTypeError(
            f"speed must be > 0 and at most 1000000 (times real time), got {text}"
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


def _fleet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        default=None,
        help="publish to the fleet broker at mqtt://host[:port] or mqtts://host[:port] "
        "(overrides [mqtt] url); without --speed or --fast the batch then runs in real time",
    )
    parser.add_argument(
        "--unit-id", metavar="ID", default=None, help="unit id: MQTT client id and topic level"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the MQTT outbox lives (default ~/.local/state/unit-controller/<unit id>)",
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
        help="run as fast as possible (default; with --backend serial: "
        f"{DEFAULT_SERIAL_SPEED:g}× real time, the pace the emulated instruments keep up with)",
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
        metavar="NAME@MIN",
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
    _fleet_arguments(sim)

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

    sub.add_parser("recipes", help="list the shipped recipes")

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

    sub.add_parser(
        "hash-pin",
        help="print the [console] pin_hash for a PIN read from standard input",
    )
    return parser


def _check_config(path: Path) -> int:
    try:
        load_config(path)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            print(f"  {problem}")
        return EXIT_BAD_INPUT
    print("ok")
    return 0


def _config(
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


def _with_plant(config: UnitConfig, values: list[tuple[str, float]]) -> UnitConfig | None:
    try:
        return with_plant(config, dict(values))
    except ConfigError as exc:
        print("error: --plant:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _sim(args: argparse.Namespace) -> int:
    config = _config(args, path=args.config, state_dir=args.state_dir)
    if config is not None:
        config = _with_plant(config, args.plant)
    if config is None:
        return EXIT_BAD_INPUT
    if config.hal.backend != "mock":
        print(
            f"error: sim needs the mock backend; {args.config} has backend '{config.hal.backend}'",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.campaign is not None:
        return _campaign(args, config)
    if args.recipe is None:
        args.recipe = "coprecipitation"
    speed = None if args.fast else (args.speed or config.sim.speed)
    if speed is None and not args.fast and config.mqtt.enabled and args.backend == "mock":
        # A person watching the fleet dashboard (and sending hold) sees a unit at its real pace.
        speed = 1.0
    options = SimOptions(
        recipe=args.recipe,
        seed=config.sim.seed if args.seed is None else args.seed,
        speed=speed,
        faults=tuple(args.fault),
        progress_every_s=args.progress_every,
        backend=args.backend,
    )
    try:
        run = SimulationRun(config=config, options=options, out=sys.stdout)
    except RecipeError as exc:
        print(f"error: recipe {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except UnknownFault as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    mode = "as fast as possible" if speed is None else f"at {speed:g}× real time"
    print(
        f"simulating recipe '{run.loaded.recipe.name}' on unit {config.unit.id}, seed "
        f"{options.seed}, {mode}; operator prompts are confirmed automatically"
    )
    if config.mqtt.enabled:
        print(
            f"publishing to {config.mqtt.url} under {config.mqtt.root}/{config.unit.id}/ "
            f"(outbox in {state_directory(config)})"
        )
    try:
        result = asyncio.run(run.run())
    except OutboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CommandRefused as exc:
        # e.g. a fault injected before the start (estop@0) leaves an interlock in effect
        print(f"error: the batch could not run: {exc}", file=sys.stderr)
        return EXIT_NOT_COMPLETE
    summary = result.summary
    print(
        f"batch ended {summary['final_state']} after {summary['sim_seconds'] / 60:.1f} simulated "
        f"minutes ({summary['wall_seconds']:.1f} s wall)"
    )
    for phase in summary["phases"]:
        end = "-" if phase["end_s"] is None else f"{phase['end_s'] / 60:.1f}"
        print(f"  phase {phase['name']:<16} {phase['start_s'] / 60:7.1f} → {end:>7} min")
    for name, fraction in summary["ph"]["in_band_fraction"].items():
        print(f"  pH within ±0.05 in {name}: {fraction:.1%}")
    print(f"  reagents mL: {summary['reagents_ml']}")
    print(f"  alarms: {[a['id'] for a in summary['alarms']] or 'none'}")
    print(f"  hazards (true plant): {summary['hazards']}")
    fleet = summary.get("mqtt")
    if fleet is not None:
        left = fleet["left_in_outbox"]
        sent = "all sent" if fleet["drained"] else f"{left} left in {fleet['outbox']} for next time"
        print(
            f"  mqtt: {fleet['telemetry_messages']} telemetry messages, {fleet['sessions']} "
            f"connection(s), outbox {sent}, offline "
            f"{'published' if fleet['offline_published'] else 'NOT published (broker away)'}"
        )
    if args.json:
        print(json.dumps(summary, separators=(",", ":")))
    return result.exit_code


def _campaign(args: argparse.Namespace, config: UnitConfig) -> int:
    import time

    from unit_controller.sim.campaign import CampaignError, CampaignRun, parse_campaign

    unsupported = [
        flag
        for flag, given in (
            ("--backend serial", args.backend != "mock"),
            ("--fault", bool(args.fault)),
            ("--speed", args.speed is not None),
            ("--mqtt", config.mqtt.enabled),
        )
        if given
    ]
    if unsupported:
        print(
            f"error: --campaign runs the mock backend as fast as possible; drop "
            f"{', '.join(unsupported)}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    seed = config.sim.seed if args.seed is None else args.seed
    try:
        run = CampaignRun(
            config=config,
            recipes=parse_campaign(args.campaign),
            seed=seed,
            out=sys.stdout,
            progress_every_s=args.progress_every,
        )
    except CampaignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RecipeError as exc:
        print(f"error: recipe {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    names = ", ".join(step.recipe for step in run.steps)
    print(f"simulating the campaign {names} on one reactor of unit {config.unit.id}, seed {seed}")
    wall = time.monotonic()
    try:
        campaign = asyncio.run(run.run())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RecipeError as exc:
        print(f"error: the campaign could not go on: {'; '.join(exc.problems)}", file=sys.stderr)
        return EXIT_NOT_COMPLETE
    states = [r["final_state"] for r in campaign["recipes"]]
    final = next((s for s in states if s != "COMPLETE"), "COMPLETE")
    balance = campaign["mass_balance"]
    print(f"campaign ended {final} ({time.monotonic() - wall:.1f} s wall)")
    for recipe in campaign["recipes"]:
        print(
            f"  {recipe['recipe']:<16} {recipe['final_state']:<9} from {recipe['started_with']}; "
            f"reagents mL {recipe['reagents_ml']}"
        )
    print(
        f"  mass balance: closure {balance['closure_pct']} %, recovery {balance['recovery_pct']} %,"
        f" product {balance['product_kg']} kg, impurities ppm {balance['impurities_ppm']}"
    )
    if args.json:
        summary = {
            "final_state": final,
            "recipe": "campaign",
            "seed": seed,
            "sim_seconds": round(run.clock.monotonic(), 1),
            "wall_seconds": round(time.monotonic() - wall, 2),
            "campaign": campaign,
        }
        print(json.dumps(summary, separators=(",", ":")))
    return 0 if final == "COMPLETE" else EXIT_NOT_COMPLETE


def _envelope(args: argparse.Namespace) -> int:
    from hal.sim.envelope import TooManyCorners
    from unit_controller.sim.envelope_runner import EnvelopeOptions, default_jobs, run_envelope

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: config {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if config.hal.backend != "mock":
        print(
            f"error: envelope needs the mock backend; the config has '{config.hal.backend}'",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    fixed = dict(args.plant)
    checked = _with_plant(config, args.plant)
    if checked is None:
        return EXIT_BAD_INPUT
    options = EnvelopeOptions(
        recipe=args.recipe,
        runs=args.runs,
        seed=args.seed,
        jobs=args.jobs or default_jobs(),
        corners=args.corners,
    )
    plants = "every corner" if args.corners else f"{args.runs} plant(s)"
    print(
        f"envelope: recipe '{args.recipe}', {plants} from seed {args.seed}, each "
        f"under the controllers and under on/off, {options.jobs} process(es)",
        flush=True,
    )

    def progress(line: str) -> None:
        print(line, flush=True)

    try:
        report = run_envelope(checked, options, fixed=fixed, progress=progress)
    except RecipeError as exc:
        print(f"error: recipe {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TooManyCorners as exc:
        print(f"error: envelope: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    summary = report["summary"]

    def ratio(value: float | None) -> str:
        return "n/a (a run did not reach the judged phase)" if value is None else f"{value:.2f}"

    print(
        f"complete {summary['complete']}/{summary['runs']} (on/off {summary['baseline_complete']}"
        f"/{summary['runs']}); true pH in band: median {summary['median_true_in_band']:.1%}, "
        f"worst {summary['worst_true_in_band']:.1%}; worst IAE ratio vs on/off: pH "
        f"{ratio(summary['worst_iae_ratio_ph'])}, temperature "
        f"{ratio(summary['worst_iae_ratio_temperature'])}"
    )
    if args.json:
        print(json.dumps(report, separators=(",", ":")))
    return 0 if summary["complete"] == summary["runs"] else EXIT_NOT_COMPLETE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    if args.command == "check-config":
        return _check_config(args.file)
    if args.command == "recipes":
        for name in list_recipes(RECIPES_DIR):
            print(name)
        return 0
    if args.command == "run":
        return _run(args)
    if args.command == "console":
        from unit_controller.console.repl import main as console_main

        return console_main([] if args.socket is None else ["--socket", str(args.socket)])
    if args.command == "hash-pin":
        return _hash_pin()
    if args.command == "envelope":
        return _envelope(args)
    return _sim(args)


def _run(args: argparse.Namespace) -> int:
    from unit_controller.daemon.daemon import Daemon, DaemonOptions
    from unit_controller.daemon.dirs import resolve_directories

    dirs = resolve_directories(
        config=args.config, state_dir=args.state_dir, runtime_dir=args.runtime_dir
    )
    if args.config is None and dirs.config_file == DEFAULT_CONFIG:
        # Not under systemd (no $CONFIGURATION_DIRECTORY) and no --config: say what runs.
        print(
            f"unit-controller run: no --config: running the simulator's example "
            f"{DEFAULT_CONFIG} (mock backend)",
            file=sys.stderr,
        )
    config = _config(args, path=dirs.config_file, state_dir=dirs.state)
    if config is None:
        return EXIT_BAD_INPUT
    recipes_dir = args.recipes_dir or _site_recipes() or RECIPES_DIR
    if not recipes_dir.is_dir():
        print(f"error: recipes directory {recipes_dir} does not exist", file=sys.stderr)
        return EXIT_BAD_INPUT
    daemon_options = DaemonOptions(dirs=dirs, speed=args.speed, recipes_dir=recipes_dir)

    async def serve() -> int:
        return await Daemon(config=config, options=daemon_options, out=sys.stdout).run()

    try:
        return asyncio.run(serve())
    except (OSError, OutboxError, JournalError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _site_recipes() -> Path | None:
    """`$CONFIGURATION_DIRECTORY/recipes` when systemd gives one and it exists."""
    configured = os.environ.get("CONFIGURATION_DIRECTORY")
    if not configured:
        return None
    candidate = Path(configured.split(":")[0]) / "recipes"
    return candidate if candidate.is_dir() else None


def _hash_pin() -> int:
    from unit_controller.pin import hash_pin

    if sys.stdin.isatty():
        import getpass

        pin = getpass.getpass("PIN: ")
        if getpass.getpass("again: ") != pin:
            print("error: the two PINs differ", file=sys.stderr)
            return EXIT_BAD_INPUT
    else:
        pin = sys.stdin.readline().rstrip("\n")
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        print("error: a PIN is 4 to 12 digits", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(hash_pin(pin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
