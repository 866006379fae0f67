"""The entry point: dispatch a subcommand; `run` (the daemon) and `hash-pin` live here.

Exit codes: 0 success/COMPLETE, 1 `run` failed for a reason a restart may mend (a full disk),
2 bad input (config, recipe, flag), 3 a batch that did not complete.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from unit_controller.cli.arguments import build_parser
from unit_controller.cli.exits import EXIT_BAD_INPUT, EXIT_FAILED
from unit_controller.daemon.gc_policy import pause_for_startup, resume_collector
from unit_controller.logs import configure_logging
from unit_controller.shipped import EXAMPLE_CONFIG as DEFAULT_CONFIG
from unit_controller.shipped import SHIPPED_RECIPES as RECIPES_DIR

if TYPE_CHECKING:
    from unit_controller.config import UnitConfig
    from unit_controller.daemon.daemon import DaemonOptions

# Each command imports what it runs, when it runs: `run` loads no simulator batch runner, console,
# report or signing code, and `console` no model of the unit.


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        return _main(argv)
    except BrokenPipeError:
        if not _stdout_gone():
            raise  # another pipe (a socket, a child): a real error, with its traceback
        # A reader that stopped early (`journal list | head`): not an error of ours, and no
        # traceback; stdout goes to /dev/null so the exit's own flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has gone (its write end polls as an error)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def _main(argv: Sequence[str] | None) -> int:
    # From the first line: the parser and the daemon's imports are start-up too.
    # The daemon ends the pause itself once it settles, after READY; any other command (or a
    # start that failed first) as it leaves this block.
    try:
        pause_for_startup()
        args = build_parser().parse_args(argv)
        configure_logging(args.log_level)
        if args.command == "run":
            return _run(args)
    finally:
        resume_collector()
    if args.command == "check-config":
        from unit_controller.cli.loading import check_config

        return check_config(args.file)
    if args.command in ("recipes", "check-recipe"):
        try:
            return _recipes_command(args)
        except PermissionError as exc:
            # /etc/unit-controller is root:unit-controller 0750.
            print(
                f"error: {exc.filename}: permission denied: run it as root or as a member of "
                "the unit-controller group, or name --config and --recipes-dir",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    if args.command == "console":
        from unit_controller.console.repl import main as console_main

        passed = [] if args.socket is None else ["--socket", str(args.socket)]
        if args.console_commands is not None:
            passed += ["-c", args.console_commands]
        return console_main(passed)
    if args.command == "hash-pin":
        return _hash_pin()
    if args.command in ("keygen", "sign", "send"):
        from unit_controller.cli.operator import run_operator_command

        return run_operator_command(args)
    if args.command == "fleet":
        from unit_controller.cli.fleet import run_fleet_command

        return run_fleet_command(args)
    if args.command == "rig":
        from unit_controller.cli.rig import run_rig_command

        return run_rig_command(args)
    if args.command == "envelope":
        from unit_controller.cli.simulate import run_envelope

        return run_envelope(args)
    if args.command == "emulate":
        from unit_controller.cli.emulate import run_emulate

        return run_emulate(args)
    if args.command == "journal":
        from unit_controller.cli.records import run_journal

        return run_journal(args)
    if args.command == "report":
        from unit_controller.cli.records import run_report

        return run_report(args)
    if args.command == "commission":
        from unit_controller.cli.commission import run_commission

        return run_commission(args)
    from unit_controller.cli.simulate import run_sim

    return run_sim(args)


def _run(args: argparse.Namespace) -> int:
    # The collector stays paused (main) until the daemon settles start-up, after READY.
    from unit_controller.daemon.daemon import Daemon

    options = _daemon_options(args)
    if isinstance(options, int):
        return options
    config, daemon_options = options
    # JournalError's and OutboxError's base (imported with the journal above).
    from unit_controller.sqlite_worker import StoreError, storage_may_recover

    async def serve() -> int:
        return await Daemon(config=config, options=daemon_options, out=sys.stdout).run()

    try:
        return asyncio.run(serve())
    except (OSError, StoreError, ValueError) as exc:
        if storage_may_recover(exc):
            # Not a bad input: freeing space (or a new card) mends it, so exit for a restart.
            named = isinstance(exc, StoreError) or getattr(exc, "filename", None)
            where = "" if named else f"{daemon_options.dirs.state}: "
            advice = (
                "the state directory's file system is read-only: the kernel remounts a "
                "failing card so (replace it), or it is mounted read-only (mount it writable)"
                if _read_only(exc)
                else "the state directory's disk is full or failing: free space there (or "
                "replace the card)"
            )
            print(
                f"error: {where}{exc}\n  {advice}; under systemd the service tries again",
                file=sys.stderr,
            )
            return EXIT_FAILED
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _read_only(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is a read-only file system."""
    import errno

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.EROFS:
            return True
        if "read-only file system" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _daemon_options(args: argparse.Namespace) -> tuple[UnitConfig, DaemonOptions] | int:
    """The daemon's config and options from the command line, or the exit code after printing
    every problem."""
    from dataclasses import replace

    from unit_controller.cli import site
    from unit_controller.cli.loading import config_from_args
    from unit_controller.daemon.daemon import DaemonOptions
    from unit_controller.daemon.dirs import resolve_directories

    dirs = resolve_directories(
        config=args.config, state_dir=args.state_dir, runtime_dir=args.runtime_dir
    )
    socket_problem = dirs.socket_problem()
    if socket_problem is not None:
        print(f"error: {socket_problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    installed = dirs.config_file.absolute().parent == site.INSTALLED_CONFIG_DIR
    if installed and dirs.state is None:
        # The unit's own config run by hand at a shell (the service stopped): the service's
        # state, or a restart would forget its latched trips, interrupted batch and charge.
        refused = site.installed_state_refused()
        if refused is not None:
            print(f"error: {refused}", file=sys.stderr)
            return EXIT_BAD_INPUT
        dirs = replace(dirs, state=site.INSTALLED_STATE_DIR)
    if args.config is None and dirs.config_file == DEFAULT_CONFIG:
        # Not under systemd (no $CONFIGURATION_DIRECTORY) and no --config: say what runs.
        print(
            f"unit-controller run: no --config: running the simulator's example "
            f"{DEFAULT_CONFIG} (mock backend)",
            file=sys.stderr,
        )
    config = config_from_args(args, path=dirs.config_file, state_dir=dirs.state)
    if config is None:
        return EXIT_BAD_INPUT
    recipes_dir = args.recipes_dir or site.site_recipes(installed=installed) or RECIPES_DIR
    if not recipes_dir.is_dir():
        print(f"error: recipes directory {recipes_dir} does not exist", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.speed not in (None, 1.0) and config.hal.backend != "mock":
        # Not refused (a script may pass it for either backend), but never silently ignored.
        print(
            f"unit-controller run: --speed {args.speed:g} is for the simulator (mock backend); "
            f"the {config.hal.backend} backend runs in real time",
            file=sys.stderr,
        )
    return config, DaemonOptions(dirs=dirs, speed=args.speed, recipes_dir=recipes_dir)


def _recipes_command(args: argparse.Namespace) -> int:
    """`recipes` and `check-recipe`, on the unit's own files where there are some."""
    from unit_controller.cli import site

    if args.command == "check-recipe":
        from unit_controller.cli.loading import check_recipe

        return check_recipe(
            args.recipe,
            config=site.site_config(args.config),
            recipes_dir=args.recipes_dir or site.site_recipes(installed=True),
        )
    from unit_controller.cli.loading import list_offered

    recipes_dir = args.recipes_dir or site.site_recipes(installed=True) or RECIPES_DIR
    if not recipes_dir.is_dir():
        print(f"error: recipes directory {recipes_dir} does not exist", file=sys.stderr)
        return EXIT_BAD_INPUT
    # Judged on the unit's config, as the daemon judges a start (else the simulator's).
    return list_offered(config=site.site_config(None), recipes_dir=recipes_dir)


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
    # Digits, or a longer passphrase: anything the console's hidden prompt can take.
    if not 4 <= len(pin) <= 64 or not pin.isprintable() or pin != pin.strip():
        print(
            "error: a PIN is 4 to 64 printable characters (digits or a passphrase; 8 or more "
            "recommended), without blanks at either end",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    print(hash_pin(pin))
    return 0
