"""The design envelope: a range for each realism parameter, and plants drawn from it by seed.

Control is tuned and judged on these plants, never on one (DESIGN §8). Pure data and sampling;
never runs a plant.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from hal.schema import ValidationError
from hal.sim.params import PlantParams, plant_figures

# Defaults (issue 9): probe lag, mixing dead time, noise, calibration offset, metal-feed rate
# and hydroxide demand per metal, each over what real units and feeds show.
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "ph_tau_s": (5.0, 30.0),
    "mixing_dead_time_s": (5.0, 20.0),
    "ph_noise": (0.01, 0.03),
    "ph_offset": (-0.02, 0.02),
    "feed_scale": (1.0, 5.0),
    "hydroxide_per_metal": (1.9, 2.05),
}


def with_plant_values(params: PlantParams, values: dict[str, float]) -> PlantParams:
    """`params` with the flat `values` (config names, `black_mass.ni_pct` for the black mass)
    in place; raises ValueError naming each unknown name or out-of-bounds value."""
    known = plant_figures(params)
    unknown = sorted(set(values) - set(known))
    if unknown:
        # One problem a name, each starting with its own location (the caller prefixes it).
        problems = [f"{name}: not a plant parameter" for name in unknown]
        problems[-1] += f" (known: {', '.join(sorted(known))})"
        raise ValueError("; ".join(problems))
    document: dict[str, Any] = params.model_dump()
    for name, value in values.items():
        if "." in name:
            group, sub = name.split(".", 1)
            document[group][sub] = value
        else:
            document[name] = value
    try:
        return PlantParams.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}: {error['msg']} (got {error.get('input')})")
        raise ValueError("; ".join(problems)) from None


def range_problems(ranges: dict[str, tuple[float, float]]) -> list[str]:
    """Why `ranges` is not an envelope: unknown names, low above high, ends out of bounds."""
    problems = []
    base = PlantParams()
    for name, (low, high) in sorted(ranges.items()):
        if low > high:
            problems.append(f"{name}: low {low:g} is above high {high:g}")
            continue
        for end in (low, high):
            try:
                with_plant_values(base, {name: end})
            except ValueError as exc:
                problems.append(str(exc))
                break
    return problems


def draw(
    params: PlantParams, ranges: dict[str, tuple[float, float]], *, runs: int, seed: int
) -> list[tuple[int, PlantParams]]:
    """`runs` plants (with a noise seed each) by Latin hypercube over `ranges`: every parameter's
    range is cut into `runs` strata and each stratum is used once, so a few runs still span the
    whole envelope. The same seed draws the same plants."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    rng = random.Random(seed)
    columns: dict[str, list[float]] = {}
    for name, (low, high) in sorted(ranges.items()):
        strata = [(k + rng.random()) / runs for k in range(runs)]
        rng.shuffle(strata)
        columns[name] = [low + (high - low) * u for u in strata]
    plants = []
    for i in range(runs):
        values = {name: column[i] for name, column in columns.items()}
        plants.append((rng.randrange(2**31), with_plant_values(params, values)))
    return plants


def corners(params: PlantParams, ranges: dict[str, tuple[float, float]]) -> list[dict[str, float]]:
    """Every corner of the envelope (2^k combinations of low and high), as flat values."""
    names = sorted(ranges)
    out = []
    for ends in itertools.product((0, 1), repeat=len(names)):
        out.append({name: ranges[name][end] for name, end in zip(names, ends, strict=True)})
    return out


# More corners than this is a sweep of days, not a check: hold parameters fixed instead.
MAX_CORNERS = 1024


class TooManyCorners(ValueError):
    """The envelope ranges so many parameters that its corners are no longer a check."""


def corner_plants(
    params: PlantParams, ranges: dict[str, tuple[float, float]], *, seed: int
) -> list[tuple[int, PlantParams]]:
    """Every corner of the envelope as a plant, each with a noise seed drawn from `seed`.

    Raises TooManyCorners when there are more than MAX_CORNERS."""
    count = 2 ** len(ranges)
    if count > MAX_CORNERS:
        raise TooManyCorners(
            f"{len(ranges)} ranged parameters make {count} corners (at most {MAX_CORNERS}); "
            "hold some fixed (--plant NAME=VALUE, or low = high in [sim.envelope])"
        )
    rng = random.Random(seed)
    return [
        (rng.randrange(2**31), with_plant_values(params, corner))
        for corner in corners(params, ranges)
    ]
