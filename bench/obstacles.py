"""What stands in the way of each goal the suite misses, written by hand from profiles, and the
commands that show it. RESULTS.md prints it under its verdict beside the measured shortfall.

Keep it true: when a figure moves, measure again and rewrite its entry (with the date).
"""

from __future__ import annotations

from bench.core import Figure

_SCAN_COST = (
    "The scan itself, and what each wake-up costs on this host. Hot (`python "
    "bench/bench_scan.py`), a scan costs ~124 µs: the controller ~84, the simulated unit ~35; "
    "the profile (`python -m cProfile -s tottime bench/bench_scan.py`) is flat, 536 Python "
    "calls a scan, none above 5 %. In an idle daemon (cProfile started by a signal, 20 s): 39 "
    "loop turns a second for 10 scans, the scan and the plant step most of the Python time; a "
    "bare wait-and-wake of the scan driver costs ~280 µs of thread CPU here (a ScanDriver with "
    "a no-op controller, 300 waits; ~300 µs on the timerfd that makes scans punctual). "
    "Compiling is not the way out: mypyc on 45 modules of the scan path (the controller's "
    "mixins and the Generic dataclasses left out: mypyc cannot build them as written) took a "
    "hot scan from 124 to 86 µs (1.44×) but the idle daemon only from 1.07 to 0.97 % (one "
    "A/B, noisy). What would move it: a scan with far fewer calls (merged layers) and fewer "
    "wake-ups a second (housekeeping, storage watch, aiomqtt's misc timer: 13-17 against the "
    "bare loop's 10). The 10 Hz scan stays: it bounds trip → safe. Many units on one box run "
    "in a rig instead (`scale_units_per_box`: 0.23 % a unit). (2026-12-06) On this host a "
    "wake-up itself is dear: a bare `time.sleep(0.1)` loop costs 100-150 µs of CPU a wake "
    "(schedstat, 50 wakes), an `epoll.poll(0.1)` ~100 µs; an idle daemon's main thread made "
    "19 context switches a second (strace: 10 timerfd scans, the telemetry's outbox round trips "
    "and PUBACK, aiomqtt's 1 s timer, housekeeping's 2 s and the storage watch's 5-10 s "
    "timers), 0.91 % of the 1.0 %; its outbox thread 0.06 %. Folding the slow timers into the "
    "scan's wake-ups would save ~1 wake a second (~0.02 points). (2026-12-06) MQTT's share: "
    "two idle daemons side by side, one with `--mqtt` (1 Hz telemetry), gave 1.11-1.17 % "
    "against 0.75-0.78 % without, while the bare loop took 0.23-0.25 %. The Python work "
    "telemetry adds is small (cProfile by signal: ~0.3 ms a second); its cost is loop turns: "
    "22.7 a second without MQTT (2 a scan), 42.5 with it. Of those, the outbox committed every "
    "message twice (its flusher chose its wait before the row's PUBACK came back, so the ack "
    "got a commit of its own 0.2 s later): fixed, 42 -> 22 commits and 851 -> 752 loop turns in "
    "20 s, 1.25-1.38 % against 1.41-1.47 % in an A/B of the two commits side by side. What is "
    "left per message is the commit's completion, aiomqtt's `add_writer` handed over by "
    "`call_soon_threadsafe` (two turns), the PUBACK, the publish task, and aiomqtt's 1 s misc "
    "timer: ~15 turns a second, each dear on this host. (2026-12-06)"
)

OBSTACLES: dict[str, str] = {
    "cpu_percent": _SCAN_COST,
    "scale_units_per_box": "Each unit's CPU: see `cpu_percent`. " + _SCAN_COST,
    "outbox_drain_msgs_per_s": (
        "At the goal's edge, not under it: full runs gave 0.87×, 0.92× and 0.93× (`./scripts/"
        "bench --only outbox --repeats 5`), the raw client itself moving 11,800-15,700 msg/s "
        "between runs. What costs: the outbox's thread (reading pages ahead, deleting acked "
        "ranges) and the event loop take turns at the GIL; a rig's 100 outbox threads showed "
        "the same convoy at ~200 context switches a second each (strace: futex waits on the "
        "GIL). (2026-12-06) Since then the window publishes through paho directly "
        "(unit_controller/mqtt/direct_publisher.py), without aiomqtt's scan of every pending call "
        "at each publish: 1.11-1.14× against 0.89-0.93× before, three interleaved A/B runs of "
        "`python -m bench --only outbox --repeats 3`. If it misses again, that scan is not it. "
        "(2026-12-06) It did, inside whole runs only: 0.85× and 0.89× at 5553664 (the drain "
        "11,068-11,443 msg/s), 0.97× at 9cd0e1a in the whole run between them (11,602), while "
        "`--only outbox` gave 1.06-1.39× and, with cpu, startup, memory or fault_to_safe run "
        "before it in the same process, 1.02-1.28×. Interleaved A/B of `--only outbox` (three "
        "pairs): the drain's own rate at 5553664 14,448 / 13,534 / 10,889 msg/s against "
        "9cd0e1a's 14,871 / 13,373 / 10,639; the ratios moved with the raw client (8,584-15,871 "
        "msg/s on this VM within the hour). (2026-12-06)"
    ),
    "sim_speedup": (
        "The goal leaves 33 µs a scan in all; the realistic plant alone, stepped bare, takes "
        "17 µs (`python bench/bench_plant.py`: 5,940×), so the controller would get 16 µs for its "
        "~430 calls. The issue set 3,000× when the plant stepped at 33,000×. A scan now costs "
        "~124 µs: the controller ~84, the simulated unit ~35 (`python -m cProfile -s tottime "
        "bench/bench_scan.py`, flat). Compiling 45 modules of the scan path with mypyc gave "
        "1,166× (from 807×): not reachable in CPython, compiled or not, without a scan of far "
        "fewer layers. (2026-12-06)"
    ),
    "start_to_ready_s": (
        "At the goal's edge: medians of 3 gave 0.247-0.259 s, single starts 0.234-0.311 s on "
        "this VM. This session took ~11 ms off (the collector paused from the first line of "
        "main to the settle after READY: A/B medians of 15, 0.251 → 0.240 s in-process). CPU "
        "to READY ~0.22 s, nearly all imports (`python -X importtime`): the interpreter with "
        "asyncio, ssl and SQLite ~60 ms (the bare start), pydantic ~30 ms and its ~60 model "
        "classes (defer_build for all of them changed nothing: the cost is class creation, not "
        "schemas), 118 dataclass classes (~0.3 ms each on 3.11: 5-7 generated methods compiled "
        "one `exec` at a time), structlog ~25 ms with `structlog.dev`. What would move it: "
        "config without pydantic on the start path, fewer dataclass classes. (2026-12-06) The "
        "host decides the verdict: on one commit, medians of 9-11 starts gave 0.232, 0.290 and "
        "0.305 s within an hour (CPU to READY 0.23-0.29 s, schedstat). cProfile to READY: 118 "
        "dataclasses (58 ours, the rest pydantic, annotated_types and structlog) generate 557 "
        "methods, each compiled by its own `exec`, ~15 % of the CPU; pydantic's 59 models ~20 "
        "%. Python 3.13 (Raspberry Pi OS trixie) starts slower here, 0.256 against 0.230 s. "
        "(2026-12-06) Measured in fresh interpreters (medians of 7, each module after what it "
        "stands on): pydantic's import ~19 ms, its first model ~39 ms more (it loads "
        "`_generate_schema`, `core_schema`, `types` with `secrets`, and `annotated_types` only "
        "then), our config models ~30 ms: ~90 ms of the ~180 ms that are ours. `frozen=True` "
        "doubles a dataclass's creation (461 against 228 µs, five fields). Whole runs in one "
        "afternoon gave 0.272, 0.348 and 0.388 s for one commit; `--only startup --repeats 5` "
        "alternating 9cd0e1a and 5553664 gave 0.376, 0.289 against 0.236, 0.235 s. (2026-12-06) "
        "The control socket's request machinery (ops, their argument models, the PIN desk) now "
        "loads with the first session: ~10 ms (median of 7 fresh interpreters); alternating "
        "d661b85 and cb5b431, `--only startup --repeats 5` gave 0.309, 0.273 against 0.252, "
        "0.236 s. (2026-12-06)"
    ),
    "start_to_ready_1m_backlog_s": (
        "Not the backlog: opening it reads the `meta` table only. aiomqtt (with paho's "
        "urllib.request and http.client, ~20 ms) now loads when the link first connects, after "
        "READY. The rest as `start_to_ready_s`. (2026-12-06)"
    ),
    "rss_mb": (
        "At READY 41.1 MB (smaps_rollup: 25.2 anonymous, 16 file-backed): the interpreter with "
        "asyncio (ssl, OpenSSL) and sqlite3 ~22 MB; pydantic, structlog and our modules +14 "
        "(tracemalloc: 9.6 MB of Python objects, of it 3.1 code and module bodies, 2.9 "
        "pydantic's model construction, 1.1 dataclasses). A running batch adds ~1 MB now (the "
        "heat balance keeps 600 samples a window, not 6,000: -1.2 MB). Tried: defer_build for "
        "every model (40.6 MB both ways); `python -OO` -1.7 MB, not taken (it also strips the "
        "asserts the code narrows types with, and a unit would need opt-2 bytecode built at "
        "install). What would move it: pydantic off the run path. (2026-12-06) By package "
        "(tracemalloc of the daemon's imports): our code 4.0 MB, pydantic with pydantic-core, "
        "annotated_types and typing_extensions 4.2, structlog 0.8, transitions 0.6; smaps: "
        "pydantic-core's library 3.7 MB resident, OpenSSL (loaded by asyncio) 3.6. `-X "
        "no_debug_ranges` bytecode saves 0.2 MB. A long run no longer grows with the journal: "
        "its page cache is 256 KiB (was SQLite's 2 MB; +0.9 MB over one whole batch, now +0.3). "
        "(2026-12-06) Measured and not taken: `PYTHONMALLOC=malloc` (44.5 against 43.4 MB); "
        "libcrypto's 3.4 MB resident comes with `import hashlib` alone. The control socket's "
        "request machinery loads with the first session now: 44.2 -> 43.9 MB here, where the "
        "batch is started through the socket (more at READY). (2026-12-06)"
    ),
    "rss_after_drain_mb": (
        "Mostly not the drain: the same daemon with `--mqtt` and no backlog sits at 47.0-47.4 "
        "MB (aiomqtt, paho, urllib.request, the outbox's SQLite: +3.7 MB at READY over a daemon "
        "without MQTT). Draining 50,000 rows adds ~3 MB more, while Python's live objects grow "
        "by 0.2 MB: allocator fragmentation (pymalloc pools ~1.6 MB, the outbox thread's glibc "
        "arena ~1.4 MB, the main heap ~0.9 MB). `malloc_trim` did not return it (50.2 MB with "
        "it, 50.5 without), nor did MALLOC_ARENA_MAX=2. See `rss_mb` for the floor. "
        "(2026-12-06) Not the outbox thread's arena either: the journal and the outbox on one "
        "SQLite thread drained to 50.9 and 51.0 MB against 51.0 and 51.4 on two (not kept). "
        "smaps before and after the drain: pymalloc's arenas +2.3 MB, the main heap +0.7: "
        "arenas pinned by a few live objects each. (2026-12-06) paho's import of "
        "urllib.request (http.client, email) is now deferred until something reads it, which "
        "paho does only with PySocks installed: 50.7 -> 49.3 MB in one A/B (`--only memory`). "
        "(2026-12-06) tracemalloc (10 frames) over an in-process drain of 50,000 rows: live "
        "Python objects +9 kB while RSS grew 1.4 MB, so the allocator keeps it, not our objects. "
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
