"""Runs one batch on the simulated unit in virtual time, with faults, and summarises it.

Deterministic for a seed: every timing comes from the VirtualClock, never from the wall.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hal.clock import VirtualClock
from hal.mock.unit import SimulatedUnit
from hal.sim.faults import FaultSpec
from unit_controller.batch.record import PH_BAND
from unit_controller.config import UnitConfig
from unit_controller.controller import UnitController
from unit_controller.errors import CommandRefused
from unit_controller.events import EventKind, UnitEvent
from unit_controller.machine import State
from unit_controller.recipes.loader import RECIPES_DIR, load_recipe
from unit_controller.sim.progress import ProgressPrinter

# An operator in the simulator answers a prompt after this long (simulated seconds).
AUTO_CONFIRM_AFTER_S = 30.0
# A run ends in these states once the batch has started.
_FINAL_STATES = frozenset({State.COMPLETE, State.ABORTED, State.HELD, State.STOPPED})

EXIT_COMPLETE = 0
EXIT_BAD_INPUT = 2
EXIT_NOT_COMPLETE = 3


@dataclass(frozen=True, slots=True)
class SimOptions:
    """What to simulate and how fast."""

    recipe: str
    seed: int
    speed: float | None = None  # times real time; None = as fast as possible
    faults: tuple[FaultSpec, ...] = ()
    progress_every_s: float | None = None
    recipes_dir: Path = RECIPES_DIR


@dataclass(slots=True)
class SimResult:
    """How the batch ended, and the summary printed with --json."""

    final_state: State
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 on COMPLETE, 3 when the batch ended any other way."""
        return EXIT_COMPLETE if self.final_state is State.COMPLETE else EXIT_NOT_COMPLETE


class SimulationRun:
    """One simulated batch: the unit, the controller, the fault schedule and the operator."""

    def __init__(self, *, config: UnitConfig, options: SimOptions, out: TextIO) -> None:
        # Bad input is found here, before anything runs (RecipeError / UnknownFault).
        self.config = config
        self.options = options
        self.loaded = load_recipe(options.recipe, config=config, recipes_dir=options.recipes_dir)
        self.clock = VirtualClock()
        self.unit = SimulatedUnit(
            wiring=config.wiring, params=config.sim.plant, clock=self.clock, seed=options.seed
        )
        for fault in options.faults:
            self.unit.check_fault(fault)
        self.unit.preload(self.loaded.recipe.starts_with.value)
        self.controller = UnitController(
            config=config, board=self.unit.board, clock=self.clock, recipes_dir=options.recipes_dir
        )
        self.progress = ProgressPrinter(out=out, start=0.0)
        self.controller.listen(self._on_event)
        self._confirm_at: float | None = None
        self._pending_faults = sorted(options.faults, key=lambda f: f.at_s)
        self.period = config.unit.scan_period_s

    def _on_event(self, event: UnitEvent) -> None:
        self.progress.event(event)
        if event.kind is EventKind.PROMPT:
            self._confirm_at = event.at + AUTO_CONFIRM_AFTER_S

    async def run(self) -> SimResult:
        """Reset, start the recipe and scan until the batch ends; returns the result."""
        wall_start = time.monotonic()
        controller = self.controller
        await controller.scan()
        await controller.command("reset", source="sim")
        await self._scan_until(lambda: controller.machine.state is not State.RESETTING, limit_s=60)
        try:
            await controller.command("start", source="sim", recipe=self.options.recipe)
        except CommandRefused as exc:
            # E.g. a fault injected at minute 0 trips before the batch can start.
            self.progress.note(self.clock.monotonic(), f"start refused: {exc}")
            await self._tick()
            return SimResult(
                final_state=controller.machine.state,
                summary=self._summary(
                    controller.machine.state, wall_s=time.monotonic() - wall_start
                ),
            )
        limit_s = self.loaded.recipe.max_duration_min * 60.0 * 1.5 + 3600.0
        await self._scan_until(lambda: controller.machine.state in _FINAL_STATES, limit_s=limit_s)
        # One more scan shows the outputs the final state holds.
        await self._tick()
        final = controller.machine.state
        if controller.batch is not None and controller.batch.end_s is None:
            controller.batch.finish(now=self.clock.monotonic())
        return SimResult(
            final_state=final, summary=self._summary(final, wall_s=time.monotonic() - wall_start)
        )

    async def _scan_until(self, done: Any, *, limit_s: float) -> None:
        deadline = self.clock.monotonic() + limit_s
        every = self.options.progress_every_s or self._default_progress_s()
        next_status = self.clock.monotonic()
        wall_start, sim_start = time.monotonic(), self.clock.monotonic()
        while not done():
            if self.clock.monotonic() >= deadline:
                self.progress.note(self.clock.monotonic(), "simulation time limit reached")
                return
            snap = await self._tick()
            if snap.at >= next_status:
                self.progress.status(snap, active_alarms=self._alarm_names())
                next_status = snap.at + every
            if self.options.speed:
                ahead = (snap.at - sim_start) / self.options.speed - (time.monotonic() - wall_start)
                if ahead > 0:
                    await asyncio.sleep(ahead)

    def _default_progress_s(self) -> float:
        speed = self.options.speed
        return 300.0 if speed is None else max(1.0, 2.0 * speed)

    async def _tick(self) -> Any:
        now = self.clock.monotonic() + self.period
        self.clock.advance_to(now)
        while self._pending_faults and self._pending_faults[0].at_s <= now:
            fault = self._resolve(self._pending_faults.pop(0))
            self.unit.inject(fault)
            self.progress.note(now, f"fault injected: {fault} — {self.unit.FAULTS[fault.name]}")
        self.unit.step(self.period)
        if self._confirm_at is not None and now >= self._confirm_at:
            self._confirm_at = None
            if self.controller.awaiting_confirmation:
                prompt = self.controller.confirm(source="sim")
                self.progress.note(now, f"auto-confirmed by the simulator: {prompt}")
        return await self.controller.scan()

    def _resolve(self, fault: FaultSpec) -> FaultSpec:
        """A pump stall with no tag hits the pump controlling pH now (else the unit's base)."""
        ph = self.controller.snapshot.targets.ph if self.controller.snapshot else None
        if fault.name == "dosing_pump_stall" and fault.tag is None and ph is not None:
            return FaultSpec(name=fault.name, tag=ph.pump, at_s=fault.at_s)
        return fault

    def _alarm_names(self) -> list[str]:
        return [f"{a.alarm_id}({a.tag})" for a in self.controller.alarms.active()]

    def _summary(self, final: State, *, wall_s: float) -> dict[str, Any]:
        controller = self.controller
        plant = self.unit.plant
        batch = (
            controller.batch.summary()
            if controller.batch
            else {
                "recipe": self.loaded.recipe.name,
                "phases": [],
                "reagents_ml": {},
                "ph": {"in_band_fraction": {}, "band": PH_BAND},
                "temperature": {"max_c": None, "overshoot_c": 0.0},
            }
        )
        return {
            "final_state": final.value,
            "recipe": self.loaded.recipe.name,
            "seed": self.options.seed,
            "sim_seconds": round(self.clock.monotonic(), 1),
            "wall_seconds": round(wall_s, 2),
            "phases": batch["phases"],
            # Alarms of the batch; before a batch started (a refused start), the unit's.
            "alarms": batch.get("alarms")
            or [
                {
                    "id": a.alarm_id,
                    "tag": a.tag,
                    "priority": str(a.priority),
                    "raised_s": round(a.raised_at, 1),
                }
                for a in controller.alarms.history
            ],
            "reagents_ml": batch["reagents_ml"],
            "ph": batch["ph"],
            "temperature": batch["temperature"],
            "hazards": {
                "heater_on_dry_s": round(plant.heater_on_dry_s, 1),
                "max_true_temperature_c": round(plant.max_temperature_c, 2),
                "overflow_l": round(plant.overflow_l, 3),
            },
            "faults": [str(f) for f in self.options.faults],
        }
