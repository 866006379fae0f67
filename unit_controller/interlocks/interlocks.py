"""Evaluates the cause-and-effect table (`table.py`) each scan: which rows hold now, and on what.

Returns the trips whose condition holds now; never writes outputs and never latches (the alarm
manager latches, the safety filter forces). What each row does is the table's; the functions
here only decide whether it holds.
"""

from __future__ import annotations

from collections.abc import Iterable

from hal.log import get_logger
from hal.reading import BadReason, Reading
from hal.wiring import BoardWiring, CoilFunction, LevelPoint
from unit_controller.config_sections import MAX_LIQUOR_HEAT_CAPACITY_J_L_K, InterlockLimits
from unit_controller.interlocks import table as row
from unit_controller.interlocks.cooling_verifier import CoolingVerifier
from unit_controller.interlocks.deviation import DeviationMonitor
from unit_controller.interlocks.device_lost import SILENT_REASONS, DeviceLostMonitor
from unit_controller.interlocks.effects import Output, forced_outputs
from unit_controller.interlocks.heater_verifier import HeaterVerifier
from unit_controller.interlocks.ph_overshoot import PhOvershootMonitor
from unit_controller.interlocks.ph_response import PhResponseMonitor
from unit_controller.interlocks.readings import (
    Checked,
    awaiting_first,
    check_analog,
    check_discrete,
)
from unit_controller.interlocks.trip import InterlockContext, Trip
from unit_controller.interlocks.weld_watch import WeldWatch
from unit_controller.process_image import ProcessImage

log = get_logger(__name__)

# Off-spec: out of a band it had settled in (SETTLE_S in a row), smoothed over SMOOTHING_S, for
# PERSIST_S (s). Longer than a probe's lag and a dose's mixing; the pH band as wide as an
# overshoot's (ph_overshoot).
PH_DEVIATION_SMOOTHING_S = 30.0
PH_DEVIATION_SETTLE_S = 180.0
PH_DEVIATION_PERSIST_S = 180.0
# The band judged is the phase's tolerance, at least the spec's (DESIGN §1: 11.00 ± 0.05), on
# the smoothed reading (a tighter tolerance is the loop's aim, not the spec's alarm): at
# twice the tolerance a metal feed that stalled left the true pH at +0.06..0.08 for 90 min,
# COMPLETE with no alarm. Healthy plants stay inside it (envelope runs, 2026-12-07).
PH_DEVIATION_TOLERANCES = 1.0
PH_DEVIATION_MIN = 0.05
TEMPERATURE_DEVIATION_SMOOTHING_S = 60.0
TEMPERATURE_DEVIATION_SETTLE_S = 300.0
TEMPERATURE_DEVIATION_PERSIST_S = 300.0
TEMPERATURE_DEVIATION_TOLERANCES = 2.0

# Which row a silent level switch falls under.
_LEVEL_LOST = {LevelPoint.LOW_LOW: row.LOW_LOW_LOST, LevelPoint.HIGH_HIGH: row.HIGH_HIGH_LOST}


class Interlocks:
    """Evaluates every row against one process image; owns the stateful monitors."""

    def __init__(self, *, limits: InterlockLimits, wiring: BoardWiring) -> None:
        self._limits = limits
        # Tags resolved once: evaluate runs every scan.
        self._rtd_tag = wiring.rtd_tag
        self._ph_tag = wiring.ph_tag
        self._heater_tag = wiring.heater_tag
        self._estop_tag = wiring.estop_tag
        self._contactor_tag = wiring.coil_tag(CoilFunction.CONTACTOR)
        self._agitator_tag = wiring.coil_tag(CoilFunction.AGITATOR)
        self._pump_tags = frozenset(wiring.pumps())
        self._rtd = wiring.rtd()
        self._probe = wiring.ph_probe()
        self._level_tags = {point: wiring.level_tag(point) for point in LevelPoint}
        self._verifier = HeaterVerifier(
            limits.verify_heater,
            full_rise_c_per_s=wiring.heater().power_w
            / (wiring.level_switch(LevelPoint.HIGH_HIGH).at_l * MAX_LIQUOR_HEAT_CAPACITY_J_L_K),
        )
        self._weld = WeldWatch(limits=limits, wiring=wiring)
        self._ph_response = PhResponseMonitor(
            response=limits.ph_response, tolerance=limits.ph_response_tolerance
        )
        self._overshoot = PhOvershootMonitor()
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
        self._ph_deviation = DeviationMonitor(
            smoothing_s=PH_DEVIATION_SMOOTHING_S,
            persist_s=PH_DEVIATION_PERSIST_S,
            settle_s=PH_DEVIATION_SETTLE_S,
        )
        self._temperature_deviation = DeviationMonitor(
            smoothing_s=TEMPERATURE_DEVIATION_SMOOTHING_S,
            persist_s=TEMPERATURE_DEVIATION_PERSIST_S,
            settle_s=TEMPERATURE_DEVIATION_SETTLE_S,
        )
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
        trips += self._outputs(image)
        trips += self._dosing_permitted(image, ctx, trips)
        trips += self._dosing(ctx, ph, image.now)
        trips += self._deviations(ctx, temperature, ph, image.now)
        self._log_new(trips)
        return trips

    def charged(self, kg: float) -> None:
        """Black mass went in (a confirmed charge): its heat is a reaction, not a weld."""
        self._weld.charged(kg)

    def _estop(self, image: ProcessImage) -> list[Trip]:
        estop = check_discrete(image.estop, now=image.now, stale_s=self._limits.discrete_stale_s)
        if estop.value is True:
            return [row.ESTOP_PRESSED.trip(self._estop_tag, "E-stop pressed")]
        if estop.value is None:
            # Acts as one pressed, but it is a bad reading, not an operator's E-stop; and before
            # the board's first answer is due, not a fault at all (no alarm, no abort: a restart
            # must not raise a critical alarm nor take the unit's authority).
            return [
                row.ESTOP_UNREADABLE.trip(
                    self._estop_tag,
                    f"E-stop input {estop.problem}",
                    alarm=not awaiting_first(estop),
                )
            ]
        return []

    def _temperature(
        self, image: ProcessImage, ctx: InterlockContext, temperature: Checked[float]
    ) -> list[Trip]:
        limits = self._limits
        trips: list[Trip] = []
        t = temperature.value
        if t is not None and t >= limits.temperature_high_high_c:
            trips.append(
                row.TEMPERATURE_HIGH_HIGH.trip(
                    self._rtd_tag, f"{t:.1f} °C ≥ {limits.temperature_high_high_c:g} °C"
                )
            )
        elif temperature.reason is BadReason.ABOVE_RANGE:
            # Above what the probe reads is at least as hot as high-high: a bad reading alone
            # would only hold the batch, the jacket shut. (The scan's qualifier has dropped
            # the number by now: the reason says which way it was out.)
            trips.append(
                row.TEMPERATURE_HIGH_HIGH.trip(
                    self._rtd_tag,
                    f"reads above its range ({temperature.problem}): taken as ≥ "
                    f"{limits.temperature_high_high_c:g} °C",
                )
            )
        welded = self._weld.update(image, t)
        if welded is not None:
            trips.append(
                row.HEATER_STUCK_ON.trip(self._heater_tag, welded, also_reads=(self._rtd_tag,))
            )
        applied = image.applied
        target = ctx.temperature_setpoint_c if ctx.heat_wanted else None
        if self._cooling_tag is not None:
            cooling = self._cooling.update(
                now=image.now, temperature_c=t, setpoint_c=target, cooling=applied.cooling_valve
            )
            if cooling is not None:
                trips.append(
                    row.COOLING_NOT_COOLING.trip(
                        self._cooling_tag, cooling, also_reads=(self._rtd_tag,)
                    )
                )
        fault = self._verifier.update(
            now=image.now, temperature_c=t, target_c=target, driven=applied.heater_on_s > 0.0
        )
        if fault is not None:
            trips.append(
                row.HEATER_NOT_HEATING.trip(self._heater_tag, fault, also_reads=(self._rtd_tag,))
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
        # The heater and agitator are forced off whenever LSLL is not known wet; the alarm
        # only sounds when something needed the level (a drain or a fill is not an alarm).
        needed = ctx.heat_wanted or ctx.executing
        trips: list[Trip] = []
        if low_low.bad:
            trips.append(
                row.LOW_LOW_UNREADABLE.trip(
                    ll_tag,
                    f"low-low switch {low_low.problem}",
                    alarm=needed and not awaiting_first(low_low),
                )
            )
        elif low_low.value is False and low.value is True:
            trips.append(
                row.LOW_LOW_SUSPECT.trip(
                    ll_tag,
                    "low-low switch dry while the low switch is wet: switch suspect",
                    alarm=needed,
                )
            )
        if low_low.value is False:
            # Even when the switch is suspect, act as it says: low-low is the safe reading.
            trips.append(
                row.LEVEL_LOW_LOW.trip(ll_tag, "level below low-low switch", alarm=ctx.heat_wanted)
            )
        if high_high.bad:
            trips.append(
                row.HIGH_HIGH_UNREADABLE.trip(
                    hh_tag,
                    f"high-high switch {high_high.problem}",
                    alarm=ctx.executing and not awaiting_first(high_high),
                )
            )
        elif high_high.value:
            trips.append(row.LEVEL_HIGH_HIGH.trip(hh_tag, "level at high-high switch"))
        return trips

    def _bad_analog(
        self, ctx: InterlockContext, temperature: Checked[float], ph: Checked[float]
    ) -> list[Trip]:
        trips: list[Trip] = []
        if temperature.bad:
            trips.append(
                row.TEMPERATURE_UNREADABLE.trip(
                    self._rtd_tag,
                    f"temperature {temperature.problem}",
                    alarm=(ctx.executing or ctx.heat_wanted) and not awaiting_first(temperature),
                )
            )
        if ph.bad:
            trips.append(
                row.PH_UNREADABLE.trip(
                    self._ph_tag,
                    f"pH {ph.problem}",
                    alarm=(ctx.executing or ctx.ph_setpoint is not None) and not awaiting_first(ph),
                )
            )
        return trips

    def _devices_lost(self, image: ProcessImage) -> list[Trip]:
        if not self._lost.tracking:
            # The usual scan: no device was silent, and none is now; nothing to time.
            readings: tuple[Reading[float] | Reading[bool], ...] = (
                image.temperature,
                image.ph,
                image.estop,
                *image.levels.values(),
                *image.dispensed_ml.values(),
            )
            for reading in readings:
                if not reading.good and reading.reason in SILENT_REASONS:
                    break
            else:
                return []
        discrete_s = self._limits.discrete_stale_s
        watched: list[tuple[row.Cause, str, Reading[float] | Reading[bool], float]] = [
            (row.TEMPERATURE_LOST, self._rtd_tag, image.temperature, self._rtd.stale_s),
            (row.PH_LOST, self._ph_tag, image.ph, self._probe.stale_s),
            (row.ESTOP_LOST, self._estop_tag, image.estop, discrete_s),
        ]
        for point, switch in image.levels.items():
            cause = _LEVEL_LOST.get(point, row.LEVEL_LOST)
            watched.append((cause, self._level_tags[point], switch, discrete_s))
        for tag, dispensed in image.dispensed_ml.items():
            watched.append((row.PUMP_LOST, tag, dispensed, self._limits.pump_stale_s))
        trips: list[Trip] = []
        for cause, tag, reading, stale_s in watched:
            silent = self._lost.update(now=image.now, tag=tag, reading=reading, stale_s=stale_s)
            if silent is not None:
                # A driver that judged the device lost says after how long, against its own
                # limit (often longer than the stale limit); else the monitor timed the silence.
                why = (
                    f"device lost: {reading.detail}"
                    if reading.reason is BadReason.DEVICE_LOST and reading.detail
                    else f"silent for {silent:.0f} s (its limit {stale_s:g} s): {reading.why}"
                )
                trips.append(cause.trip(tag, why))
        return trips

    def _outputs(self, image: ProcessImage) -> list[Trip]:
        if not image.output_faults:
            return []
        return [
            self._output_row(tag).trip(tag, why) for tag, why in sorted(image.output_faults.items())
        ]

    def _output_row(self, tag: str) -> row.Cause:
        if tag == self._contactor_tag:
            return row.CONTACTOR_FAULT
        if tag == self._heater_tag:
            return row.HEATER_OUTPUT_FAULT
        if tag == self._agitator_tag:
            return row.AGITATOR_OUTPUT_FAULT
        return row.PUMP_FAULT if tag in self._pump_tags else row.OUTPUT_FAULT

    def _dosing_permitted(
        self, image: ProcessImage, ctx: InterlockContext, so_far: list[Trip]
    ) -> list[Trip]:
        """No reagent into a dry or unstirred reactor, in manual as in a recipe."""
        if ctx.manual_jogs or not (ctx.reactor_dose_wanted or ctx.dosing):
            # Nothing is to go in; or manual jogs, which manual mode judges one by one (a jog
            # into a measuring cylinder goes on while one into the reactor is ended).
            return []
        if any(Output.DOSING_PUMPS in forced_outputs(t.forces) for t in so_far):
            return []  # already stopped, by a cause with its own alarm (no consequence alarm)
        low_tag = self._level_tags[LevelPoint.LOW]
        why = dosing_blocker(
            image, low_tag=low_tag, agitator_wanted=ctx.agitator_wanted, trips=so_far
        )
        if why is None:
            return []
        # The agitator stopped by a cause with its own alarm (a stuck low-low switch): the
        # pumps stop with it, and a second alarm would only say so again.
        consequence = image.wet(LevelPoint.LOW) is True and any(
            t.alarm and Output.AGITATOR in forced_outputs(t.forces) for t in so_far
        )
        return [
            row.DOSING_NOT_PERMITTED.trip(
                low_tag,
                f"no reagent into the reactor: {why}",
                alarm=ctx.executing and ctx.reactor_dose_wanted and not consequence,
            )
        ]

    def _dosing(self, ctx: InterlockContext, ph: Checked[float], now: float) -> list[Trip]:
        trips: list[Trip] = []
        for tag, cap in ctx.cap_ml.items():
            dosed = ctx.dosed_this_phase_ml.get(tag, 0.0)
            if dosed >= cap:
                trips.append(
                    row.REAGENT_CAP.trip(tag, f"{dosed:.0f} mL dosed this phase ≥ cap {cap:g} mL")
                )
        pump = ctx.ph_pump
        fault = self._ph_response.update(
            ph=ph.value,
            setpoint=ctx.ph_setpoint,
            pump=pump,
            raises=ctx.ph_raises,
            dosed_ml=ctx.dosed_this_phase_ml.get(pump, 0.0) if pump else 0.0,
            limit_ml=ctx.ph_not_responding_ml or self._limits.ph_not_responding_ml,
            dosing=ctx.dosing,
            now=now,
        )
        if fault is not None and fault.waiting:
            trips.append(row.PH_RESPONSE_WAIT.trip(self._ph_tag, fault.message, alarm=False))
        elif fault is not None:
            trips.append(row.PH_NOT_RESPONDING.trip(self._ph_tag, fault.message))
        overshoot = self._overshoot.update(
            now=now,
            phase=ctx.phase,
            ph=ph.value,
            setpoint=ctx.ph_setpoint,
            raises=ctx.ph_raises,
            tolerance=ctx.ph_tolerance,
            counter=ctx.ph_counter,
        )
        if overshoot is not None:
            # the recipe decides: hold for a person, or let the process bring it back
            if ctx.ph_overshoot_holds:
                trips.append(row.PH_OVERSHOOT_HOLDS.trip(self._ph_tag, overshoot))
            else:
                message = overshoot + "; the batch goes on and it comes back"
                trips.append(row.PH_OVERSHOOT_GOES_ON.trip(self._ph_tag, message))
        return trips

    def _deviations(
        self, ctx: InterlockContext, temperature: Checked[float], ph: Checked[float], now: float
    ) -> list[Trip]:
        trips: list[Trip] = []
        setpoint = ctx.ph_setpoint if ctx.executing else None
        # Either side: past the setpoint without a counter-reagent is also an overshoot (its
        # own alarm, and its own policy, further out); between the two the product is off-spec
        # all the same.
        band = max(PH_DEVIATION_TOLERANCES * ctx.ph_tolerance, PH_DEVIATION_MIN)
        off = self._ph_deviation.update(
            now=now,
            value=ph.value,
            setpoint=setpoint,
            band=band,
            below=True,
            above=True,
            hold=ctx.executing,  # past its phase (or held), until the batch ends
        )
        if off is not None:
            trips.append(
                row.PH_DEVIATION.trip(
                    self._ph_tag,
                    f"pH {off.value:.2f} against the setpoint {off.setpoint:g} (band "
                    f"±{off.band:g}) for {PH_DEVIATION_PERSIST_S / 60:g} min or more: the "
                    "product goes off-spec",
                )
            )
        tolerance = ctx.temperature_tolerance_c if ctx.executing else None
        t_setpoint = ctx.temperature_setpoint_c if tolerance is not None else None
        t_band = TEMPERATURE_DEVIATION_TOLERANCES * (tolerance or 0.0)
        t_off = self._temperature_deviation.update(
            now=now, value=temperature.value, setpoint=t_setpoint, band=t_band, hold=ctx.executing
        )
        if t_off is not None:
            trips.append(
                row.TEMPERATURE_DEVIATION.trip(
                    self._rtd_tag,
                    f"{t_off.value:.1f} °C against the setpoint {t_off.setpoint:g} °C (band "
                    f"±{t_off.band:g} °C) for {TEMPERATURE_DEVIATION_PERSIST_S / 60:g} min or more",
                )
            )
        return trips

    def _log_new(self, trips: list[Trip]) -> None:
        if not trips and not self._previous:
            return
        keys = {t.key for t in trips}
        for trip in trips:
            if trip.key not in self._previous:
                # Quiet permissives (no alarm) are routine, e.g. LSLL dry while filling.
                emit = log.warning if trip.alarm else log.debug
                emit(
                    "interlock.tripped",
                    alarm_id=trip.alarm_id,
                    cause=trip.cause,
                    tag=trip.tag,
                    priority=str(trip.priority),
                    action=str(trip.action),
                    forces=sorted(str(f) for f in trip.forces),
                    alarm=trip.alarm,
                    message=trip.message,
                )
        self._previous = keys


def dosing_blocker(
    image: ProcessImage, *, low_tag: str, agitator_wanted: bool, trips: Iterable[Trip]
) -> str | None:
    """Why no reagent may go into the reactor now (dry, or not stirred), or None: the
    condition of the dosing permissive."""
    wet = image.wet(LevelPoint.LOW)
    if wet is not True:
        return f"{low_tag} reads {'dry' if wet is False else 'unknown'}"
    forced = sorted({t.alarm_id for t in trips if Output.AGITATOR in forced_outputs(t.forces)})
    if forced:
        return f"the agitator is forced off ({', '.join(forced)})"
    if not agitator_wanted:
        return "the agitator is not running"
    return None
