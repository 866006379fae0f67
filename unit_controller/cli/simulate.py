"""`unit-controller sim` and `envelope`: one batch, a campaign, or the design envelope."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hal.mock.unit import UnknownFault
from unit_controller.cli.exits import EXIT_INTERRUPTED
from unit_controller.cli.loading import config_from_args, with_plant_values
from unit_controller.config import (
    UnitConfig,
    load_config,
    resolve_state_dir,
    state_directory,
)
from unit_controller.errors import CommandRefused, ConfigError, RecipeError
from unit_controller.journal.store import JournalError
from unit_controller.mqtt.outbox import OutboxError
from unit_controller.sim.runner import (
    EXIT_BAD_INPUT,
    EXIT_NOT_COMPLETE,
    SimOptions,
    SimulationRun,
)
from unit_controller.state_lock import AlreadyRunning, StateDirUnusable, held, holder

T = TypeVar("T")


def run_sim(args: argparse.Namespace) -> int:
    config = config_from_args(args, path=args.config, state_dir=args.state_dir)
    if config is not None:
        config = with_plant_values(config, args.plant)
    if config is None:
        return EXIT_BAD_INPUT
    if config.hal.backend != "mock":
        print(
            f"error: sim needs the mock backend; {args.config} has backend '{config.hal.backend}'",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.campaign is not None:
        return run_campaign(args, config)
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
        # Into the unit's journal, as the daemon's batches: `journal export` and `report` read it.
        state_dir=resolve_state_dir(config, args.state_dir),
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
    if options.state_dir is not None and held(options.state_dir):
        # Said before anything runs (the run itself would stop at the lock too).
        print(
            f"error: another unit-controller (daemon or sim, pid {holder(options.state_dir)}) is "
            f"running on {options.state_dir}: give this run its own --state-dir",
            file=sys.stderr,
        )
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
        result = asyncio.run(_stopped_as_by_ctrl_c(run.run()))
    except (OutboxError, JournalError, AlreadyRunning, StateDirUnusable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C; SIGTERM or SIGHUP
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CommandRefused as exc:
        # e.g. a fault injected before the start (estop@0) leaves an interlock in effect
        print(f"error: the batch could not run: {exc}", file=sys.stderr)
        return EXIT_NOT_COMPLETE
    summary = result.summary
    ended = "batch ended" if summary["phases"] else "no batch ran (why: above): the unit stayed"
    print(
        f"{ended} {summary['final_state']} after {summary['sim_seconds'] / 60:.1f} simulated "
        f"minutes ({summary['wall_seconds']:.1f} s wall)"
    )
    if summary.get("faults_not_injected"):
        print(f"  faults never injected: {', '.join(summary['faults_not_injected'])}")
    for phase in summary["phases"]:
        end = "-" if phase["end_s"] is None else f"{phase['end_s'] / 60:.1f}"
        print(f"  phase {phase['name']:<16} {phase['start_s'] / 60:7.1f} → {end:>7} min")
    for name, fraction in summary["ph"]["in_band_fraction"].items():
        print(f"  pH within ±0.05 in {name}: {fraction:.1%}")
    print(f"  reagents mL: {summary['reagents_ml']}")
    alarms = [f"{a['id']} ({a['tag']})" for a in summary["alarms"]]
    print(f"  alarms: {', '.join(alarms) or 'none'}")
    print(f"  hazards (true plant): {summary['hazards']}")
    journaled = summary.get("journal")
    if journaled is not None and journaled["batch_id"] is not None:
        state_dir = shlex.quote(str(Path(journaled["path"]).parent))
        print(
            f"  journal: batch {journaled['batch_id']} in {journaled['path']} (unit-controller "
            f"report {journaled['batch_id']} --state-dir {state_dir} --out report.html)"
        )
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


def run_campaign(args: argparse.Namespace, config: UnitConfig) -> int:
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
        return EXIT_INTERRUPTED
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
    if balance["closure_pct"] is None:
        # No black mass went in (no leach in the campaign): there is nothing to balance.
        print("  mass balance: none (no metal went in: the campaign charged no black mass)")
    else:
        print(
            f"  mass balance: closure {balance['closure_pct']} %, recovery "
            f"{balance['recovery_pct']} %, product {balance['product_kg']} kg, impurities ppm "
            f"{balance['impurities_ppm']}"
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


def run_envelope(args: argparse.Namespace) -> int:
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
    checked = with_plant_values(config, args.plant)
    if checked is None:
        return EXIT_BAD_INPUT
    options = EnvelopeOptions(
        recipe=args.recipe,
        runs=args.runs,
        seed=args.seed,
        jobs=args.jobs or default_jobs(),
        corners=args.corners,
    )

    def started(count: int) -> None:
        # Once the recipe and the plants are known good: a bad one gets its error alone.
        plants = f"every corner ({count} plants)" if args.corners else f"{count} plant(s)"
        print(
            f"envelope: recipe '{args.recipe}', {plants} from seed {args.seed}, each "
            f"under the controllers and under on/off, {options.jobs} process(es)",
            flush=True,
        )

    def progress(line: str) -> None:
        print(line, flush=True)

    try:
        report = run_envelope(checked, options, fixed=fixed, progress=progress, started=started)
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
        return EXIT_INTERRUPTED
    summary = report["summary"]

    def ratio(value: float | None) -> str:
        return "n/a (a run did not reach the judged phase)" if value is None else f"{value:.2f}"

    if summary["median_true_in_band"] is None:
        in_band = "n/a (no phase holds a pH)"
    else:
        in_band = (
            f"median {summary['median_true_in_band']:.1%}, "
            f"worst {summary['worst_true_in_band']:.1%}"
        )
    print(
        f"complete {summary['complete']}/{summary['runs']} (on/off {summary['baseline_complete']}"
        f"/{summary['runs']}); true pH in band: {in_band}; worst IAE ratio vs on/off: pH "
        f"{ratio(summary['worst_iae_ratio_ph'])}, temperature "
        f"{ratio(summary['worst_iae_ratio_temperature'])}"
    )
    if args.json:
        print(json.dumps(report, separators=(",", ":")))
    return 0 if summary["complete"] == summary["runs"] else EXIT_NOT_COMPLETE


async def _stopped_as_by_ctrl_c(batch: Coroutine[Any, Any, T]) -> T:
    """`batch`, which SIGTERM (a `kill`, `timeout`) and SIGHUP (a dropped ssh session) end as
    Ctrl-C does: cancelled, so the run aborts and journals its batch and closes the journal.
    Killed outright, the batch stayed open and the unit's next start found it interrupted.
    Under nohup SIGHUP stays ignored."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            loop.add_signal_handler(sig, task.cancel)
    return await batch
