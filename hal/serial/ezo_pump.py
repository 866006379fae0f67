"""EZO-PMP driver: a `DosingPump` whose every run is bounded in time on the circuit itself.

Never sends an open-ended run (`D,*`): each rate goes out as `DC,<ml/min>,<minutes>` with a short
bound and is renewed well before it expires, so a dead controller leaves no pump running for long.
Rates are capped at what the circuit says it can do (`DC,?`); a refusal (*TOOFAST, motor supply
low) is the pump's fault until a run is accepted or, while the pump is stopped, its cause is seen
gone (`PV,?` back up; a new maximum read). Never blocks the event loop; time only from the Clock.
"""

from __future__ import annotations

import math

from hal.clock import Clock
from hal.log import get_logger
from hal.reading import BadReason, Reading
from hal.serial.ezo_device import EzoDevice
from hal.serial.ezo_link import CAL_S, EzoError, EzoGarbage, EzoLink, ezo_number
from hal.serial.reconnect import Backoff

log = get_logger(__name__)

# A calibration waits behind at most one poll, then takes ~1.2 s on the circuit.
CALIBRATION_TIMEOUT_S = 30.0
# Rates closer than this are the same rate: a resend would only cost wire time.
RATE_TOLERANCE_ML_MIN = 0.005
# A change of rate by more than this share goes out at once; less waits for the next poll.
RATE_STEP_WAKES = 0.1
# The motor's supply below this: the circuit refuses runs (*UV,PUMPPWR). It is 12 V nominal.
MOTOR_SUPPLY_MIN_V = 10.8
# A supply fault clears only this far above what the refusal reported (and above the minimum),
# so a circuit that refuses at a higher voltage than ours does not clear, run, refuse, hold; but
# never above what a healthy 12 V supply reads, or a high refusal would latch for good.
SUPPLY_MARGIN_V = 0.5
SUPPLY_CLEAR_AT_MOST_V = 11.5
# How often a stopped, faulted pump is asked whether the cause has gone.
FAULT_RECHECK_S = 5.0


class EzoPump(EzoDevice):
    """One EZO-PMP by stable path; `run()` stores the wish, the device task makes it so."""

    circuit = "PMP"

    def __init__(
        self,
        *,
        tag: str,
        path: str,
        clock: Clock,
        min_ml_min: float,
        max_ml_min: float,
        run_bound_min: float = 1.0,
        renew_before_s: float = 20.0,
        lease_s: float = 2.0,
        totals_period_s: float = 5.0,
        lost_s: float = 15.0,
        period_s: float = 0.5,
        timeout_s: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        if not 0 < renew_before_s < run_bound_min * 60.0:
            raise ValueError(
                f"renew_before_s ({renew_before_s}) must be within the run bound "
                f"({run_bound_min * 60.0:g} s)"
            )
        super().__init__(
            tag=tag,
            link=EzoLink(tag=tag, path=path, clock=clock, timeout_s=timeout_s, backoff=backoff),
            clock=clock,
            lost_s=lost_s,
            period_s=period_s,
            timeout_s=timeout_s,
        )
        self._min = min_ml_min
        self._max = max_ml_min
        self._bound_min = run_bound_min
        self._renew_before_s = renew_before_s
        self._lease_s = lease_s
        self._totals_period_s = totals_period_s
        self._desired = 0.0
        self._desired_at = clock.monotonic()
        self._sent: float | None = None  # None: unknown (start-up, after a reboot)
        self._sent_at = -math.inf
        self._totals_at = -math.inf
        self._total_base_ml = 0.0  # what the circuit counted before it last restarted
        self._last_tv_ml = 0.0
        self._total: Reading[float] = Reading.bad(BadReason.NO_READING_YET, clock.monotonic())
        self.circuit_max_ml_min: float | None = None  # DC,?: what the circuit can do now
        self._capped_logged = False
        self._fault: str | None = None
        self._supply_low_v: float | None = None  # a supply fault: the volts the refusal gave
        self._recheck_at = -math.inf
        self.last_done: str | None = None  # the newest *DONE,<ml> (a run ended)
        self.link.on_done(self._on_done)

    def run(self, ml_min: float) -> None:
        """Desired rate in mL/min, clamped to the pump's range (0 stops); renew it every scan:
        a wish not renewed within `lease_s` lapses to 0."""
        if not math.isfinite(ml_min) or ml_min <= 0:
            wanted = 0.0
        else:
            wanted = min(max(ml_min, self._min), self._max)
        before = self._wanted()  # 0 once a lease lapsed: asked again, it is a start
        if (wanted == 0.0) != (before == 0.0) or abs(wanted - before) > RATE_STEP_WAKES * max(
            wanted, before
        ):
            # A start, a stop or a step in rate goes out now, not at the next poll: the scan
            # counts a dose from when it asked for it (a start half a poll late was 0.9 mL
            # short). Smaller changes wait for the poll: a rate moved every scan would keep
            # the link busy, and a stop would wait behind the run in flight.
            self._wake.set()
        self._desired = wanted
        self._desired_at = self.clock.monotonic()

    def dispensed_ml(self) -> Reading[float]:
        """Total mL the circuit reports dispensed since start-up (`TV,?`, polled)."""
        return self.lost_reading() or self._total

    def fault(self) -> str | None:
        """Why the circuit will not run as told (*TOOFAST, motor supply low), or None."""
        return self._fault

    @property
    def sent_ml_min(self) -> float | None:
        """The rate the circuit was last told (None until known), after the circuit's cap."""
        return None if self._sent is None else self._capped(self._sent)

    def _wanted(self) -> float:
        # The wish is a lease too: a scan that stopped calling run() stops the pump.
        if self.clock.monotonic() - self._desired_at > self._lease_s:
            return 0.0
        return self._desired

    def _on_done(self, line: str) -> None:
        self.last_done = line
        log.info("ezo.pump_run_ended", tag=self.tag, reply=line)

    async def _on_initialised(self) -> None:
        # A rebooted circuit has stopped; the next poll re-sends the current run (or X).
        self._sent = None
        await self._read_max_rate()

    async def _read_max_rate(self) -> None:
        lines = await self.ask("DC,?")
        self.circuit_max_ml_min = _number_after(lines, "?MAXRATE", tag=self.tag, command="DC,?")
        if self.circuit_max_ml_min < self._max and not self._capped_logged:
            self._capped_logged = True
            log.warning(
                "ezo.pump_rate_capped",
                tag=self.tag,
                configured_max_ml_min=self._max,
                circuit_max_ml_min=self.circuit_max_ml_min,
            )

    def _capped(self, wanted: float) -> float:
        limit = self.circuit_max_ml_min
        return wanted if limit is None else min(wanted, limit)

    async def _poll(self) -> None:
        await self._ensure_initialised()  # the circuit's maximum is known before a rate goes out
        wanted = self._wanted()
        now = self.clock.monotonic()
        # Until a command is known to have landed, the pump's state is unknown: a timed-out DC
        # may have started it, so the next cycle sends again (X included).
        if wanted == 0.0:
            if self._sent != 0.0:
                self._sent = None
                # *OK, *DONE,<ml> or both in either order: the datasheet fixes no order, and an
                # idle circuit sends no *DONE. Any of them is the circuit taking the stop.
                try:
                    lines = await self.ask("X", done_ends=True)
                except EzoError as exc:
                    # A stop refused is a pump that may still be dosing: said as a fault (the
                    # batch holds), and X goes out again each cycle until one lands.
                    self._set_fault(f"the circuit answered {_said(exc)} to X: it may still run")
                    raise
                log.info("ezo.pump_stopped", tag=self.tag, run=_done(lines))
                self._sent = 0.0
        elif (
            self._sent is None
            or abs(wanted - self._sent) > RATE_TOLERANCE_ML_MIN
            or now >= self._sent_at + self._bound_min * 60.0 - self._renew_before_s
        ):
            self._sent = None
            await self._send_rate(self._capped(wanted))
            self._sent, self._sent_at = wanted, now
        await self._poll_totals(now)
        if wanted == 0.0 and self._sent == 0.0 and self._fault is not None:
            # Stopped, no run will show the cause gone: a held batch could never resume.
            await self._recheck_fault(now)

    async def _send_rate(self, ml_min: float) -> None:
        command = f"DC,{ml_min:.2f},{self._bound_min:g}"
        try:
            await self.ask(command)
        except EzoError as exc:
            if "*TOOFAST" in exc.reasons:
                self._set_fault(
                    f"the circuit refused {ml_min:.2f} mL/min as too fast (*TOOFAST); "
                    f"it reported a maximum of {self.circuit_max_ml_min} mL/min"
                )
                await self._read_max_rate()  # the next try goes out capped to the new maximum
            elif any(r.upper().startswith("*UV,PUMPPWR") for r in exc.reasons):
                volts = exc.reasons[0].split(",")[-1]
                try:
                    reported = float(volts)
                except ValueError:
                    reported = 0.0
                if not math.isfinite(reported):
                    reported = 0.0
                self._set_fault(
                    f"motor supply low ({volts} V): the pump cannot run", supply_v=reported
                )
            else:
                # Refused with no reason given: the circuit does not dose as the scan counts.
                self._set_fault(f"the circuit answered {_said(exc)} to {command}: not running")
            raise
        self._set_fault(None)

    async def _recheck_fault(self, now: float) -> None:
        """While stopped: clear the fault once its cause is gone. A supply fault asks `PV,?`; a
        *TOOFAST is gone already (the new maximum was read: the next run goes out capped)."""
        if now < self._recheck_at:
            return
        self._recheck_at = now + FAULT_RECHECK_S
        refused_at = self._supply_low_v
        if refused_at is not None:
            try:
                lines = await self.ask("PV,?")
                volts = _number_after(lines, "?PV", tag=self.tag, command="PV,?")
            except (EzoError, EzoGarbage) as exc:
                # Firmware without PV, or an answer garbled: the fault stays, the polls go on
                # (a silent circuit raises on: the device's own lost judgement takes it).
                log.warning("ezo.pump_supply_unknown", tag=self.tag, error=str(exc))
                return
            clear_at = min(
                max(MOTOR_SUPPLY_MIN_V, refused_at + SUPPLY_MARGIN_V), SUPPLY_CLEAR_AT_MOST_V
            )
            if volts < clear_at:
                return
        self._set_fault(None)

    def _set_fault(self, why: str | None, *, supply_v: float | None = None) -> None:
        if why != self._fault:
            if why is None:
                log.info("ezo.pump_fault_cleared", tag=self.tag)
            else:
                log.error("ezo.pump_fault", tag=self.tag, fault=why)
        self._fault = why
        self._supply_low_v = supply_v

    async def _poll_totals(self, now: float) -> None:
        if now >= self._totals_at + self._totals_period_s:
            await self._read_total()
        if now >= self._totals_at + self._totals_period_s:
            await self._read_total()

    # --- calibration (console library calls) ------------------------------------------------

    async def calibrate(self, measured_ml: float) -> bool:
        """Tell the circuit what its last dose really measured (`Cal,<ml>`): dose a nominal
        volume first (e.g. 10 mL), weigh or measure it, then call this. Returns `Cal,?`."""
        if not (math.isfinite(measured_ml) and 0 < measured_ml <= 1000):
            raise ValueError(
                f"measured volume must be a number of mL in (0, 1000], got {measured_ml}"
            )

        async def work() -> bool:
            await self.ask(f"Cal,{measured_ml:.2f}", wait_s=CAL_S)
            await self._read_max_rate()  # a volume/time calibration moves the maximum
            return await self._calibrated()

        calibrated = await self.call(work, timeout_s=CALIBRATION_TIMEOUT_S)
        log.info("pump.calibrated", tag=self.tag, measured_ml=measured_ml)
        return calibrated

    async def clear_calibration(self) -> None:
        """Forget the volume calibration (`Cal,clear`)."""

        async def work() -> None:
            await self.ask("Cal,clear")
            await self._read_max_rate()

        await self.call(work, timeout_s=CALIBRATION_TIMEOUT_S)

    async def is_calibrated(self) -> bool:
        """Whether the circuit holds a volume calibration (`Cal,?`)."""
        return await self.call(self._calibrated, timeout_s=CALIBRATION_TIMEOUT_S)

    async def _calibrated(self) -> bool:
        lines = await self.ask("Cal,?")
        return _number_after(lines, "?Cal", tag=self.tag, command="Cal,?") > 0

    async def _read_total(self) -> None:
        lines = await self.ask("TV,?")
        volume = _number_after(lines, "?TV", tag=self.tag, command="TV,?")
        if volume + 1e-6 < self._last_tv_ml:
            # The circuit restarted and counts from 0 again; the total since start-up goes on.
            self._total_base_ml += self._last_tv_ml
            # A restart whose codes were lost: it stopped and forgot its run. Start it up again
            # and send the run now, not at the next renewal (up to a bound later).
            log.warning("ezo.restarted", tag=self.tag, code="total went back")
            self.link.require_init()
            self._sent = None
        self._last_tv_ml = volume
        now = self.clock.monotonic()
        self._totals_at = now
        self._total = Reading.ok(round(self._total_base_ml + volume, 3), now)


def _said(exc: EzoError) -> str:
    return " ".join((*exc.reasons, exc.code))


def _done(lines: list[str]) -> str | None:
    return next((line for line in lines if line.upper().startswith("*DONE")), None)


def _number_after(lines: list[str], prefix: str, *, tag: str, command: str) -> float:
    for line in reversed(lines):
        parts = line.split(",")
        if parts[0].upper() == prefix.upper() and len(parts) == 2:
            try:
                value = ezo_number(parts[1])
            except ValueError:
                break
            if math.isfinite(value) and value >= 0:
                return value
    raise EzoGarbage(f"malformed reply {lines!r}", tag=tag, command=command)
