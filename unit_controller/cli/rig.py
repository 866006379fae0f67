"""`unit-controller rig`: the command line's options into a fleet test rig (sim/rig.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from unit_controller.cli.exits import EXIT_BAD_INPUT
from unit_controller.cli.loading import config_from_args

if TYPE_CHECKING:
    from unit_controller.config import UnitConfig


def run_rig_command(args: argparse.Namespace) -> int:
    """Check the options, then run the rig until Ctrl-C, SIGTERM or --seconds."""
    args.unit_id = None
    config = config_from_args(args, path=args.config, state_dir=None)
    if config is None:
        return EXIT_BAD_INPUT
    from unit_controller.sim.rig import Rig, RigError, RigOptions
    from unit_controller.sqlite_worker import StoreError

    if not args.idle and not _recipe_loads(args.recipe, config):
        return EXIT_BAD_INPUT

    with contextlib.ExitStack() as stack:
        state_dir = args.state_dir
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rig-")))
        try:
            rig = Rig(
                RigOptions(
                    units=args.units,
                    config=config,
                    state_dir=state_dir,
                    prefix=args.prefix,
                    recipe=None if args.idle else args.recipe,
                    seconds=args.seconds,
                ),
                say=lambda line: print(line, flush=True),
            )
        except RigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT

        async def serve() -> int:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, rig.stop)
            return await rig.run()

        try:
            return asyncio.run(serve())
        except (RigError, OSError, StoreError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return 0


def _recipe_loads(recipe: str, config: UnitConfig) -> bool:
    """The recipe every unit will start, checked once before any is made (as the units load
    it: a name from the shipped recipes); its problems printed when it does not load."""
    from unit_controller.errors import RecipeError
    from unit_controller.recipes.loader import load_recipe

    try:
        load_recipe(recipe, config=config, names_only=True)
    except RecipeError as exc:
        print(f"error: recipe {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return False
    return True
