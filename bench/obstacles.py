"""What stands in the way of each goal the suite misses, written by hand from profiles, and the
commands that show it. RESULTS.md prints it under its verdict beside the measured shortfall.

Keep it true: when a figure moves, measure again and rewrite its entry (with the date).
"""

from __future__ import annotations

from bench.core import Figure

_SCAN_COST = (
    "The scan itself. Hot (`python bench/bench_scan.py`), a scan costs ~119 µs: the controller "
    "~84, the simulated unit ~35. In a daemon at 10 Hz the controller's part alone (the `stats` "
    "op's `scan_ms`, which leaves the simulated unit out) takes 0.24-0.27 ms p50, 0.46-0.54 ms "
    "p99: 100 ms apart, every scan runs on cold caches. The profile "
    "(`python -m cProfile -s tottime bench/bench_scan.py`) is flat: 536 Python calls a scan, none "
    "above 5 % (`_scan` 5 %, the mock unit's step 3 %, `Reading.ok` 3 %). An idle daemon's main "
    "thread used 8.0 ms of CPU a second, 13 timer wake-ups a second against the bare loop's 10. "
    "What would move it: far fewer calls a scan (merging per-scan layers), or compiling the "
    "scan's modules (mypyc: a C compiler on every Pi, and tests that patch module functions). "
    "The 10 Hz scan stays: it is what bounds the trip → safe time. (2026-12-06)"
)

OBSTACLES: dict[str, str] = {
    "scan_p99_lateness_ms": (
        "Noise as much as cost: over 20 s (200 scans) the p99 is the second-worst scan, and full "
        "runs gave 0.98×, 1.12×, 1.47× of the bare loop. An idle daemon measured alone: p50 "
        "0.86 ms, p99 1.32 ms, about the bare loop's. Both loops wait in epoll, whose timeout "
        "asyncio rounds up to whole milliseconds; the daemon's extra is the work queued in the "
        "same loop turn as the scan's timer (telemetry, the watch stream, the outbox thread "
        "holding the GIL). Not yet traced scan by scan. (2026-12-06)"
    ),
    "cpu_percent": _SCAN_COST,
    "scale_units_per_box": "Each unit's CPU: see `cpu_percent`. " + _SCAN_COST,
    "sim_speedup": (
        "The goal leaves 33 µs a scan in all; the realistic plant alone, stepped bare, takes "
        "17 µs (`python bench/bench_plant.py`: 5,940×), so the controller would get 16 µs for its "
        "~430 calls. The issue set 3,000× when the plant stepped at 33,000×. A scan now costs "
        "~119 µs: the controller ~84, the simulated unit ~35 (`python -m cProfile -s tottime "
        "bench/bench_scan.py`, flat). Not reachable in CPython without compiling the scan's "
        "modules or fewer layers a scan. (2026-12-06)"
    ),
    "start_to_ready_s": (
        "CPU to READY ~0.28 s (`python -X importtime -m unit_controller.cli run`, and cProfile "
        "to the READY call): the interpreter with asyncio, ssl and SQLite ~66 ms (the bare "
        "start); pydantic's import ~20 ms and the 27 config models it builds; 118 dataclass "
        "classes, whose generated methods are compiled at import (`dataclasses._process_class` "
        "the largest item); structlog 8 ms (`structlog.dev`). 32 models that only validate after "
        "READY build on first use (defer_build, ~3 ms). What would move it: config without "
        "pydantic on the start path, fewer dataclass classes. (2026-12-06)"
    ),
    "start_to_ready_1m_backlog_s": (
        "Not the backlog: opening it reads the `meta` table only. This start runs with `--mqtt`, "
        "and aiomqtt imports paho, which imports `urllib.request` (http.client, email: ~12 ms "
        "of the ~25 ms aiomqtt costs). The rest as `start_to_ready_s`. (2026-12-06)"
    ),
    "rss_mb": (
        "At READY 40.9 MB: the interpreter with asyncio (ssl, OpenSSL) and sqlite3 21.2 MB, "
        "structlog and pydantic +8.2, our modules +11 (of it 3.2 MB Python objects of the "
        "imported code by tracemalloc, 0.7 MB of dataclass-generated methods; the rest "
        "pydantic-core schemas and allocator slack); a running batch +3.5. What would move it: "
        "pydantic off the run path (config and socket args validated without it). (2026-12-06)"
    ),
    "rss_after_drain_mb": (
        "Mostly not the drain: the same daemon with `--mqtt` and no backlog sits at 47.0-47.4 "
        "MB (aiomqtt, paho, urllib.request, the outbox's SQLite: +3.7 MB at READY over a daemon "
        "without MQTT). Draining 50,000 rows adds ~3 MB more, while Python's live objects grow "
        "by 0.2 MB: allocator fragmentation (pymalloc pools ~1.6 MB, the outbox thread's glibc "
        "arena ~1.4 MB, the main heap ~0.9 MB). `malloc_trim` did not return it (50.2 MB with "
        "it, 50.5 without), nor did MALLOC_ARENA_MAX=2. See `rss_mb` for the floor. "
        "(2026-12-06)"
    ),
}


def shortfall(figure: Figure) -> str:
    """How far a figure is from its goal, in words: `0.918 % against ≤ 0.4 %: 2.29× the limit`."""
    goal = figure.goal
    if goal is None:
        return ""
    subject = figure.ratio if goal.on == "ratio" else figure.value
    shown = (
        f"{figure.ratio:.2f}× its baseline"
        if goal.on == "ratio" and figure.ratio is not None
        else f"{figure.value:.4g} {figure.unit}".rstrip()
    )
    if subject is None or subject != subject or goal.limit == 0:  # NaN: not measured
        return f"{shown} against {goal.text()}"
    if goal.better == "lower":
        return f"{shown} against {goal.text()}: {subject / goal.limit:.2f}× the limit"
    return f"{shown} against {goal.text()}: {subject / goal.limit:.0%} of it"
