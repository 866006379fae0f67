"""The daemon builds its pydantic models without pydantic's plugin lookup.

For the first model it builds, pydantic imports `pydantic.plugin._loader`, which imports
`importlib.metadata` (and with it email, zipfile, csv, shutil, bz2, lzma) to look for plugins in
the installed packages' entry points: 2.3 MB of resident memory and ~8 ms of every start-up on a
unit that has no pydantic plugin and wants none. `PYDANTIC_DISABLE_PLUGINS=__all__` turns plugins
off only after that import. Never changes a model, a validator or a message.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable
from typing import Any

LOADER = "pydantic.plugin._loader"


def _no_plugins() -> Iterable[Any]:
    return ()


def skip_pydantic_plugins() -> bool:
    """Make pydantic find no plugins without importing its loader; False when the loader is
    loaded already (nothing left to save). Call before the first model is built."""
    if LOADER in sys.modules:
        return False
    loader = types.ModuleType(LOADER, "pydantic plugins: none (unit_controller.cli.no_plugins)")
    loader.get_plugins = _no_plugins  # type: ignore[attr-defined]
    sys.modules[LOADER] = loader
    return True
