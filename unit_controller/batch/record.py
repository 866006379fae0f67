"""The batch record: phases with times, reagent totals and how well the loops held.

Fed once per scan with what was measured and applied; never changes the process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hal.outputs import Outputs
from unit_controller.batch.phase_runner import PhaseTargets
from unit_controller.process_image import ProcessImage

# The co-precipitation specification: pH within ±0.05 of its setpoint (DESIGN §1).
PH_BAND = 0.05


@dataclass(slots=True)
class PhaseRecord:
    """One phase as it ran."""

    name: str
    start_s: float
    end_s: float | None = None
    temperature_setpoint_c: float | None = None
    ph_setpoint: float | None = None
    ph_s: float = 0.0
    ph_in_band_s: float = 0.0
    reached_setpoint: bool = False
    start_side: float = 0.0  # +1 when the phase began above its setpoint (a hot liquor to cool)
    overshoot_c: float = 0.0
    t_min: float | None = None
    t_max: float | None = None
    ph_min: float | None = None
    ph_max: float | None = None
    # Sums and counts of the good readings taken while executing, for the phase means.
    t_sum: float = 0.0
    t_count: int = 0
    ph_sum: float = 0.0
    ph_count: int = 0

    @property
    def t_mean(self) -> float | None:
        """Mean of the good temperature readings while executing (None without one)."""
        return self.t_sum / self.t_count if self.t_count else None

    @property
    def ph_mean(self) -> float | None:
        """Mean of the good pH readings while executing (None without one)."""
        return self.ph_sum / self.ph_count if self.ph_count else None

    @property
    def ph_in_band_fraction(self) -> float | None:
        """Fraction of pH-controlled time within the band (None if pH was not controlled)."""
        if self.ph_setpoint is None or self.ph_s <= 0:
            return None
        return self.ph_in_band_s / self.ph_s

    def stats(self) -> dict[str, Any]:
        """Setpoints and measured statistics as plain data (T to 2 dp, pH to 3 dp)."""
        fraction = self.ph_in_band_fraction
        return {
            "temperature_sp_c": self.temperature_setpoint_c,
            "ph_sp": self.ph_setpoint,
            "t_min": _round(self.t_min, 2),
            "t_max": _round(self.t_max, 2),
            "t_mean": _round(self.t_mean, 2),
            "ph_min": _round(self.ph_min, 3),
            "ph_max": _round(self.ph_max, 3),
            "ph_mean": _round(self.ph_mean, 3),
            "ph_in_band_fraction": _round(fraction, 4),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(slots=True)
class BatchRecord:
    """A whole batch: the recipe, its phases, reagents and measured extremes."""

    recipe: str
    start_s: float
    phases: list[PhaseRecord] = field(default_factory=list)
    reagents_ml: dict[str, float] = field(default_factory=dict)
    max_temperature_c: float | None = None
    end_s: float | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)

    def alarm_raised(
        self, *, alarm_id: str, tag: str, priority: str, now: float, message: str = ""
    ) -> None:
        """An alarm was raised during the batch (every raise counts, repeats too)."""
        self.alarms.append(
            {
                "id": alarm_id,
                "tag": tag,
                "priority": priority,
                "raised_s": round(now - self.start_s, 1),
                "message": message,
            }
        )

    def observe(
        self,
        *,
        image: ProcessImage,
        targets: PhaseTargets,
        applied: Outputs,
        dt: float,
        executing: bool,
    ) -> None:
        """Account one scan: `applied` ran for the `dt` seconds before `image` was taken."""
        for tag, rate in applied.pumps.items():
            self.reagents_ml[tag] = self.reagents_ml.get(tag, 0.0) + rate * dt / 60.0
        t = image.temperature.value if image.temperature.good else None
        if t is not None:
            self.max_temperature_c = (
                t if self.max_temperature_c is None else max(self.max_temperature_c, t)
            )
        if not executing or not self.phases or self.phases[-1].end_s is not None:
            return
        phase = self.phases[-1]
        if t is not None:
            phase.t_min = t if phase.t_min is None else min(phase.t_min, t)
            phase.t_max = t if phase.t_max is None else max(phase.t_max, t)
            phase.t_sum += t
            phase.t_count += 1
            sp = phase.temperature_setpoint_c
            if sp is not None:
                if phase.start_side == 0.0:
                    phase.start_side = 1.0 if t > sp else -1.0
                # Reached once there from whichever side it started: a liquor that comes in hot
                # and cools to its setpoint has not overshot it.
                if (t - sp) * phase.start_side <= 0.0:
                    phase.reached_setpoint = True
                if phase.reached_setpoint:
                    phase.overshoot_c = max(phase.overshoot_c, t - sp)
        ph = image.ph.value if image.ph.good else None
        if ph is not None:
            phase.ph_min = ph if phase.ph_min is None else min(phase.ph_min, ph)
            phase.ph_max = ph if phase.ph_max is None else max(phase.ph_max, ph)
            phase.ph_sum += ph
            phase.ph_count += 1
        if phase.ph_setpoint is not None:
            phase.ph_s += dt
            if ph is not None and abs(ph - phase.ph_setpoint) <= PH_BAND + 1e-9:
                phase.ph_in_band_s += dt

    def phase_started(self, *, name: str, now: float, targets: PhaseTargets) -> None:
        """A new phase began at `now`."""
        self.phase_ended(now=now)
        self.phases.append(
            PhaseRecord(
                name=name,
                start_s=now - self.start_s,
                temperature_setpoint_c=targets.temperature_c,
                ph_setpoint=targets.ph.setpoint if targets.ph else None,
            )
        )

    def phase_ended(self, *, now: float) -> None:
        """The running phase (if any) ended at `now`."""
        if self.phases and self.phases[-1].end_s is None:
            self.phases[-1].end_s = now - self.start_s

    def finish(self, *, now: float) -> None:
        """The batch ended at `now` (whatever the reason)."""
        self.phase_ended(now=now)
        self.end_s = now - self.start_s

    def ph_in_band(self) -> dict[str, float]:
        """Fraction of time in the ±0.05 band for each pH-controlled phase that ran."""
        return {p.name: round(p.ph_in_band_s / p.ph_s, 4) for p in self.phases if p.ph_s > 0}

    def overshoot_c(self) -> float:
        """Largest rise above a reached temperature setpoint, over all phases."""
        return max((p.overshoot_c for p in self.phases), default=0.0)

    def summary(self, *, phase_stats: bool = False) -> dict[str, Any]:
        """The record as plain data (for JSON); `phase_stats` adds setpoints and T/pH statistics
        to each phase (the journal keeps them; the simulator's JSON summary stays short)."""
        digits = 3 if phase_stats else 1
        return {
            "recipe": self.recipe,
            # every figure here is what the unit's own probes read; the true process is unknown
            # to it (the simulator reports its true figures beside these, never in a record)
            "basis": "measured",
            "phases": [
                {
                    "name": p.name,
                    # The journal keeps them to the ms: phase boundaries against events.
                    "start_s": round(p.start_s, digits),
                    "end_s": None if p.end_s is None else round(p.end_s, digits),
                    **(p.stats() if phase_stats else {}),
                }
                for p in self.phases
            ],
            "reagents_ml": {tag: round(ml, 1) for tag, ml in sorted(self.reagents_ml.items())},
            "alarms": list(self.alarms),
            "ph": {"in_band_fraction": self.ph_in_band(), "band": PH_BAND},
            "temperature": {
                "max_c": None
                if self.max_temperature_c is None
                else round(self.max_temperature_c, 2),
                "overshoot_c": round(self.overshoot_c(), 2),
            },
        }
