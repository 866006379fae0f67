"""`./scripts/bench`: every figure beside its baseline, a table, `bench/results.json` and
`bench/RESULTS.md`.

Figures run one group at a time (never two at once: they would measure each other), each group
interleaving its figure with the baseline that anchors it.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.core import Context, Figure
from bench.figures.startup import ensure_bytecode
from bench.obstacles import OBSTACLES, shortfall

HERE = Path(__file__).resolve().parent

# Groups in the order they run; each is bench/figures/<name>.py with KEYS and measure(ctx).
GROUPS = (
    "lateness",
    "cpu",
    "fault_to_safe",
    "startup",
    "memory",
    "outbox",
    "sim_speed",
    "scale",
    "control",
)


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    found: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            found.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    # x86 names the CPU in "model name"; a Raspberry Pi names the board in "Model".
    model = found.get("model name") or found.get("model") or found.get("hardware") or ""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_at_start": [round(x, 2) for x in load],
    }


def run_groups(
    ctx: Context, groups: tuple[str, ...]
) -> tuple[dict[str, Figure | float], dict[str, str], dict[str, float]]:
    """Measure each group; its figures, the errors of groups that failed, seconds per group."""
    figures: dict[str, Figure | float] = {}
    errors: dict[str, str] = {}
    took: dict[str, float] = {}
    for name in groups:
        module = importlib.import_module(f"bench.figures.{name}")
        ctx.say(f"== {name}")
        started = time.monotonic()
        try:
            measured = module.measure(ctx)
        except Exception as exc:  # one broken group must not lose the others' figures
            errors[name] = f"{type(exc).__name__}: {exc}"
            ctx.say(traceback.format_exc())
            measured = {}
        took[name] = round(time.monotonic() - started, 1)
        missing = [key for key in module.KEYS if key not in measured]
        if missing and name not in errors:
            errors[name] = f"did not measure {', '.join(missing)}"
        figures.update(measured)
        for key in module.KEYS:
            if key in measured:
                ctx.say("   " + _line(key, measured[key]))
    return figures, errors, took


def _line(key: str, figure: Figure | float) -> str:
    if not isinstance(figure, Figure):
        return f"{key}: {figure:g}"
    parts = [f"{key}: {_fmt(figure.value)} {figure.unit}".rstrip()]
    if figure.baseline is not None:
        parts.append(f"baseline {_fmt(figure.baseline)}")
    if figure.ratio is not None:
        parts.append(f"ratio {figure.ratio:.2f}×")
    if figure.goal is not None:
        parts.append(f"goal {figure.goal.text()}: {'pass' if figure.passed else 'FAIL'}")
    return ", ".join(parts)


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def results_json(
    figures: dict[str, Figure | float],
    errors: dict[str, str],
    took: dict[str, float],
    *,
    about: dict[str, Any],
) -> dict[str, Any]:
    """The `results.json` document: each key `{value, baseline, ratio, goal, pass}` or a number."""
    document: dict[str, Any] = {
        key: figure.as_json() if isinstance(figure, Figure) else figure
        for key, figure in figures.items()
    }
    document["_about"] = {**about, "errors": errors, "seconds_per_group": took}
    return document


def results_markdown(
    figures: dict[str, Figure | float], errors: dict[str, str], *, about: dict[str, Any]
) -> str:
    """RESULTS.md: the table, what it ran on, and what did not pass."""
    m = about["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Taken {about['date']} by `./scripts/bench` ({about['scale']}, {about['repeats']} "
        f"interleaved run(s) per figure, median shown) on {m['cpu']}, {m['cores']} cores, "
        f"Python {m['python']}, kernel {m['kernel']}; load average at start "
        f"{m['load_at_start'][0]}; {about['wall_s']:.0f} s in all. Written by the script: do not "
        "edit; what stands in the way of a missed goal comes from bench/obstacles.py.",
        "",
        "| figure | value | baseline | ratio | goal | pass |",
        "|---|---|---|---|---|---|",
    ]
    failed = []
    for key, figure in figures.items():
        if not isinstance(figure, Figure):
            lines.append(f"| `{key}` | {_fmt(figure)} | | | | |")
            continue
        ratio = "" if figure.ratio is None else f"{figure.ratio:.2f}×"
        goal = "" if figure.goal is None else figure.goal.text()
        verdict = {None: "", True: "pass", False: "**FAIL**"}[figure.passed]
        base = "" if figure.baseline is None else _fmt(figure.baseline)
        value = f"{_fmt(figure.value)} {figure.unit}".rstrip()
        lines.append(f"| `{key}` | {value} | {base} | {ratio} | {goal} | {verdict} |")
        if figure.passed is False:
            failed.append(key)
    notes = [(key, f.note) for key, f in figures.items() if isinstance(f, Figure) and f.note]
    if notes:
        lines += ["", "## How each figure is taken", ""]
        lines += [f"- `{key}`: {note}" for key, note in notes]
    lines += ["", "## Verdict", ""]
    if errors:
        lines += [f"- group `{name}` failed: {error}" for name, error in errors.items()]
    if failed:
        lines.append(f"- {len(failed)} goal(s) missed: " + ", ".join(f"`{k}`" for k in failed))
        lines += ["", "## What stands in the way", ""]
        for key in failed:
            figure = figures[key]
            assert isinstance(figure, Figure)
            why = OBSTACLES.get(key, "not yet profiled: add it to bench/obstacles.py")
            lines.append(f"- `{key}`: {shortfall(figure)}. {why}")
    if not errors and not failed:
        lines.append("- every goal passed")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the suite; exit 0 when every goal passed, 1 when one did not, 2 on a broken group."""
    parser = argparse.ArgumentParser(
        prog="bench", description="Benchmarks beside their baselines (bench/RESULTS.md)."
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=GROUPS,
        metavar="GROUP",
        help=f"run these groups only (of {', '.join(GROUPS)})",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a tiny scale, to check the code (its figures mean nothing)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved runs per figure (default 3, 1 with --tiny)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE,
        help="where results.json and RESULTS.md go (default bench/)",
    )
    args = parser.parse_args(argv)
    groups = tuple(args.only) if args.only else GROUPS
    repeats = args.repeats if args.repeats is not None else (1 if args.tiny else 3)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    started = time.monotonic()
    about: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "scale": "tiny" if args.tiny else "full",
        "repeats": repeats,
        "groups": list(groups),
    }
    # Every daemon a figure starts reads bytecode, as on a unit (a wheel install compiles it).
    ensure_bytecode()
    with tempfile.TemporaryDirectory(prefix="uc-bench-") as work:
        ctx = Context(
            workdir=Path(work),
            tiny=args.tiny,
            repeats=repeats,
            say=lambda text: print(text, flush=True),
        )
        figures, errors, took = run_groups(ctx, groups)
    about["wall_s"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    document = results_json(figures, errors, took, about=about)
    (args.out / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.out / "RESULTS.md").write_text(results_markdown(figures, errors, about=about))
    print()
    print(results_markdown(figures, errors, about=about))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'RESULTS.md'}")
    if errors:
        return 2
    missed = [f for f in figures.values() if isinstance(f, Figure) and f.passed is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
