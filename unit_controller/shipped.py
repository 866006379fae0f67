"""Files shipped beside the code (recipes, example configs): in a checkout or an installed wheel."""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
# Where the wheel's data files go ([tool.setuptools.data-files] in pyproject.toml).
_INSTALLED = Path(sys.prefix) / "share" / "unit-controller"


def shipped(*parts: str) -> Path:
    """The shipped file or folder at `parts`: the checkout's when run from one, else the wheel's."""
    in_checkout = _CHECKOUT.joinpath(*parts)
    return in_checkout if in_checkout.exists() else _INSTALLED.joinpath(*parts)


# Named here, where nothing heavy is imported, so the command line's help can show them.
EXAMPLE_CONFIG = shipped("deploy", "examples", "sim.toml")
"""The simulator's example unit config: what runs without --config."""
SHIPPED_RECIPES = shipped("recipes")
"""The recipes that come with the code."""
