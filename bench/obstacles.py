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
    "timer: ~15 turns a second, each dear on this host. (2026-12-06) Not moved by taking "
    "pydantic off the unit (it validates at start-up and on commands, never in a scan): "
    "0.748 % against the bare loop's 0.16 % in the full run of 2026-12-07. (2026-12-07)"
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
        "Nearer since pydantic left the unit (hal.schema, 2026-12-07), still over on this host. "
        "Alternating the last pydantic commit (f2b489e) and 68e81ea, `--only startup --repeats "
        "5` three times each: 0.568, 0.466, 0.453 s against 0.325, 0.329, 0.319 s; as ratios "
        "to the bare start, 3.5-4.5× against 2.5-3.1×. In fresh interpreters the daemon's "
        "imports and config load went 351 -> 207 ms (medians of 12). The host ran slow all "
        "day (the bare start 0.103-0.132 s where it is usually 0.094 s; `bench/bench_plant.py` "
        "29-36 µs a step where it is 17), so on a usual day the same ratio is ~0.25-0.29 s. "
        "What is left (cProfile and `python -X importtime` to READY, 361 modules, none above "
        "3 % of it): the interpreter with asyncio, ssl, SQLite and logging (the bare start); "
        "59 dataclass classes of ours on the start path, ~0.4-0.8 ms each on 3.11 (every "
        "generated method is its own `exec`; frozen ones cost twice; 59 such classes took "
        "46-86 ms here in a loop, NamedTuples 18 ms); structlog ~15 ms (its `dev` and "
        "`threadlocal` load `uuid`, `platform` and tracebacks); the phase runner, recipes and "
        "batch record (~7 ms) that the scan's targets stand on; regex compiles at import "
        "~10 ms, 2 of them ours. The editable install's finder (`pip install -e`), which a unit "
        "does not have, costs little: what it imports (pathlib, re, urllib.parse) the daemon "
        "imports anyway. What would move it: plain classes instead of frozen dataclasses on "
        "the start path. (2026-12-07)"
    ),
    "start_to_ready_1m_backlog_s": (
        "Not the backlog: opening it reads the `meta` table only. aiomqtt (with paho's "
        "urllib.request and http.client, ~20 ms) loads when the link first connects, after "
        "READY. The rest as `start_to_ready_s`. (2026-12-07)"
    ),
    "rss_mb": (
        "Met since pydantic left the unit (hal.schema, 2026-12-07): 44.3 -> 34.3 MB. pydantic "
        "had cost 12.8 MB resident (pydantic-core's library 5.3, its Python modules 4.4, the "
        "first model 2.6; fresh interpreters over asyncio, ssl and sqlite3). What is left over "
        "the bare process's 23 MB: our modules' code (~4 MB), structlog, transitions, the plant "
        "twin and the batch. (2026-12-07)"
    ),
    "rss_after_drain_mb": (
        "Met since pydantic left the unit: 49.1 -> 38.6 MB. The drain itself still adds ~3 MB "
        "that the allocator keeps (pymalloc arenas pinned by a few live objects; live Python "
        "objects grow by kilobytes, tracemalloc), and `--mqtt` adds aiomqtt and paho (~3.7 MB "
        "at READY). (2026-12-07)"
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
