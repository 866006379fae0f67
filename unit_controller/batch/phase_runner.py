"""Step 3b of the scan: the recipe's phases in Execute — targets now, and when a phase ends.

Pure bookkeeping on the process image: never touches a device and never reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hal.wiring import LevelPoint, Reagent
from unit_controller.config import UnitConfig
from unit_controller.process_image import ProcessImage
from unit_controller.recipes.model import Overshoot, Phase, Recipe

_RAISING = {Reagent.NAOH, Reagent.NH4OH}


@dataclass(frozen=True, slots=True)
class PhTarget:
    """pH control wanted by the phase."""

    setpoint: float
    pump: str
    raises: bool
    tolerance: float
    cap_ml: float
    feed_forward_pump: str | None
    feed_forward_equivalents: float
    tuning: tuple[tuple[str, float], ...] = ()
    counter_pump: str | None = None
    on_overshoot: Overshoot = Overshoot.HOLD


@dataclass(frozen=True, slots=True)
class PhaseTargets:
    """What the running phase wants this scan (before control and the safety filter)."""

    phase: str | None = None
    temperature_c: float | None = None
    tolerance_c: float = 1.0
    max_heater_duty: float = 1.0
    agitator: bool = False
    purge: bool = False
    fill: bool = False
    drain: bool = False
    cooling: bool = False
    ph: PhTarget | None = None
    pumps: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    caps_ml: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    # Paused (Held, Suspended): `ph` still names the loop so it can resume, but nothing doses.
    holding: bool = False

    @property
    def ph_active(self) -> PhTarget | None:
        """The pH loop when it may dose now (None while holding)."""
        return None if self.holding else self.ph


IDLE_TARGETS = PhaseTargets()


@dataclass(frozen=True, slots=True)
class PhaseProgress:
    """Where a batch is: phase `number` of `count`, its Execute-time so far, and what is left.

    `remaining_s` is the least time the phase's timed conditions still need (minutes at
    setpoint, duration, doses), None when it has none; `waits_on_event` is True when it also
    ends on something no clock can tell (a level, a temperature, a confirmation).
    """

    number: int  # 1-based
    count: int
    elapsed_s: float
    remaining_s: float | None
    waits_on_event: bool
    waits_for: str | None = None  # those events in words ("level high reached"), None if none


# Which of a phase's controlled quantities are out of band (bits): its hold time counts at 0.
AWAY_T = 1
AWAY_PH = 2
AWAY_ALL = AWAY_T | AWAY_PH


@dataclass(slots=True)
class _PhaseProgress:
    index: int
    started_s: float  # Execute-time at which the phase started
    elapsed_s: float = 0.0  # Execute-time spent in the phase
    at_setpoint_s: float = 0.0
    away: int = AWAY_ALL  # which quantities were out of band at the last advance (0: none)
    timeout_at_s: float = 0.0
    confirmed: bool = False
    dose_ml: list[float] = field(default_factory=list)


class PhaseRunner:
    """Walks a recipe's phases: what each wants, and whether its `until` conditions hold."""

    def __init__(self, *, recipe: Recipe, config: UnitConfig) -> None:
        self.recipe = recipe
        self._config = config
        self._pumps = config.wiring.pumps()
        self._progress: _PhaseProgress | None = None
        self._execute_s = 0.0
        self.done = False
        # What a phase wants depends only on the phase, whether it holds and which doses run
        # now: the targets are made once for each of those and shared (they are immutable).
        self._targets: dict[tuple[int, bool, tuple[bool, ...]], PhaseTargets] = {}
        self._ph_targets: dict[int, PhTarget | None] = {}
        # The events a phase waits on, in words, before and after its confirmation.
        self._events: dict[tuple[int, bool, int], list[str]] = {}

    @property
    def phase(self) -> Phase | None:
        """The running phase, or None before the first and after the last."""
        if self._progress is None or self.done:
            return None
        return self.recipe.phases[self._progress.index]

    @property
    def phase_index(self) -> int | None:
        """Index of the running phase."""
        return None if self._progress is None or self.done else self._progress.index

    @property
    def phase_elapsed_s(self) -> float:
        """Execute-seconds spent in the running phase."""
        return 0.0 if self._progress is None else self._progress.elapsed_s

    def progress(self) -> PhaseProgress | None:
        """Phase n of m, its elapsed time and the least time its timed conditions still need."""
        phase, progress = self.phase, self._progress
        if phase is None or progress is None:
            return None
        until = phase.until
        waits: list[float] = []
        if until.duration_min is not None:
            waits.append(until.duration_min * 60.0 - progress.elapsed_s)
        if until.at_setpoint_min is not None:
            waits.append(until.at_setpoint_min * 60.0 - progress.at_setpoint_s)
        if until.doses_done:
            for dose, delivered in zip(phase.doses, progress.dose_ml, strict=True):
                left_ml = dose.ml - delivered
                start_in = max(0.0, dose.after_min * 60.0 - progress.elapsed_s)
                waits.append(start_in + left_ml / dose.rate_ml_min * 60.0)
        # The hold time counts only at setpoint: away from it, "3 min left" stands still, and
        # the phase waits on the setpoint as on an event.
        away = progress.away if until.at_setpoint_min is not None else 0
        key = (progress.index, progress.confirmed, away)
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = _events(phase, confirmed=progress.confirmed, away=away)
        event = bool(events)
        return PhaseProgress(
            number=progress.index + 1,
            count=len(self.recipe.phases),
            elapsed_s=progress.elapsed_s,
            remaining_s=max(0.0, *waits) if waits else None,
            waits_on_event=event,
            waits_for=", ".join(events) if events else None,
        )

    @property
    def awaiting_confirmation(self) -> str | None:
        """The prompt the running phase waits on, if it waits on one not yet given."""
        phase = self.phase
        if phase is None or self._progress is None or self._progress.confirmed:
            return None
        return phase.until.confirm

    def confirm(self) -> bool:
        """Give the running phase its operator confirmation; False when none is awaited."""
        if self.awaiting_confirmation is None or self._progress is None:
            return False
        self._progress.confirmed = True
        return True

    def begin(self) -> None:
        """Start at the first phase."""
        self._execute_s = 0.0
        self.done = False
        self._enter(0)

    def _enter(self, index: int) -> None:
        phase = self.recipe.phases[index]
        self._progress = _PhaseProgress(
            index=index,
            started_s=self._execute_s,
            timeout_at_s=phase.timeout_min * 60.0,
            dose_ml=[0.0] * len(phase.doses),
        )

    def targets(self, *, holding: bool = False) -> PhaseTargets:
        """What the phase wants now; holding keeps temperature, agitation and purge only."""
        phase = self.phase
        progress = self._progress
        if phase is None or progress is None:
            return IDLE_TARGETS
        running: tuple[bool, ...] = ()
        if not holding and phase.doses:
            elapsed_s = progress.elapsed_s
            running = tuple(
                elapsed_s >= dose.after_min * 60.0 and delivered < dose.ml - 1e-9
                for dose, delivered in zip(phase.doses, progress.dose_ml, strict=True)
            )
        key = (progress.index, holding, running)
        targets = self._targets.get(key)
        if targets is None:
            targets = self._targets[key] = self._make_targets(progress.index, holding, running)
        return targets

    def _make_targets(self, index: int, holding: bool, running: tuple[bool, ...]) -> PhaseTargets:
        phase = self.recipe.phases[index]
        ph = self._ph_target(index)
        pumps: dict[str, float] = {}
        caps: dict[str, float] = {}
        if not holding:
            for feed in phase.feeds:
                pumps[feed.pump] = pumps.get(feed.pump, 0.0) + feed.ml_min
            for dose, runs in zip(phase.doses, running, strict=True):
                if runs:
                    pumps[dose.pump] = pumps.get(dose.pump, 0.0) + dose.rate_ml_min
            # Caps apply while dosing; held, nothing doses, so a cap alarm can return and reset.
            ph_pumps = [ph.pump] if ph else []
            if ph is not None and ph.counter_pump is not None:
                ph_pumps.append(ph.counter_pump)
            for tag in sorted({*pumps, *ph_pumps}):
                caps[tag] = self._config.reagent_cap_ml(tag)
            if ph is not None:
                caps[ph.pump] = min(caps[ph.pump], ph.cap_ml)
        return PhaseTargets(
            phase=phase.name,
            temperature_c=phase.temperature_c,
            tolerance_c=phase.tolerance_c,
            max_heater_duty=phase.max_heater_duty,
            agitator=phase.agitator,
            purge=phase.purge,
            fill=phase.fill and not holding,
            drain=phase.drain and not holding,
            cooling=phase.cooling,
            ph=ph,
            pumps=MappingProxyType(pumps),
            caps_ml=MappingProxyType(caps),
            holding=holding,
        )

    def _ph_target(self, index: int) -> PhTarget | None:
        if index not in self._ph_targets:
            self._ph_targets[index] = self._make_ph_target(self.recipe.phases[index])
        return self._ph_targets[index]

    def _make_ph_target(self, phase: Phase) -> PhTarget | None:
        if phase.ph is None:
            return None
        pump = phase.ph.pump
        ff = phase.ph.feed_forward
        cap = self._config.reagent_cap_ml(pump)
        return PhTarget(
            setpoint=phase.ph.setpoint,
            pump=pump,
            raises=self._pumps[pump].reagent in _RAISING,
            tolerance=phase.ph.tolerance,
            cap_ml=min(cap, phase.ph.cap_ml) if phase.ph.cap_ml is not None else cap,
            feed_forward_pump=ff.pump if ff else None,
            feed_forward_equivalents=ff.equivalents if ff else 0.0,
            tuning=tuple(sorted(phase.ph.tuning_overrides().items())),
            counter_pump=phase.ph.counter_pump,
            on_overshoot=phase.ph.on_overshoot,
        )

    def advance(
        self,
        image: ProcessImage,
        *,
        dt: float,
        applied_ml_min: Mapping[str, float],
        overshot: bool = False,
    ) -> bool:
        """Account `dt` Execute-seconds; True when the phase has just ended (next one entered).

        `overshot`: pH is past the setpoint with no way back; a phase whose recipe says
        `on_overshoot = "next_phase"` ends, leaving the load of the next one to bring it back.
        """
        phase = self.phase
        progress = self._progress
        if phase is None or progress is None:
            return False
        self._execute_s += dt
        progress.elapsed_s += dt
        if phase.doses:
            remaining = dict(applied_ml_min)
            for i, dose in enumerate(phase.doses):
                rate = min(remaining.get(dose.pump, 0.0), dose.rate_ml_min)
                if rate > 0 and progress.dose_ml[i] < dose.ml:
                    progress.dose_ml[i] = min(dose.ml, progress.dose_ml[i] + rate * dt / 60.0)
                    remaining[dose.pump] = remaining.get(dose.pump, 0.0) - rate
        progress.away = self._away(phase, image)
        if not progress.away:
            progress.at_setpoint_s += dt
        gives_up = (
            overshot and phase.ph is not None and phase.ph.on_overshoot is Overshoot.NEXT_PHASE
        )
        if not gives_up and not self._until_holds(phase, progress, image):
            return False
        if progress.index + 1 >= len(self.recipe.phases):
            self.done = True
        else:
            self._enter(progress.index + 1)
        return True

    def timed_out(self) -> bool:
        """True when the running phase has passed its timeout (checked by the scan)."""
        progress = self._progress
        return progress is not None and not self.done and progress.elapsed_s > progress.timeout_at_s

    def extend_timeout(self) -> None:
        """After an operator unholds a timed-out phase, give it another full timeout."""
        phase, progress = self.phase, self._progress
        if phase is not None and progress is not None:
            progress.timeout_at_s = progress.elapsed_s + phase.timeout_min * 60.0

    @staticmethod
    def _away(phase: Phase, image: ProcessImage) -> int:
        """Which of the phase's controlled quantities are out of their band: AWAY_T | AWAY_PH,
        0 for none (and AWAY_ALL when it controls neither: no setpoint to be at)."""
        away = 0
        if phase.temperature_c is not None:
            t = image.temperature
            if (
                not t.good
                or t.value is None
                or abs(t.value - phase.temperature_c) > phase.tolerance_c
            ):
                away |= AWAY_T
        if phase.ph is not None:
            ph = image.ph
            if (
                not ph.good
                or ph.value is None
                or abs(ph.value - phase.ph.setpoint) > phase.ph.tolerance
            ):
                away |= AWAY_PH
        if phase.temperature_c is None and phase.ph is None:
            return AWAY_ALL
        return away

    @staticmethod
    def _until_holds(phase: Phase, progress: _PhaseProgress, image: ProcessImage) -> bool:
        until = phase.until
        if until.level is not None and image.wet(_level(until.level)) is not True:
            return False
        if until.level_below is not None and image.wet(_level(until.level_below)) is not False:
            return False
        t = image.temperature.value if image.temperature.good else None
        if until.temperature_reached:
            if t is None or phase.temperature_c is None:
                return False
            if abs(t - phase.temperature_c) > phase.tolerance_c:
                return False
        if until.temperature_below_c is not None and (t is None or t >= until.temperature_below_c):
            return False
        if (
            until.at_setpoint_min is not None
            and progress.at_setpoint_s < until.at_setpoint_min * 60
        ):
            return False
        if until.duration_min is not None and progress.elapsed_s < until.duration_min * 60:
            return False
        if until.confirm is not None and not progress.confirmed:
            return False
        return not (
            until.doses_done
            and any(
                delivered < dose.ml - 1e-6
                for dose, delivered in zip(phase.doses, progress.dose_ml, strict=True)
            )
        )


def _events(phase: Phase, *, confirmed: bool, away: int = 0) -> list[str]:
    """The events the phase waits on besides time, in words ("level high reached")."""
    until = phase.until
    events = []
    if until.level is not None:
        events.append(f"level {until.level} reached")
    if until.level_below is not None:
        events.append(f"level below {until.level_below}")
    if until.temperature_reached and phase.temperature_c is not None:
        events.append(f"{phase.temperature_c:g} °C reached")
    if until.temperature_below_c is not None:
        events.append(f"below {until.temperature_below_c:g} °C")
    if until.confirm is not None and not confirmed:
        events.append(f"confirmation '{until.confirm}'")
    if until.temperature_reached:
        away &= ~AWAY_T  # "70 °C reached" says it already
    if away:
        events.append(_setpoint_words(phase, away))
    return events


def _setpoint_words(phase: Phase, away: int) -> str:
    """What a phase's hold at setpoint waits for, in words: the quantities out of band now
    ("pH 11 ± 0.05")."""
    held = []
    if away & AWAY_T and phase.temperature_c is not None:
        held.append(f"{phase.temperature_c:g} ± {phase.tolerance_c:g} °C")
    if away & AWAY_PH and phase.ph is not None:
        held.append(f"pH {phase.ph.setpoint:g} ± {phase.ph.tolerance:g}")
    return " and ".join(held) or "a setpoint"


_LEVELS = {point.value: point for point in LevelPoint}


def _level(name: str) -> LevelPoint:
    """The level point a recipe names (asked every scan: a lookup, not an enum call)."""
    point = _LEVELS.get(name)
    return LevelPoint(name) if point is None else point


def progress_dict(
    progress: PhaseProgress | None,
) -> dict[str, float | int | bool | str | None]:
    """Phase n of m, elapsed and the least time left (s), each None outside a batch."""
    if progress is None:
        return {
            "phase_no": None,
            "phase_count": None,
            "phase_elapsed_s": None,
            "phase_remaining_s": None,
            "phase_waits_on_event": None,
            "phase_waits_for": None,
        }
    remaining = progress.remaining_s
    return {
        "phase_no": progress.number,
        "phase_count": progress.count,
        "phase_elapsed_s": round(progress.elapsed_s, 1),
        "phase_remaining_s": None if remaining is None else round(remaining, 1),
        "phase_waits_on_event": progress.waits_on_event,
        "phase_waits_for": progress.waits_for,
    }
