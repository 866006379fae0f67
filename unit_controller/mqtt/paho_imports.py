"""What paho's client imports and the link never uses, loaded on first use instead of with it.

paho's client imports `urllib.request` (and with it `http.client`, a dozen `email` modules and
`tempfile`: ~3 MB resident and ~13 ms) for one purpose: the proxy in `$mqtt_proxy`, which it
looks up only when PySocks is installed. Deferred, not removed: the first name read from it
loads the real module. Never changes what paho does.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

DEFERRED = ("urllib.request",)


class _LoadedOnFirstUse(types.ModuleType):
    """Stands in for a module until a name is read from it; then the real one takes its place.
    (`importlib.util.LazyLoader` cannot do this: an `import` of the module reads `__spec__`,
    which loads it.)"""

    def __getattr__(self, name: str) -> Any:
        return getattr(_load(self.__name__), name)


def _load(name: str) -> types.ModuleType:
    if isinstance(sys.modules.get(name), _LoadedOnFirstUse):
        del sys.modules[name]
    return importlib.import_module(name)  # binds the real module on its package too


def defer_unused_imports() -> list[str]:
    """Put a stand-in for each module of `DEFERRED` not loaded yet; call before paho is
    imported. Returns the modules deferred."""
    deferred = []
    for name in DEFERRED:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        stand_in = _LoadedOnFirstUse(name, f"{name}, loaded on first use ({__name__})")
        stand_in.__spec__ = spec
        stand_in.__loader__ = spec.loader
        sys.modules[name] = stand_in
        # `import urllib.request` finds it in sys.modules and does not bind it on its package.
        package, _, child = name.rpartition(".")
        if package:
            setattr(sys.modules[package], child, stand_in)
        deferred.append(name)
    return deferred
