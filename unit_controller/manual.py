"""Manual mode: the pump jogs, timed heater runs and drains a field tech asks for at the console.

Only decides what manual mode wants each scan (bounded doses, a duty with an end time); never
writes an output and never overrides a trip: the scan's safety filter still has the last word.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from hal.log import get_logger
from hal.outputs import Outputs
from hal.wiring import LevelPoint
from unit_controller.config import UnitConfig
from unit_controller.errors import CommandRefused
from unit_controller.interlocks import Trip
from unit_controller.interlocks.effects import Output, forced_outputs, forcing
from unit_controller.interlocks.table import CYLINDER_EXEMPT, DOSING_NOT_PERMITTED
from unit_controller.machine import State

log = get_logger(__name__)

# Manual mode and calibration only where no batch is under way and the machine is at rest.
MANUAL_STATES = frozenset({State.STOPPED, State.IDLE, State.COMPLETE, State.ABORTED})
# Acting states a unit at rest passes through in a scan or two.
_SETTLING_STATES = frozenset({State.RESETTING, State.STOPPING, State.ABORTING, State.CLEARING})
MAX_JOG_ML = 1000.0
MAX_HEATER_S = 3600.0
# J per litre and kelvin of the liquor (water's; leach liquor is denser but holds less a kg).
_LIQUOR_J_L_K = 4180.0
MAX_DRAIN_S = 3600.0
# A jog is done when less than this is left (rate × dt rounding).
_JOG_DONE_ML = 1e-3
_NO_PUMPS: frozenset[str] = frozenset()
# After a heater run the agitator stirs on for this many element time constants: the element
# still gives ~95 % of its stored heat over three, into a layer a still reactor never mixes.
_STIR_AFTER_HEAT_LAGS = 3.0
MANUAL_IS_ON = "manual mode is on: turn it off first (manual off)"
MANUAL_STOPPED = "manual_stopped"
"""The event (a command event's name) said when manual actions end early."""
MANUAL_IS_OFF = "manual mode is off: turn it on first (manual on)"


def refuse_during_batch(state: State, *, what: str) -> None:
    """Raise CommandRefused unless the machine is at rest (STOPPED, IDLE, COMPLETE, ABORTED)."""
    if state in MANUAL_STATES:
        return
    if state in _SETTLING_STATES:
        raise CommandRefused(
            f"cannot {what} in {state}: wait until the unit is STOPPED, IDLE, COMPLETE or ABORTED"
        )
    raise CommandRefused(
        f"cannot {what} while a batch is under way (state {state}): "
        "stop it or let it complete first"
    )


def _refuse_while_forced(what: str, trips: Iterable[Trip], output: Output) -> None:
    trips = list(trips)
    # A condition that raises no alarm (the reactor just empty) is named as the condition:
    # there is no alarm to reset, only the cause to clear.
    conditions = sorted(
        {f"{t.message} ({t.tag})" for t in trips if not t.alarm and t in _forcing(trips, output)}
    )
    alarmed = forcing([t for t in trips if t.alarm], output)
    reasons = []
    if conditions:
        reasons.append(f"{'; '.join(conditions)}: clear that first")
    if alarmed:
        reasons.append(
            f"interlocks force it off: {', '.join(alarmed)}; "
            "clear the cause, acknowledge and reset the alarms first"
        )
    if reasons:
        raise CommandRefused(f"cannot {what}: {'; '.join(reasons)}")


def _forcing(trips: list[Trip], output: Output) -> list[Trip]:
    return [t for t in trips if output in forced_outputs(t.forces)]


@dataclass(slots=True)
class Jog:
    """A bounded dose on one pump: `ml` at up to `max_ml_min`, counted from the applied rate."""

    tag: str
    ml: float
    max_ml_min: float
    min_ml_min: float
    delivered_ml: float = 0.0
    # Into the reactor (needs liquid over the low switch and the agitator running), or out of
    # it into a measuring cylinder (a pump calibration).
    into_reactor: bool = True

    @property
    def remaining_ml(self) -> float:
        """What is still to be delivered."""
        return max(0.0, self.ml - self.delivered_ml)

    def rate(self, period_s: float) -> float:
        """Full rate, tapered in the last scan so that the dose ends on its volume."""
        per_scan = self.max_ml_min * period_s / 60.0
        if self.remaining_ml >= per_scan:
            return self.max_ml_min
        return max(self.min_ml_min, self.remaining_ml * 60.0 / period_s)


@dataclass(frozen=True, slots=True)
class HeaterRun:
    """The heater at a fixed duty until `until` (clock seconds)."""

    percent: float
    seconds: float
    until: float


@dataclass(frozen=True, slots=True)
class DrainRun:
    """The drain valve open until `until` (clock seconds)."""

    seconds: float
    until: float


class ManualMode:
    """What the tech asked for in manual mode; the controller turns it into outputs each scan."""

    def __init__(self, *, config: UnitConfig) -> None:
        self._config = config
        self._pumps = config.wiring.pumps()
        self._heater = config.wiring.heater()
        self._levels = {p: config.wiring.level_switch(p).at_l for p in LevelPoint}
        self._period_s = config.unit.scan_period_s
        self.on = False
        self.jogs: dict[str, Jog] = {}
        self.heater: HeaterRun | None = None
        self.drain: DrainRun | None = None
        # mL each pump's last run delivered, when that run was a whole jog into a measuring
        # cylinder: what a pump calibration is measured against (once).
        self.cylinder_runs: dict[str, float] = {}
        self.last_stop: str | None = None  # why the last manual action ended early
        self.stops_told = 0  # counts each new `last_stop`, for the controller to announce
        self._now = -math.inf  # the clock at the last scan's accounting
        self._stir_until = -math.inf  # the agitator stirs out a heater run's stored heat
        self._stops_at = math.nan  # the scan whose early stops `last_stop` tells
        self._stops: dict[str, list[str]] = {}

    # --- requests (each validated whole before anything changes) ------------------------------
    def jog(
        self,
        tag: str,
        ml: float,
        *,
        trips: Iterable[Trip],
        low_level_wet: bool | None = None,
        cylinder: bool = False,
    ) -> Jog:
        """Start a jog of `ml` mL on pump `tag`; raises CommandRefused with the reason.

        `trips` are those in effect: a jog they would force off at once is refused. Into the
        reactor (not `cylinder`) the permissive of a recipe's dose holds too: liquid over the
        low switch (`low_level_wet`) and the agitator free to run, which the jog then runs.
        """
        trips = list(trips)
        if not self.on:
            raise CommandRefused(MANUAL_IS_OFF)
        name = tag.strip().upper()
        wiring = self._pumps.get(name)
        if wiring is None:
            raise CommandRefused(
                f"no dosing pump {tag!r} on this unit; pumps are {', '.join(sorted(self._pumps))}"
            )
        limit = min(self._config.reagent_cap_ml(name), MAX_JOG_ML)
        if not (math.isfinite(ml) and 0.0 < ml <= limit):
            raise CommandRefused(
                f"jog volume for {name} must be more than 0 and at most {limit:g} mL, got {ml:g}"
            )
        running = self.jogs.get(name)
        if running is not None:
            raise CommandRefused(
                f"{name} is already jogging ({running.delivered_ml:.1f} of {running.ml:g} mL): "
                "wait for it to finish or turn manual off"
            )
        # The dosing permissive is judged for this jog just below (one into the reactor runs
        # the agitator with it). Into a measuring cylinder, what the pH probe sees is no
        # concern: its rows (cylinder_exempt) do not stop it; the level and E-stop rows do.
        exempt = CYLINDER_EXEMPT if cylinder else frozenset({DOSING_NOT_PERMITTED.name})
        others = [t for t in trips if t.cause not in exempt]
        _refuse_while_forced("jog", others, Output.DOSING_PUMPS)
        if not cylinder:
            self._refuse_into_a_dry_reactor(name, ml, low_level_wet, trips)
        jog = Jog(
            tag=name,
            ml=ml,
            max_ml_min=wiring.max_ml_min,
            min_ml_min=wiring.min_ml_min,
            into_reactor=not cylinder,
        )
        self.jogs[name] = jog
        self.cylinder_runs.pop(name, None)  # a new run: the pump's last is this one now
        self.last_stop = None  # of the runs before: beside a new one it read as this one's
        return jog

    def _refuse_into_a_dry_reactor(
        self, name: str, ml: float, low_level_wet: bool | None, trips: list[Trip]
    ) -> None:
        low = self._config.wiring.level_tag(LevelPoint.LOW)
        to_cylinder = f"(into a measuring cylinder: jog pump {name} {ml:g} cylinder)"
        if low_level_wet is not True:
            level = "dry" if low_level_wet is False else "unknown"
            raise CommandRefused(
                f"cannot jog {name} into the reactor: {low} reads {level}; a reagent goes in "
                f"only over liquid above the low switch, with the agitator running {to_cylinder}"
            )
        blocking = forcing(trips, Output.AGITATOR)
        if blocking:
            raise CommandRefused(
                f"cannot jog {name} into the reactor: the agitator may not run "
                f"({', '.join(blocking)}) {to_cylinder}"
            )

    def hold_permissives(self, *, low_level_wet: bool | None, agitation_forced: list[str]) -> None:
        """End each jog into the reactor whose permissive no longer holds (before this scan's
        outputs are computed, so no dose runs a scan without them)."""
        low = self._config.wiring.level_tag(LevelPoint.LOW)
        cause = (
            f"{low} not wet"
            if low_level_wet is not True
            else f"agitator forced off: {', '.join(agitation_forced)}"
            if agitation_forced
            else None
        )
        if agitation_forced:
            # Never restarted by itself once the force lifts (an E-stop released).
            self._stir_until = -math.inf
        if agitation_forced and self.heater is not None:
            # A still reactor heats a layer at the element that the probe does not see.
            percent, self.heater = self.heater.percent, None
            self._cancelled(
                [f"heater at {percent:g} %"], f"agitator forced off: {', '.join(agitation_forced)}"
            )
        if cause is None:
            return
        for tag in [t for t, jog in self.jogs.items() if jog.into_reactor]:
            jog = self.jogs.pop(tag)
            self._cancelled([f"jog {tag} at {jog.delivered_ml:.1f} of {jog.ml:g} mL"], cause)

    def cylinder_pumps(self) -> frozenset[str]:
        """Pumps jogging into a measuring cylinder now, not into the reactor."""
        if not self.jogs:  # asked every scan and every step of a simulated plant
            return _NO_PUMPS
        return frozenset(t for t, jog in self.jogs.items() if not jog.into_reactor)

    @property
    def agitator_wanted(self) -> bool:
        """A jog into the reactor, or a heater run, runs the agitator with it; after a heater
        run, for three element time constants more (the heat the element still gives)."""
        return (
            self.heater is not None
            or self._now < self._stir_until
            or any(jog.into_reactor for jog in self.jogs.values())
        )

    @property
    def stirring_after_heat(self) -> bool:
        """True while the agitator runs on only to stir out a heater run's stored heat."""
        return self.heater is None and self._now < self._stir_until

    def heater_cutoff_c(self, percent: float, wet: Iterable[LevelPoint]) -> float:
        """Where a run at `percent` must end so that the heat its element still holds stops
        short of the manual limit: the least liquor the wet level switches allow takes it."""
        litres = max((self._levels[p] for p in wet), default=self._levels[LevelPoint.LOW_LOW])
        stored_j = self._heater.power_w * percent / 100.0 * self._heater.element_lag_s
        limit = self._config.interlocks.max_temperature_setpoint_c
        return limit - stored_j / (litres * _LIQUOR_J_L_K)

    def limit_heater(self, temperature_c: float | None, wet: Iterable[LevelPoint]) -> None:
        """End the run once the element's stored heat would carry the reactor past the manual
        limit (or the temperature is unknown): ended, not paused, so it never comes back."""
        run = self.heater
        if run is None:
            return
        if temperature_c is None:
            self.heater = None
            self._cancelled([f"heater at {run.percent:g} %"], "the temperature is unknown")
            return
        cutoff = self.heater_cutoff_c(run.percent, wet)
        if temperature_c >= cutoff:
            self.heater = None
            limit = self._config.interlocks.max_temperature_setpoint_c
            self._cancelled(
                [f"heater at {run.percent:g} %"],
                f"reaching {cutoff:.1f} °C (the element's heat takes it toward the {limit:g} °C "
                "manual limit)",
            )

    def run_heater(
        self,
        percent: float,
        seconds: float,
        *,
        now: float,
        trips: Iterable[Trip],
        temperature_c: float | None = None,
        wet: Iterable[LevelPoint] = (),
    ) -> HeaterRun | None:
        """Run the heater at `percent` for `seconds` (replacing a run); 0 % stops it (None).
        The agitator runs with it: a still reactor heats a layer at the element.

        `trips` are those in effect: a run they would force off at once is refused.
        """
        if not self.on:
            raise CommandRefused(MANUAL_IS_OFF)
        if not (math.isfinite(percent) and 0.0 <= percent <= 100.0):
            raise CommandRefused(f"heater duty must be 0 to 100 %, got {percent:g}")
        if percent == 0.0:
            # A stop is never refused over its duration.
            self.heater = None
            return None
        if not (math.isfinite(seconds) and 0.0 < seconds <= MAX_HEATER_S):
            raise CommandRefused(
                f"heater time must be more than 0 and at most {MAX_HEATER_S:g} s, got {seconds:g}"
            )
        trips = list(trips)
        _refuse_while_forced("heat", trips, Output.HEATER)
        if temperature_c is None:
            raise CommandRefused("cannot heat: the temperature is unknown")
        cutoff = self.heater_cutoff_c(percent, wet)
        if temperature_c >= cutoff:
            limit = self._config.interlocks.max_temperature_setpoint_c
            raise CommandRefused(
                f"cannot heat at {percent:g} %: {temperature_c:.1f} °C is at or above "
                f"{cutoff:.1f} °C, where a run ends so that the element's heat stops short of "
                f"the {limit:g} °C manual limit"
            )
        still = forcing(trips, Output.AGITATOR)
        if still:
            raise CommandRefused(
                f"cannot heat: the agitator may not run ({', '.join(still)}); a heater run "
                "stirs the reactor, or the liquor at the element overheats unseen"
            )
        self.heater = HeaterRun(percent=percent, seconds=seconds, until=now + seconds)
        self.last_stop = None
        return self.heater

    def open_drain(self, seconds: float, *, now: float, trips: Iterable[Trip]) -> DrainRun | None:
        """Open the drain valve for `seconds` (replacing an open drain); 0 closes it (None).

        `trips` are those in effect: a drain they would force closed at once is refused.
        """
        if not self.on:
            raise CommandRefused(MANUAL_IS_OFF)
        if not math.isfinite(seconds) or seconds < 0.0:
            raise CommandRefused(f"drain time must be 0 to {MAX_DRAIN_S:g} s, got {seconds:g}")
        if seconds == 0.0:
            # Closing is never refused.
            self.drain = None
            return None
        if seconds > MAX_DRAIN_S:
            raise CommandRefused(
                f"drain time must be at most {MAX_DRAIN_S:g} s (0 closes it), got {seconds:g}"
            )
        _refuse_while_forced("drain", trips, Output.DRAIN)
        self.drain = DrainRun(seconds=seconds, until=now + seconds)
        self.last_stop = None
        return self.drain

    def turn_off(self) -> list[str]:
        """Leave manual mode; returns what was stopped."""
        stopped = self.stop_all()
        self.on = False
        return stopped

    def running(self) -> list[str]:
        """A line for each manual action running now (what `stop_all` would stop)."""
        lines = self._action_lines()
        if self.stirring_after_heat:
            lines.append(
                f"agitator stirring out the heater's heat ({self._stir_until - self._now:.0f} s "
                "left)"
            )
        return lines

    def _action_lines(self) -> list[str]:
        """A line for each action the tech asked for that runs now (jogs, heater, drain)."""
        lines = [f"jog {j.tag} at {j.delivered_ml:.1f} of {j.ml:g} mL" for j in self.jogs.values()]
        if self.heater is not None:
            lines.append(f"heater at {self.heater.percent:g} %")
        if self.drain is not None:
            lines.append("drain open")
        return lines

    def stop_all(self) -> list[str]:
        """End every manual action now; returns a line for each one that was running."""
        stopped = self.running()
        self.jogs.clear()
        self.heater = None
        self.drain = None
        self._stir_until = -math.inf
        return stopped

    # --- the scan --------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True while any manual action runs."""
        return bool(self.jogs) or self.heater is not None or self.drain is not None

    @property
    def drain_open(self) -> bool:
        """Whether manual mode wants the drain valve open now."""
        return self.drain is not None

    @property
    def heater_duty(self) -> float:
        """The duty (0–1) manual mode wants now."""
        return self.heater.percent / 100.0 if self.heater is not None else 0.0

    def pump_rates(self) -> dict[str, float]:
        """The rate (mL/min) each jogging pump should run at for this scan."""
        return {tag: jog.rate(self._period_s) for tag, jog in self.jogs.items()}

    def account(self, *, applied: Outputs, dt: float, now: float) -> None:
        """Count what the last scan's applied rates delivered; end the actions that are done."""
        self._now = now
        if self.heater is not None and applied.contactor:
            self._stir_until = now + _STIR_AFTER_HEAT_LAGS * self._heater.element_lag_s
        if self.cylinder_runs and applied.pumps:
            # Any other run (a recipe's dose, a jog into the reactor) is the pump's last now.
            for tag in [t for t in self.cylinder_runs if applied.pump(t) > 0.0]:
                jog = self.jogs.get(tag)
                if jog is None or jog.into_reactor:
                    del self.cylinder_runs[tag]
        for tag, jog in list(self.jogs.items()):
            jog.delivered_ml += applied.pump(tag) * dt / 60.0
            if jog.remaining_ml < _JOG_DONE_ML:
                del self.jogs[tag]
                log.info("manual.jog_done", pump=tag, ml=jog.ml, delivered_ml=jog.delivered_ml)
                if not jog.into_reactor:
                    self.cylinder_runs[tag] = jog.delivered_ml
        if self.heater is not None and now >= self.heater.until:
            log.info("manual.heater_done", percent=self.heater.percent, s=self.heater.seconds)
            self.heater = None
        if self.drain is not None and now >= self.drain.until:
            log.info("manual.drain_done", s=self.drain.seconds)
            self.drain = None

    def cancel(self, cause: str) -> None:
        """End every action because of `cause` (a trip, a state change); keeps manual mode on."""
        stopped = self._action_lines()  # the stir after a heater run is no action cut short
        self.stop_all()
        if stopped:
            self._cancelled(stopped, cause)

    def cancel_forced(self, *, desired: Outputs, applied: Outputs, trips: Iterable[Trip]) -> None:
        """End each action the safety filter forced off this scan: none resumes by itself."""
        trips = list(trips)
        for tag in [t for t in self.jogs if desired.pump(t) > 0.0 and applied.pump(t) <= 0.0]:
            jog = self.jogs.pop(tag)
            # A cylinder jog is stopped by the rows it is not exempt from: only those named.
            causes = (
                trips if jog.into_reactor else [t for t in trips if t.cause not in CYLINDER_EXEMPT]
            )
            self._cancelled(
                [f"jog {tag} at {jog.delivered_ml:.1f} of {jog.ml:g} mL"],
                ", ".join(forcing(causes, Output.DOSING_PUMPS)) or "interlock",
            )
        if self.drain is not None and desired.drain_valve and not applied.drain_valve:
            self.drain = None
            self._cancelled(["drain open"], ", ".join(forcing(trips, Output.DRAIN)) or "interlock")
        if self.heater is not None and desired.contactor and not applied.contactor:
            percent = self.heater.percent
            self.heater = None
            self._cancelled(
                [f"heater at {percent:g} %"],
                ", ".join(forcing(trips, Output.HEATER)) or "interlock",
            )

    def _cancelled(self, stopped: list[str], cause: str) -> None:
        # Several actions one cause (or one scan) stops are all told, not only the last.
        if self._stops_at != self._now:
            self._stops_at, self._stops = self._now, {}
        self._stops.setdefault(cause, []).extend(stopped)
        self.told_stopped(
            "; ".join(f"{'; '.join(lines)} stopped by {why}" for why, lines in self._stops.items())
        )
        log.warning("manual.cancelled", stopped=stopped, cause=cause)

    def told_stopped(self, text: str) -> None:
        """Manual actions ended early: `text` says which and why (status, and an event)."""
        self.last_stop = text
        self.stops_told += 1

    def status(self, *, now: float) -> dict[str, object]:
        """Manual mode for the console: on/off, each action's progress, the last early stop."""
        heater = self.heater
        return {
            "on": self.on,
            "jogs": {
                tag: {"ml": jog.ml, "delivered_ml": round(jog.delivered_ml, 3)}
                for tag, jog in self.jogs.items()
            },
            "heater": None
            if heater is None
            else {"percent": heater.percent, "remaining_s": round(max(0.0, heater.until - now), 1)},
            "drain": None
            if self.drain is None
            else {"remaining_s": round(max(0.0, self.drain.until - now), 1)},
            # The agitator stirring out a finished heater run's heat (seconds left), or None.
            "stirring_s": round(self._stir_until - now, 1)
            if self.heater is None and now < self._stir_until
            else None,
            "last_stop": self.last_stop,
        }
