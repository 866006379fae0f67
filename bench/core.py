"""What every figure shares: a result beside its baseline and goal, order statistics, and the
run's context (scale, repeats, a scratch directory)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Goal:
    """A goal on a value (`absolute`) or on its ratio to the baseline (`ratio`)."""

    limit: float
    better: Better = "lower"
    on: Literal["value", "ratio"] = "value"
    unit: str = ""

    def met(self, value: float, ratio: float | None) -> bool:
        """Whether `value` (or its ratio) meets the goal."""
        subject = ratio if self.on == "ratio" else value
        if subject is None or math.isnan(subject):
            return False
        return subject <= self.limit if self.better == "lower" else subject >= self.limit

    def text(self) -> str:
        """The goal as a reader writes it: `≤ 40 MB`, `≥ 0.9× baseline`."""
        sign = "≤" if self.better == "lower" else "≥"
        if self.on == "ratio":
            return f"{sign} {self.limit:g}× baseline"
        return f"{sign} {self.limit:g}{(' ' + self.unit) if self.unit else ''}"


@dataclass(frozen=True)
class Figure:
    """One measured figure: its value, the baseline measured beside it, and its goal."""

    value: float
    unit: str
    goal: Goal | None = None
    baseline: float | None = None
    note: str = ""
    runs: tuple[float, ...] = ()

    @property
    def ratio(self) -> float | None:
        """value / baseline (None without a baseline)."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        """Whether the goal is met (None without a goal)."""
        return None if self.goal is None else self.goal.met(self.value, self.ratio)

    def as_json(self) -> dict[str, Any]:
        """The `results.json` shape: value, baseline, ratio, goal, pass (and the unit)."""
        ratio = self.ratio
        return {
            "value": _round(self.value),
            "baseline": None if self.baseline is None else _round(self.baseline),
            "ratio": None if ratio is None else round(ratio, 3),
            "goal": None if self.goal is None else self.goal.text(),
            "pass": self.passed,
            "unit": self.unit,
            **({"runs": [_round(r) for r in self.runs]} if self.runs else {}),
            **({"note": self.note} if self.note else {}),
        }


def _round(value: float) -> float:
    if value == 0 or math.isnan(value) or math.isinf(value):
        return value
    digits = max(0, 4 - math.floor(math.log10(abs(value))))
    return round(value, digits)


@dataclass
class Context:
    """How a figure runs: `tiny` on the suite's own tests (seconds, not minutes), `repeats`
    interleaved runs of a figure and its baseline, and a scratch directory."""

    workdir: Path
    tiny: bool = False
    repeats: int = 3
    say: Callable[[str], None] = print
    notes: list[str] = field(default_factory=list)

    def scale(self, full: float, tiny: float) -> float:
        """`full` on a real run, `tiny` under the suite's own tests."""
        return tiny if self.tiny else full

    def scratch(self, name: str) -> Path:
        """A fresh directory under the work directory."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by nearest rank; NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    """The median, NaN for none."""
    items = list(values)
    return statistics.median(items) if items else math.nan


def interleaved(repeats: int, *runs: Callable[[], float]) -> list[list[float]]:
    """Run each of `runs` in turn, `repeats` times over (a, b, a, b, …), so that a figure and its
    baseline see the same machine; one list of results per run."""
    results: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for index, run in enumerate(runs):
            results[index].append(run())
    return results
