"""The interlocks of DESIGN §5: every condition that must force outputs safe, evaluated each scan.

Returns the trips whose condition holds now; never writes outputs and never latches (the alarm
manager latches, the safety filter forces).
"""

from __future__ import annotations

import math

import structlog

from hal.reading import Reading
from hal.wiring import BoardWiring, CoilFunction, LevelPoint
from unit_controller.config import InterlockLimits
from unit_controller.interlocks.cooling_verifier import CoolingVerifier
from unit_controller.interlocks.device_lost import DeviceLostMonitor
from unit_controller.interlocks.exotherm import ExothermEstimate
from unit_controller.interlocks.heat_balance import HeatBalanceMonitor
from unit_controller.interlocks.heater_verifier import HeaterVerifier
from unit_controller.interlocks.ph_overshoot import PhOvershootMonitor
from unit_controller.interlocks.ph_response import PhResponseMonitor
from unit_controller.interlocks.readings import Checked, check_analog, check_discrete
from unit_controller.interlocks.trip import Force, InterlockContext, Priority, Trip, TripAction
from unit_controller.interlocks.welded_detector import WeldedSsrDetector
from unit_controller.process_image import ProcessImage

log = structlog.get_logger(__name__)

_HEATER = frozenset({Force.HEATER})
_HEATER_OFF_HARD = frozenset({Force.HEATER, Force.CONTACTOR})
_TOO_HOT = frozenset({Force.HEATER, Force.CONTACTOR, Force.COOL})
_WATER_J_KG_K = 4186.0
# Liquor heat capacity per litre (J/L·K) for bounds: water's, the lowest a liquor has per litre
# here is ≈ 4.2 kJ (1.1 kg/L at 3.8 kJ/kg·K).
_LIQUOR_J_L_K = 4180.0
# The jacket removes at least this share of its rated heat (fouling), with water no warmer than
# _COOLING_WATER_MAX_C; the agitator and the vessel count at their most.
_JACKET_AT_LEAST = 0.7
_COOLING_WATER_MAX_C = 25.0
_AGITATOR_AT_MOST_W = 500.0
_VESSEL_AT_MOST_J_K = 60_000.0
# A weld shows as this many seconds of full heater power unaccounted for over the window.
_BALANCE_MARGIN_S = 120.0
_LEVEL_LOW_LOW = frozenset({Force.HEATER, Force.AGITATOR})
_INFLOWS = frozenset({Force.INFLOWS})
_DOSING = frozenset({Force.DOSING})
_ALL = frozenset({Force.ALL})
_NOTHING: frozenset[Force] = frozenset()


def _trip(
    alarm_id: str,
    tag: str,
    *,
    priority: Priority,
    action: TripAction,
    forces: frozenset[Force],
    latch: bool,
    message: str,
    alarm: bool = True,
) -> Trip:
    # a trip that does not alarm only forces: it asks nothing of the machine
    return Trip(
        alarm_id=alarm_id,
        tag=tag,
        priority=priority,
        action=action if alarm else TripAction.NONE,
        forces=forces,
        latch=latch,
        message=message,
        alarm=alarm,
    )


class Interlocks:
    """Evaluates every interlock against one process image; owns the stateful monitors."""

    def __init__(self, *, limits: InterlockLimits, wiring: BoardWiring) -> None:
        self._limits = limits
        self._wiring = wiring
        self._verifier = HeaterVerifier(limits.verify_heater)
        self._exotherm = ExothermEstimate(pumps=wiring.pumps(), release_s=limits.peroxide_release_s)
        self._switch_volumes = sorted(
            (wiring.level_switch(point).at_l, point) for point in LevelPoint
        )
        # The smallest volume the heater may run in: the worst case for a reaction's heat.
        self._min_heated_l = wiring.level_switch(LevelPoint.LOW_LOW).at_l
        # Above the high-high switch the vessel overflows soon: a bound for "at most".
        self._capacity_l = 1.2 * wiring.level_switch(LevelPoint.HIGH_HIGH).at_l
        # Tags resolved once: evaluate runs every scan.
        self._rtd_tag = wiring.rtd_tag
        self._ph_tag = wiring.ph_tag
        self._heater_tag = wiring.heater_tag
        self._estop_tag = wiring.estop_tag
        self._rtd = wiring.rtd()
        self._probe = wiring.ph_probe()
        self._rtd_stale_s = self._rtd.stale_s
        self._ph_stale_s = self._probe.stale_s
        self._level_tags = {point: wiring.level_tag(point) for point in LevelPoint}
        self._welded = WeldedSsrDetector(
            rise_c=limits.heater_off_rise_c,
            window_s=limits.heater_off_window_s,
            settle_s=limits.heater_off_settle_s,
        )
        self._ph_response = PhResponseMonitor(
            response=limits.ph_response, tolerance=limits.ph_response_tolerance
        )
        self._overshoot = PhOvershootMonitor()
        # The jacket's heat removal, counted as rise so it cannot hide a welded SSR: a lower
        # bound (flow-limited jacket, the largest volume the level switches allow).
        self._cool_w_k = 0.0
        if wiring.has_coil(CoilFunction.COOLING_VALVE):
            jacket = wiring.coil(CoilFunction.COOLING_VALVE)
            water_w_k = jacket.flow_l_min / 60.0 * _WATER_J_KG_K
            self._cool_w_k = water_w_k * (1.0 - math.exp(-jacket.ua_w_k / water_w_k))
        self._heater_w = wiring.heater().power_w
        self._balance = HeatBalanceMonitor(
            window_s=limits.heater_off_window_s, margin_j=_BALANCE_MARGIN_S * self._heater_w
        )
        self._cooling_tag = (
            wiring.coil_tag(CoilFunction.COOLING_VALVE)
            if wiring.has_coil(CoilFunction.COOLING_VALVE)
            else None
        )
        self._cooling = CoolingVerifier(
            window_s=limits.cooling_check_s,
            drop_c=limits.cooling_drop_c,
            above_c=limits.cooling_above_c,
        )
        self._lost = DeviceLostMonitor()
        self._previous: set[tuple[str, str]] = set()

    def evaluate(self, image: ProcessImage, ctx: InterlockContext) -> list[Trip]:
        """Every trip whose condition holds at `image.now`, most severe kinds first."""
        rtd, probe = self._rtd, self._probe
        temperature = check_analog(
            image.temperature, now=image.now, stale_s=rtd.stale_s, low=rtd.min_c, high=rtd.max_c
        )
        ph = check_analog(
            image.ph, now=image.now, stale_s=probe.stale_s, low=probe.min_ph, high=probe.max_ph
        )
        trips: list[Trip] = []
        trips += self._estop(image)
        trips += self._temperature(image, ctx, temperature)
        trips += self._levels(image, ctx)
        trips += self._bad_analog(ctx, temperature, ph)
        trips += self._devices_lost(image)
        trips += self._dosing(ctx, ph, image.now)
        self._log_new(trips)
        return trips

    def _estop(self, image: ProcessImage) -> list[Trip]:
        estop = check_discrete(image.estop, now=image.now, stale_s=self._limits.discrete_stale_s)
        if estop.value is False:
            return []
        # An E-stop we cannot read acts as one pressed (everything off, abort), but it is a
        # bad reading, not an operator's E-stop: the alarm says which.
        pressed = estop.value is True
        return [
            _trip(
                "estop" if pressed else "reading_bad",
                self._estop_tag,
                priority=Priority.CRITICAL,
                action=TripAction.ABORT,
                forces=_ALL,
                latch=pressed,
                message="E-stop pressed" if pressed else f"E-stop input {estop.problem}",
            )
        ]

    def _temperature(
        self, image: ProcessImage, ctx: InterlockContext, temperature: Checked[float]
    ) -> list[Trip]:
        tag = self._rtd_tag
        limits = self._limits
        trips: list[Trip] = []
        t = temperature.value
        if t is not None and t >= limits.temperature_high_high_c:
            trips.append(
                _trip(
                    "temperature_high_high",
                    tag,
                    priority=Priority.CRITICAL,
                    action=TripAction.ABORT,
                    # the jacket opens (where fitted): the one output whose safe state is on
                    forces=_TOO_HOT,
                    latch=True,
                    message=f"{t:.1f} °C ≥ {limits.temperature_high_high_c:g} °C",
                )
            )
        applied = image.applied
        self._exotherm.update(
            now=image.now, ml_min=applied.pumps, volume_l=self._volume_at_least_l(image)
        )
        # A weld is a rise with the heater off and the contactor closed (else no SSR can heat)
        # beyond what dosing explains (acid dilution, peroxide, a charge): judge the rest.
        unexplained = None if t is None else t - self._exotherm.explained_c
        heat_source = applied.heater_on_s > 0.0 or not applied.contactor
        welded = self._welded.update(
            now=image.now, temperature_c=unexplained, heater_on=heat_source
        )
        if welded is None and self._cool_w_k > 0.0:
            welded = self._balance_check(image, t)
        if welded is not None:
            trips.append(
                _trip(
                    "heater_stuck_on",
                    self._heater_tag,
                    priority=Priority.CRITICAL,
                    action=TripAction.ABORT,
                    forces=_HEATER_OFF_HARD,
                    latch=True,
                    message=welded,
                )
            )
        target = ctx.temperature_setpoint_c if ctx.heat_wanted else None
        fault = self._verifier.update(
            now=image.now, temperature_c=t, target_c=target, driven=applied.heater_on_s > 0.0
        )
        if self._cooling_tag is not None:
            cooling = self._cooling.update(
                now=image.now,
                temperature_c=t,
                setpoint_c=ctx.temperature_setpoint_c if ctx.heat_wanted else None,
                cooling=applied.cooling_valve,
            )
            if cooling is not None:
                trips.append(
                    _trip(
                        "cooling_not_cooling",
                        self._cooling_tag,
                        priority=Priority.HIGH,
                        action=TripAction.HOLD,
                        forces=_DOSING,  # no more reaction heat while the jacket cannot take it
                        latch=True,
                        message=cooling,
                    )
                )
        if fault is not None:
            trips.append(
                _trip(
                    "heater_not_heating",
                    self._heater_tag,
                    priority=Priority.HIGH,
                    action=TripAction.ABORT,
                    forces=_HEATER,
                    latch=True,
                    message=fault,
                )
            )
        return trips

    def _levels(self, image: ProcessImage, ctx: InterlockContext) -> list[Trip]:
        stale_s = self._limits.discrete_stale_s
        low_low = check_discrete(image.level(LevelPoint.LOW_LOW), now=image.now, stale_s=stale_s)
        low = check_discrete(image.level(LevelPoint.LOW), now=image.now, stale_s=stale_s)
        high_high = check_discrete(
            image.level(LevelPoint.HIGH_HIGH), now=image.now, stale_s=stale_s
        )
        ll_tag = self._level_tags[LevelPoint.LOW_LOW]
        hh_tag = self._level_tags[LevelPoint.HIGH_HIGH]
        # LSLL protects the heater from running dry; for the agitator it is only a permissive
        # (a recipe may start it while filling), so only a wanted heater makes it an alarm.
        wanted = ctx.heat_wanted
        trips: list[Trip] = []
        # the heater and agitator are forced off whenever LSLL is not known wet; the alarm
        # only sounds when something needed the level (a drain or a fill is not an alarm)
        if low_low.bad:
            trips.append(
                _trip(
                    "reading_bad",
                    ll_tag,
                    priority=Priority.HIGH,
                    action=TripAction.HOLD,
                    forces=_LEVEL_LOW_LOW,
                    latch=False,
                    message=f"low-low switch {low_low.problem}",
                    alarm=wanted or ctx.executing,
                )
            )
        elif low_low.value is False and low.value is True:
            trips.append(
                _trip(
                    "reading_bad",
                    ll_tag,
                    priority=Priority.HIGH,
                    action=TripAction.HOLD,
                    forces=_LEVEL_LOW_LOW,
                    latch=False,
                    message="low-low switch dry while the low switch is wet: switch suspect",
                    alarm=wanted or ctx.executing,
                )
            )
        if low_low.value is False:
            # Even when the switch is suspect, act as it says: low-low is the safe reading.
            trips.append(
                _trip(
                    "level_low_low",
                    ll_tag,
                    priority=Priority.HIGH,
                    action=TripAction.HOLD,
                    forces=_LEVEL_LOW_LOW,
                    latch=False,
                    message="level below low-low switch",
                    alarm=wanted,
                )
            )
        if high_high.bad:
            trips.append(
                _trip(
                    "reading_bad",
                    hh_tag,
                    priority=Priority.HIGH,
                    action=TripAction.HOLD,
                    forces=_INFLOWS,
                    latch=False,
                    message=f"high-high switch {high_high.problem}",
                    alarm=ctx.executing,
                )
            )
        elif high_high.value:
            trips.append(
                _trip(
                    "level_high_high",
                    hh_tag,
                    priority=Priority.HIGH,
                    action=TripAction.HOLD,
                    forces=_INFLOWS,
                    latch=True,
                    message="level at high-high switch",
                )
            )
        return trips

    def _bad_analog(
        self, ctx: InterlockContext, temperature: Checked[float], ph: Checked[float]
    ) -> list[Trip]:
        trips: list[Trip] = []
        if temperature.bad:
            trips.append(
                _trip(
                    "reading_bad",
                    self._rtd_tag,
                    priority=Priority.HIGH,
                    action=TripAction.HOLD,
                    forces=_HEATER,
                    latch=False,
                    message=f"temperature {temperature.problem}",
                    alarm=ctx.executing or ctx.heat_wanted,
                )
            )
        if ph.bad:
            trips.append(
                _trip(
                    "reading_bad",
                    self._ph_tag,
                    priority=Priority.HIGH,
                    action=TripAction.HOLD,
                    forces=_DOSING,
                    latch=False,
                    message=f"pH {ph.problem}",
                    alarm=ctx.executing or ctx.ph_setpoint is not None,
                )
            )
        return trips

    def charged(self, kg: float) -> None:
        """Black mass went in (a confirmed charge): its heat is a reaction, not a weld."""
        self._exotherm.charged(kg)

    def _balance_check(self, image: ProcessImage, t: float | None) -> str | None:
        """Jacket cooling hides a welded SSR: look for heat out that nothing put in."""
        applied = image.applied
        if not applied.contactor:
            self._balance.reset()  # no SSR can heat with the contactor open
            return None
        removed = 0.0
        if applied.cooling_valve and t is not None:
            removed = _JACKET_AT_LEAST * self._cool_w_k * max(0.0, t - _COOLING_WATER_MAX_C)
        # the heater as commanded (its on-time this scan at full power), at most
        supplied = self._heater_w if applied.heater_on_s > 0.0 else 0.0
        supplied += _AGITATOR_AT_MOST_W + self._exotherm.releasing_w
        volume = self._volume_at_most_l(image)
        return self._balance.update(
            now=image.now,
            temperature_c=t,
            removed_w=removed,
            supplied_w=supplied,
            capacity_j_k=volume * _LIQUOR_J_L_K + _VESSEL_AT_MOST_J_K,
        )

    def _volume_at_most_l(self, image: ProcessImage) -> float:
        """The most liquid the level switches allow (the lowest dry switch's volume)."""
        for at_l, point in self._switch_volumes:
            if image.wet(point) is False:
                return at_l
        return self._capacity_l

    def _volume_at_least_l(self, image: ProcessImage) -> float:
        """The least liquid the level switches allow (the highest wet switch's volume)."""
        volume = self._min_heated_l
        for at_l, point in self._switch_volumes:
            if image.wet(point):
                volume = at_l
        return volume

    def _devices_lost(self, image: ProcessImage) -> list[Trip]:
        limits = self._limits
        level_forces = {LevelPoint.LOW_LOW: _LEVEL_LOW_LOW, LevelPoint.HIGH_HIGH: _INFLOWS}
        watched: list[tuple[str, Reading[float] | Reading[bool], float, frozenset[Force]]] = [
            (self._rtd_tag, image.temperature, self._rtd_stale_s, _HEATER),
            (self._ph_tag, image.ph, self._ph_stale_s, _DOSING),
            (self._estop_tag, image.estop, limits.discrete_stale_s, _ALL),
        ]
        for point, switch in image.levels.items():
            watched.append(
                (
                    self._level_tags[point],
                    switch,
                    limits.discrete_stale_s,
                    level_forces.get(point, _NOTHING),
                )
            )
        for tag, dispensed in image.dispensed_ml.items():
            watched.append((tag, dispensed, limits.pump_stale_s, _DOSING))
        trips: list[Trip] = []
        for tag, reading, stale_s, forces in watched:
            silent = self._lost.update(now=image.now, tag=tag, reading=reading, stale_s=stale_s)
            if silent is None:
                continue
            critical = Force.ALL in forces
            trips.append(
                _trip(
                    "device_lost",
                    tag,
                    priority=Priority.CRITICAL if critical else Priority.HIGH,
                    action=TripAction.ABORT if critical else TripAction.HOLD,
                    forces=forces,
                    latch=False,
                    message=f"no answer for {silent:.0f} s ({reading.why})",
                )
            )
        return trips

    def _dosing(self, ctx: InterlockContext, ph: Checked[float], now: float) -> list[Trip]:
        trips: list[Trip] = []
        for tag, cap in ctx.cap_ml.items():
            dosed = ctx.dosed_this_phase_ml.get(tag, 0.0)
            if dosed >= cap:
                trips.append(
                    _trip(
                        "reagent_cap",
                        tag,
                        priority=Priority.MEDIUM,
                        action=TripAction.HOLD,
                        forces=_DOSING,
                        latch=True,
                        message=f"{dosed:.0f} mL dosed this phase ≥ cap {cap:g} mL",
                    )
                )
        pump = ctx.ph_pump
        limit = ctx.ph_not_responding_ml or self._limits.ph_not_responding_ml
        fault = self._ph_response.update(
            ph=ph.value,
            setpoint=ctx.ph_setpoint,
            pump=pump,
            raises=ctx.ph_raises,
            dosed_ml=ctx.dosed_this_phase_ml.get(pump, 0.0) if pump else 0.0,
            limit_ml=limit,
            dosing=ctx.dosing,
            now=now,
        )
        if fault is not None:
            trips.append(
                _trip(
                    "ph_not_responding",
                    self._ph_tag,
                    priority=Priority.HIGH,
                    action=TripAction.HOLD,
                    forces=_DOSING,
                    latch=True,
                    message=fault,
                )
            )
        overshoot = self._overshoot.update(
            now=now,
            ph=ph.value,
            setpoint=ctx.ph_setpoint,
            raises=ctx.ph_raises,
            tolerance=ctx.ph_tolerance,
            counter=ctx.ph_counter,
        )
        if overshoot is not None:
            trips.append(
                _trip(
                    "ph_overshoot",
                    self._ph_tag,
                    priority=Priority.MEDIUM,
                    # the recipe decides: hold for a person, or let the process bring it back
                    action=TripAction.HOLD if ctx.ph_overshoot_holds else TripAction.NONE,
                    forces=_NOTHING,
                    latch=False,
                    message=overshoot
                    + ("" if ctx.ph_overshoot_holds else "; the batch goes on and it comes back"),
                )
            )
        return trips

    def _log_new(self, trips: list[Trip]) -> None:
        keys = {t.key for t in trips}
        for trip in trips:
            if trip.key not in self._previous:
                # Quiet permissives (no alarm) are routine, e.g. LSLL dry while filling.
                emit = log.warning if trip.alarm else log.debug
                emit(
                    "interlock.tripped",
                    alarm_id=trip.alarm_id,
                    tag=trip.tag,
                    priority=str(trip.priority),
                    action=str(trip.action),
                    forces=sorted(str(f) for f in trip.forces),
                    alarm=trip.alarm,
                    message=trip.message,
                )
        self._previous = keys
