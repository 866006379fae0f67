"""`unit-controller envelope`: one recipe on many plants drawn from the design envelope, each run
twice, under the unit's controllers and under the plain on/off baseline, judged on the plant's
true state.

Runs batches in worker processes (virtual time, deterministic per plant and seed); never touches
hardware.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hal.sim.envelope import corner_plants, draw
from hal.sim.params import plant_figures
from unit_controller.config import UnitConfig, with_baseline_control
from unit_controller.machine import State
from unit_controller.recipes.loader import RECIPES_DIR, load_recipe
from unit_controller.recipes.model import Recipe
from unit_controller.sim.runner import SimOptions, SimulationRun

# Both controllers get the same simulated operator: a timed-out phase is unheld twice.
RESUME_TIMEOUTS = 2


@dataclass(frozen=True, slots=True)
class EnvelopeOptions:
    """Which recipe, how many plants (or every corner), from which seed, on how many processes."""

    recipe: str
    runs: int
    seed: int
    jobs: int = 1
    corners: bool = False  # every corner of the envelope instead of `runs` drawn plants
    recipes_dir: Path = RECIPES_DIR


@dataclass(frozen=True, slots=True)
class _Job:
    index: int
    baseline: bool
    config: UnitConfig
    recipe: str
    seed: int
    recipes_dir: Path


def holding_phases(recipe: Recipe) -> list[str]:
    """The pH phases that hold a setpoint for a set time (co-precipitation's feeding phase), by
    which a run's in-band figure is judged; every pH phase when none holds for a set time."""
    ph = [p for p in recipe.phases if p.ph is not None]
    holding = [p.name for p in ph if p.until.duration_min is not None]
    return holding or [p.name for p in ph]


def _batch(job: _Job) -> dict[str, Any]:
    """One batch in this process; its judged figures as plain data."""
    options = SimOptions(
        recipe=job.recipe,
        seed=job.seed,
        recipes_dir=job.recipes_dir,
        resume_timeouts=RESUME_TIMEOUTS,
    )
    run = SimulationRun(config=job.config, options=options, out=io.StringIO())
    result = asyncio.run(run.run())
    judged = holding_phases(run.loaded.recipe)
    true_s = in_true = measured_s = in_measured = iae_ph = iae_control = iae_floor = iae_t = 0.0
    reached = False
    for name in judged:
        phase = run.truth.ph_phases.get(name)
        if phase is not None:
            reached = True
            true_s += phase.seconds
            in_true += phase.in_band_s
        iae = run.truth.phase_iae.get(name)
        if iae is not None:
            iae_ph += iae.ph
            iae_control += iae.ph_control
            iae_floor += iae.ph_probe_floor
            iae_t += iae.temperature
    batch = run.controller.batch
    if batch is not None:
        for record in batch.phases:
            if record.name in judged:
                measured_s += record.ph_s
                in_measured += record.ph_in_band_s
    summary = result.summary
    return {
        "index": job.index,
        "baseline": job.baseline,
        "final_state": summary["final_state"],
        "ph": {
            "true_in_band_fraction": round(in_true / true_s, 4) if true_s else None,
            "in_band_fraction": round(in_measured / measured_s, 4) if measured_s else None,
            "phases": summary["ph"]["true_in_band_fraction"],
        },
        # over the judged phases only: both controllers held the same setpoint for as long
        "iae": {
            "ph_true": round(iae_ph, 2),
            "ph_control": round(iae_control, 2),
            "ph_probe_floor": round(iae_floor, 2),
            "temperature_true": round(iae_t, 1),
        }
        if reached
        else None,
        "batch_iae": summary["iae"],
        "temperature": {"true_overshoot_c": summary["temperature"]["true_overshoot_c"]},
        "alarms": sorted({a["id"] for a in summary["alarms"]}),
        "sim_seconds": summary["sim_seconds"],
    }


def _ratio(ours: dict[str, Any], baseline: dict[str, Any], key: str) -> float | None:
    """Ours over the baseline's IAE; None when either never reached the judged phases, or
    either batch did not complete (a held batch's IAE stops short: no comparison)."""
    if State.COMPLETE.value != ours["final_state"] or State.COMPLETE.value != baseline[
        "final_state"
    ]:
        return None
    our_iae: dict[str, float] | None = ours["iae"]
    base_iae: dict[str, float] | None = baseline["iae"]
    if our_iae is None or base_iae is None:
        return None
    if base_iae[key] <= 0.0:
        return 1.0 if our_iae[key] <= 0.0 else None
    return round(our_iae[key] / base_iae[key], 3)


def run_envelope(
    config: UnitConfig,
    options: EnvelopeOptions,
    *,
    fixed: dict[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
    started: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Draw the plants, run every batch (both controllers) and summarise.

    `fixed`: plant parameters held at a value for every run (`--plant`); the envelope leaves them
    alone. Raises RecipeError for a recipe that cannot run, TooManyCorners for an envelope with
    too many corners (both before any batch starts). `started` is called with the number of
    plants once both are known to be fine, before the first batch.
    """
    fixed = fixed or {}
    loaded = load_recipe(options.recipe, config=config, recipes_dir=options.recipes_dir)
    holds_ph = any(phase.ph is not None for phase in loaded.recipe.phases)
    ranges = {k: v for k, v in config.sim.envelope_ranges().items() if k not in fixed}
    if options.corners:
        plants = corner_plants(config.sim.plant, ranges, seed=options.seed)
    else:
        plants = draw(config.sim.plant, ranges, runs=options.runs, seed=options.seed)
    jobs: list[_Job] = []
    drawn: list[dict[str, float]] = []
    for i, (seed, params) in enumerate(plants):
        plant_config = config.model_copy(
            update={"sim": config.sim.model_copy(update={"plant": params})}
        )
        values = plant_figures(params)
        drawn.append({name: round(values[name], 4) for name in ranges if name in values})
        for baseline in (False, True):
            jobs.append(
                _Job(
                    index=i,
                    baseline=baseline,
                    config=with_baseline_control(plant_config) if baseline else plant_config,
                    recipe=options.recipe,
                    seed=seed,
                    recipes_dir=options.recipes_dir,
                )
            )
    if started is not None:
        started(len(drawn))
    results: dict[tuple[int, bool], dict[str, Any]] = {}
    workers = max(1, min(options.jobs, len(jobs)))
    if workers == 1:
        for outcome in map(_batch, jobs):
            results[(outcome["index"], outcome["baseline"])] = outcome
            _report(progress, outcome, len(results), len(jobs))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for future in as_completed([pool.submit(_batch, job) for job in jobs]):
                outcome = future.result()
                results[(outcome["index"], outcome["baseline"])] = outcome
                _report(progress, outcome, len(results), len(jobs))
    runs = []
    for i, (seed, _) in enumerate(plants):
        ours, base = results[(i, False)], results[(i, True)]
        runs.append(
            {
                "seed": seed,
                "plant": drawn[i],
                "final_state": ours["final_state"],
                "ph": ours["ph"],
                "iae": ours["iae"],
                "temperature": ours["temperature"],
                "alarms": ours["alarms"],
                "iae_ratio": {
                    "ph": _ratio(ours, base, "ph_true"),
                    "ph_control": _ratio(ours, base, "ph_control"),
                    "temperature": _ratio(ours, base, "temperature_true"),
                },
                "baseline": {
                    "final_state": base["final_state"],
                    "ph": base["ph"],
                    "iae": base["iae"],
                    "temperature": base["temperature"],
                },
            }
        )
    # A recipe that holds no pH claims no figure; a run that never reached its pH phase spent
    # none of it in band.
    judged = holds_ph
    in_band = [r["ph"]["true_in_band_fraction"] or 0.0 for r in runs]
    return {
        "recipe": options.recipe,
        "seed": options.seed,
        "sampling": "corners" if options.corners else "latin_hypercube",
        "fixed": fixed,
        "ranges": {k: list(v) for k, v in sorted(ranges.items())},
        "runs": runs,
        "summary": {
            "runs": len(runs),
            "complete": sum(r["final_state"] == State.COMPLETE.value for r in runs),
            "baseline_complete": sum(
                r["baseline"]["final_state"] == State.COMPLETE.value for r in runs
            ),
            "median_true_in_band": round(statistics.median(in_band), 4) if judged else None,
            "worst_true_in_band": round(min(in_band), 4) if judged else None,
            "worst_iae_ratio_ph": _worst(r["iae_ratio"]["ph"] for r in runs),
            "worst_iae_ratio_ph_control": _worst(r["iae_ratio"]["ph_control"] for r in runs),
            "worst_iae_ratio_temperature": _worst(r["iae_ratio"]["temperature"] for r in runs),
        },
    }


def _worst(ratios: Iterable[float | None]) -> float | None:
    """The largest ratio; None when any run could not be compared."""
    values = list(ratios)
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


def _report(
    progress: Callable[[str], None] | None, outcome: dict[str, Any], done: int, total: int
) -> None:
    if progress is None:
        return
    who = "on/off baseline" if outcome["baseline"] else "controller"
    band = outcome["ph"]["true_in_band_fraction"]
    band_text = "-" if band is None else f"{band:.1%}"
    iae = outcome["iae"]
    iae_text = (
        "-"
        if iae is None
        else f"{iae['ph_true']:6.1f} (control {iae['ph_control']:6.1f})  IAE T "
        f"{iae['temperature_true']:7.1f}"
    )
    progress(
        f"[{done}/{total}] plant {outcome['index'] + 1} {who:<15} {outcome['final_state']:<9} "
        f"true pH in band {band_text:>6}  IAE pH {iae_text}"
    )


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
