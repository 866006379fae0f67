"""What stands in the way of each goal the suite misses, written by hand from profiles, and the
commands that show it. RESULTS.md prints it under its verdict beside the measured shortfall.

Keep it true: when a figure moves, measure again and rewrite its entry (with the date).
"""

from __future__ import annotations

from bench.core import Figure

_SCAN_COST = (
    "Python bytecode, run cold ten times a second. `perf record -e cpu-clock` on an idle "
    "daemon (`run --speed 1`, 15 s): 88 % of its samples in libpython (37 % the eval loop), "
    "5 % in the kernel, so not wake-ups: the bare loop's 10 wakes a second are all of its "
    "0.22-0.24 %. A scan costs ~124 µs hot (`python bench/bench_scan.py` on a usual day: the "
    "controller ~84, the simulated unit ~35; `python -m cProfile -s tottime "
    "bench/bench_scan.py` is flat, ~536 calls a scan, none above 5 %) but ~330 µs in the idle "
    "daemon (the `stats` op), its caches cold after 100 ms of other work. Of an idle scan's "
    "Python time (cProfile, 300 scans): the plant twin's step 26 %, interlocks 17 %, the "
    "process image 10 %, the scan's own body 8 %, applying outputs 6 %, telemetry's check "
    "5 %. Side by side without and with "
    "`--mqtt` (1 Hz telemetry): 0.75 % and 0.92-1.2 %; telemetry's part is its ~5 extra wakes "
    "a message (the outbox commit's completion, aiomqtt's `add_writer` handed over by "
    "`call_soon_threadsafe`, the PUBACK, the ack's commit, aiomqtt's 1 s timer), after the "
    "outbox's double commit was fixed (2026-12-06). Tried and measured: mypyc on 45 modules "
    "of the scan path, hot scan 124 -> 86 µs but the idle daemon only 1.07 -> 0.97 %; taking "
    "pydantic off the unit, unchanged (it never runs in a scan). Two facts about the "
    "figure: (1) it runs under the interpreter the README's setup finds; here that is "
    "pyenv's 3.11.7, built without PGO or LTO. Debian's own python3.11 (PGO and LTO, what "
    "a Raspberry Pi OS unit runs) with the same code and lock, side by side: 0.985 % against "
    "1.145 %, and 159 against 184 µs a hot scan (2026-12-07). (2) A unit on its instruments "
    "costs more, not less, than on the simulator: `run` on the serial backend against "
    "`unit-controller emulate` took 1.64 % (40 thread wakes a second: the relay board's "
    "10 Hz poll, the EZO circuits' reads) against 0.79 % on the mock backend, idle, no MQTT "
    "(2026-12-07). Evening of 2026-12-07: 0.965 % against the bare loop's 0.221 % (4.37×; "
    "3.76-4.26× in earlier runs that day). Night of 2026-12-07/08, after the day's fixes "
    "(none in the scan's hot path): 0.951 % against 0.206 % (4.61×), a host with helpers "
    "running beside it. What would move it: a scan of far fewer calls "
    "(merged layers: the "
    "interlocks, image and outputs each walk every device). The 10 Hz scan stays: it bounds "
    "trip -> safe. Many units on one box run in a rig instead (`scale_units_per_box`)."
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
        "fewer layers. (2026-12-06) Unchanged on 2026-12-07, on a slower host: 505× with 198 µs "
        "a scan, the bare plant 25.9 µs a step (3,861×); under Debian's python3.11 (PGO and "
        "LTO) a hot scan takes ~14 % less (159 against 184 µs, same code, side by side). "
        "(2026-12-07) Evening of 2026-12-07, after the day's safety fixes: 412× against the "
        "bare plant's 3,611× (`--only sim_speed`); the day's tree against its morning "
        "(15baa1f), interleaved twice with `bench/bench_scan.py`: 204 and 197 µs a scan "
        "against 217 and 200: no cost added. (2026-12-07) Night of 2026-12-07/08: 382× "
        "against the bare plant's 2,536× (`--only sim_speed`, runs 342-396×); the night's "
        "tree (35 commits: the fleet link's command queue, relay-board faults, latch holds by "
        "the devices a cause is judged on, a pH band on the spec) against the evening's "
        "(c88264c), interleaved twice: 236 and 233 µs a scan against 261 and 245: no cost "
        "added. (2026-12-08)"
    ),
    "start_to_ready_s": (
        "Nearer since pydantic left the unit (hal.schema, 2026-12-07), and since structlog "
        "loads with the first message worth writing (hal.log; a unit at `warning` starts "
        "writing nothing): 2.41-2.99× the bare start before, 2.04-2.35× after (`--only "
        "startup --repeats 5`, two or three runs each, 2026-12-07). So it passes or misses with "
        "the host: the bare start itself took 0.073-0.126 s on this VM the same day. Alternating "
        "the last pydantic commit (f2b489e) and 68e81ea three times: 0.568, 0.466, 0.453 s "
        "against 0.325, 0.329, 0.319 s. What is left (cProfile and `python -X importtime` to "
        "READY, ~340 modules, none above 3 % of it): the interpreter with asyncio, ssl, SQLite "
        "and logging (the bare start); 59 dataclasses of ours on the start path, 46-78 ms in "
        "all on 3.11 (every generated method is its own `exec`: ~0.4 ms a plain class, ~0.8 "
        "frozen; a hand-written class with `__slots__` ~0.01); the phase runner, recipes and "
        "batch record (~7 ms) that the scan's targets stand on; regex compiles at import "
        "~10 ms, 2 of them ours; argparse building every subcommand's parser (~10 ms). What "
        "would move it: plain classes instead of frozen dataclasses on the start path. "
        "(2026-12-07)"
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
