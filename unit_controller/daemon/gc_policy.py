"""The daemon's garbage-collector policy, and a record of every collection's pause for `stats`.

Start-up (config models, HAL, journal, MQTT, recipes) leaves tens of thousands of objects that
live as long as the process: they are frozen out of every later collection, so a full collection
walks only what the running daemon made since. Never unfreezes; never collects inside a scan.
"""

from __future__ import annotations

import gc
import time
from typing import Any

GENERATIONS = 3

# True while `pause_for_startup` holds the collector off (so only it turns it back on).
_paused_for_startup = False


class GcWatch:
    """Counts collections per generation and times their pauses (gc.callbacks)."""

    def __init__(self) -> None:
        self.collections = [0] * GENERATIONS
        self.collected = 0
        self.pause_s = [0.0] * GENERATIONS
        self.max_pause_s = [0.0] * GENERATIONS
        self._began = 0.0
        self._installed = False

    def install(self) -> None:
        """Start timing collections (once)."""
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        """Stop timing collections."""
        if self._installed:
            gc.callbacks.remove(self._callback)
            self._installed = False

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        took = time.perf_counter() - self._began
        generation = info.get("generation", 0)
        self.collections[generation] += 1
        self.collected += info.get("collected", 0)
        self.pause_s[generation] += took
        if took > self.max_pause_s[generation]:
            self.max_pause_s[generation] = took

    def summary(self) -> dict[str, Any]:
        """Collections, objects freed, pause totals and maxima (ms) per generation, and the
        collector's settings."""
        return {
            "collections": list(self.collections),
            "collected": self.collected,
            "pause_ms_total": [round(s * 1000, 3) for s in self.pause_s],
            "pause_ms_max": [round(s * 1000, 3) for s in self.max_pause_s],
            "frozen": gc.get_freeze_count(),
            "threshold": list(gc.get_threshold()),
            "count": list(gc.get_count()),
        }


def pause_for_startup() -> None:
    """No collection while start-up imports and builds what lives as long as the process: each
    would walk every object made so far for almost nothing to free (8-15 ms of a ~0.25 s start,
    measured to READY). `settle_after_startup` or `resume_collector` ends the pause."""
    global _paused_for_startup
    if gc.isenabled():
        gc.disable()
        _paused_for_startup = True


def resume_collector() -> None:
    """End a start-up pause, if one is on (a no-op otherwise: never enables a collector someone
    else turned off)."""
    global _paused_for_startup
    if _paused_for_startup:
        _paused_for_startup = False
        gc.enable()


def settle_after_startup() -> None:
    """Collect what start-up left as garbage, then freeze the rest out of later collections.

    The thresholds stay Python's (700, 10, 10), chosen by measuring a daemon on the simulator
    with MQTT, a batch and a `watch` client (pauses from gc.callbacks, lateness from `stats`):
    - before freezing, a full collection walks ~52,000 objects and takes 20-45 ms (a scan due
      meanwhile starts that late); after, it walks only what the daemon made since (~900
      objects, 0.3 ms, at speed 1; ~7,000, <= 3 ms, after 50 simulated minutes at 50x);
    - at speed 1 a young collection comes every 7-15 s and takes <= 0.2 ms, under the 1 ms the
      event loop's timer rounding adds to any wake-up; a full one is ~100 young ones away;
    - at 50x (500 scans a second, 30 s) 700 gave 21 young collections of <= 1.5 ms, 2,000 gave
      6 of up to 2.5 ms: fewer, longer pauses, and nothing gained for lateness.
    So no collection of our own at a quiet moment either: nothing is left that would need one.
    Ends a start-up pause (`pause_for_startup`).
    """
    gc.collect()
    gc.freeze()
    resume_collector()
