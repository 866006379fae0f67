"""Helpers for the interlock tests: process images at an explicit time, and a tiny heat model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from hal.outputs import Outputs
from hal.reading import Reading
from hal.wiring import BoardWiring, LevelPoint
from unit_controller.config import InterlockLimits, load_config
from unit_controller.process_image import ProcessImage

NORMAL_LEVELS = {
    LevelPoint.LOW_LOW: True,
    LevelPoint.LOW: True,
    LevelPoint.HIGH: False,
    LevelPoint.HIGH_HIGH: False,
}


@cache
def sim_wiring() -> BoardWiring:
    """The wiring of the simulator example config (TT-101, AT-101, LSLL-101, P-201…)."""
    return load_config().wiring


def default_limits() -> InterlockLimits:
    """Interlock limits with their defaults."""
    return InterlockLimits()


def make_image(
    now: float,
    *,
    temperature: float | Reading[float] = 20.0,
    ph: float | Reading[float] = 7.0,
    levels: Mapping[LevelPoint, bool | Reading[bool]] | None = None,
    estop: bool | Reading[bool] = False,
    heater_on_s: float = 0.0,
    dispensed: Mapping[str, Reading[float]] | None = None,
    applied: Outputs | None = None,
    contactor: bool = True,
) -> ProcessImage:
    """A process image at `now`; plain values become good readings taken at `now`."""

    def analog(value: float | Reading[float]) -> Reading[float]:
        return value if isinstance(value, Reading) else Reading.ok(float(value), now)

    def discrete(value: bool | Reading[bool]) -> Reading[bool]:
        return value if isinstance(value, Reading) else Reading.ok(value, now)

    merged: dict[LevelPoint, bool | Reading[bool]] = dict(NORMAL_LEVELS)
    merged.update(levels or {})
    return ProcessImage(
        now=now,
        temperature=analog(temperature),
        ph=analog(ph),
        levels={point: discrete(v) for point, v in merged.items()},
        estop=discrete(estop),
        dispensed_ml=dict(dispensed or {}),
        applied=applied
        if applied is not None
        # The contactor stays closed through a heating phase; the SSR does the switching.
        else Outputs(heater_on_s=heater_on_s, contactor=contactor),
    )


@dataclass
class Reactor:
    """100 L of liquid, 6 kW heater with element lag, probe in a thermowell (DESIGN §8)."""

    liquid_c: float = 20.0
    probe_c: float = 20.0
    element_w: float = 0.0
    power_w: float = 6000.0
    element_tau_s: float = 120.0
    probe_tau_s: float = 20.0
    heat_capacity_j_k: float = 110.0 * 3800.0  # 6 kW → 0.86 K/min
    ua_w_k: float = 12.0
    ambient_c: float = 20.0
    other_w: float = 0.0  # heat that is not the heater's: the agitator's shaft power, a reaction

    def step(self, dt: float, *, heating: bool) -> None:
        """Advance `dt` seconds with the element energised or not."""
        target_w = self.power_w if heating else 0.0
        self.element_w += (target_w - self.element_w) * dt / self.element_tau_s
        loss_w = self.ua_w_k * (self.liquid_c - self.ambient_c)
        self.liquid_c += (self.element_w + self.other_w - loss_w) * dt / self.heat_capacity_j_k
        self.probe_c += (self.liquid_c - self.probe_c) * dt / self.probe_tau_s


def time_proportioned(now: float, duty: float, *, cycle_s: float = 4.0) -> float:
    """The on-time still wanted from `now` in a time-proportioned cycle (0 = off now)."""
    into = now % cycle_s
    return max(0.0, duty * cycle_s - into)
