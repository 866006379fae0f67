"""Figures: how long `unit-controller run` takes from exec to READY=1 on its notify socket, as
systemd would see it, with an empty outbox and with a 1M-row backlog left by a long broker
outage; beside the interpreter floor (bench/baselines/bare_start.py), interleaved.

Each start is a restart on a state directory a first (untimed) start made, as a unit restarts:
journal and lock in place. The backlog start runs with `--mqtt` to a port nobody listens on (the
broker is still away: the outbox is opened, nothing is sent) and a config whose outbox cap holds
the backlog (1 GiB; the example's 256 MiB would make the first commit drop most of it) and whose
stop does not wait for a broker (`drain_timeout_s = 0`). Never changes product code.
"""

from __future__ import annotations

import compileall
import json
from collections.abc import Callable
from pathlib import Path

from bench.backlog import fill_outbox, outbox_path
from bench.baselines.bare_start import BareStart
from bench.core import Context, Figure, Goal, interleaved, median
from bench.procs import ROOT, DaemonProc, free_port

KEYS = ("start_to_ready_s", "start_to_ready_1m_backlog_s")

BACKLOG_ROWS = 1_000_000
OUTBOX_CAP_BYTES = 1024**3


def ensure_bytecode() -> None:
    """Compile the project's modules to `__pycache__` (what installing a wheel does), so a start
    reads bytecode as on a unit. Where PYTHONDONTWRITEBYTECODE is set, a daemon would otherwise
    compile every module from source at each start (~0.1 s of CPU), which no unit does."""
    for package in ("unit_controller", "hal"):
        compileall.compile_dir(ROOT / package, quiet=1)


def backlog_config(path: Path) -> Path:
    """The simulator's example config with an outbox cap that holds the backlog and a stop that
    does not wait for the (absent) broker; written to `path`."""
    from unit_controller.config import load_config
    from unit_controller.toml_write import dumps

    document = json.loads(json.dumps(load_config().model_dump(mode="json", exclude_unset=True)))
    mqtt = document.setdefault("mqtt", {})
    mqtt["drain_timeout_s"] = 0.0
    mqtt.setdefault("outbox", {})["max_bytes"] = OUTBOX_CAP_BYTES
    path.write_text(dumps(document), encoding="utf-8")
    return path


def restarts(base: Path, *, args: tuple[str, ...] = ()) -> Callable[[], float]:
    """A first start and clean stop on `base` (untimed); then each call is one timed restart."""
    first = DaemonProc(base, args=args)
    first.start()
    first.stop()

    def run() -> float:
        daemon = DaemonProc(base, args=args)
        try:
            return daemon.start()
        finally:
            daemon.stop()

    return run


def bare_starts(base: Path) -> Callable[[], float]:
    """Each call: one start of the bare process to READY=1, then stop it."""

    def run() -> float:
        with BareStart(base) as bare:
            return bare.start()

    return run


def measure(ctx: Context) -> dict[str, Figure]:
    """`ctx.repeats` restarts of each kind, interleaved with the bare start; medians."""
    ensure_bytecode()
    rows = int(ctx.scale(BACKLOG_ROWS, 1_000))
    plain = restarts(ctx.scratch("startup-plain"))
    backlog_base = ctx.scratch("startup-backlog")
    config = backlog_config(backlog_base / "unit.toml")
    # Nothing listens there: the broker is away, as it was while the backlog grew.
    args = ("--config", str(config), "--mqtt", f"mqtt://127.0.0.1:{free_port()}")
    with_backlog = restarts(backlog_base, args=args)  # makes the outbox; the rows go in next
    ctx.say(f"   filling the outbox with {rows:,} rows")
    fill_outbox(outbox_path(backlog_base / "state"), rows)
    bare = bare_starts(ctx.scratch("startup-bare"))
    times, backlog_times, bare_times = interleaved(ctx.repeats, plain, with_backlog, bare)
    for plain_s, backlog_s, bare_s in zip(times, backlog_times, bare_times, strict=True):
        ctx.say(
            f"   start → READY {plain_s:.3f} s; with the backlog {backlog_s:.3f} s; "
            f"bare {bare_s:.3f} s"
        )
    baseline = median(bare_times)
    how = (
        "`unit-controller run` (simulator example config, speed 1) restarted on its state "
        "directory, exec → READY=1 on its NOTIFY_SOCKET; median of "
        f"{ctx.repeats}, interleaved with the bare start (python, asyncio, SQLite, READY=1)"
    )
    return {
        "start_to_ready_s": Figure(
            median(times), "s", goal=Goal(0.25, unit="s"), baseline=baseline, note=how,
            runs=tuple(times),
        ),
        "start_to_ready_1m_backlog_s": Figure(
            median(backlog_times), "s", goal=Goal(0.30, unit="s"), baseline=baseline,
            note=f"the same with {rows:,} telemetry rows (400 B) in the outbox and `--mqtt` to "
            "a broker that is away (outbox cap raised to 1 GiB to hold them)",
            runs=tuple(backlog_times),
        ),
    }  # fmt: skip
