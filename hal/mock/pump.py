"""The mock EZO-PMP: bounded runs at a commanded rate, a volume counted as the circuit counts
it, tubing that delivers within its error, and a calibration by a measured volume."""

from __future__ import annotations

import math

from hal.calibration import PUMP_CAL_RATIO
from hal.clock import Clock
from hal.log import get_logger
from hal.mock.devices import Answering
from hal.reading import Reading

log = get_logger(__name__)

# A measured pump volume this far from what the pump believes it ran is a typing error.
_MAX_CAL_ML = 1000.0


class MockDosingPump(Answering):
    """An EZO-PMP running bounded doses at a commanded rate."""

    def __init__(
        self,
        *,
        tag: str,
        clock: Clock,
        max_ml_min: float,
        lease_s: float = 2.0,
        delivery_factor: float = 1.0,
    ) -> None:
        self.tag = tag
        # What the tubing really delivers per mL the circuit counts (calibration error, wear).
        self.delivery_factor = delivery_factor
        self._clock = clock
        self._max = max_ml_min
        self._lease_s = lease_s
        self._rate = 0.0
        self._until = -1.0
        self._total_ml = 0.0
        self._running = False
        self._run_ml = 0.0  # volume of the current or last run
        self._cal_ml: float | None = None
        self.stalled = False  # fault: motor turns no more (the circuit still counts)
        # Fault: the motor's supply is gone; the circuit refuses every run (*UV,PUMPPWR).
        self.motor_unpowered = False
        self._refused_run = False

    def run(self, ml_min: float, *, for_s: float | None = None) -> None:
        """Desired rate; each call is a bounded run that stops by itself after `for_s` seconds
        (default: the lease). A silent pump takes no command: its last run ends by itself."""
        if self._went_silent and self.silent:
            return
        if self.motor_unpowered and ml_min > 0:
            self._refused_run = True
            self._rate, self._until = 0.0, -1.0
            return
        self._rate = min(max(ml_min, 0.0), self._max)
        run_s = self._lease_s if for_s is None else for_s
        self._until = self._clock.monotonic() + run_s if self._rate > 0 else -1.0

    def fault(self) -> str | None:
        """Why the circuit will not run as told (here: its motor supply is gone), or None."""
        if self.motor_unpowered and self._refused_run:
            return "motor supply low (0.00 V): the circuit refuses every run (*UV,PUMPPWR)"
        return None

    def commanded_ml_min(self) -> float:
        """The rate the pump is running at now (0 once its lease has run out)."""
        if not self._rate:  # stopped: no lease to look at
            return 0.0
        return self._rate if self._clock.monotonic() < self._until else 0.0

    def commanded_at(self, now: float) -> float:
        """The rate at `now` (the clock's time, read once by the caller)."""
        return self._rate if self._rate and now < self._until else 0.0

    def delivered_ml_min(self) -> float:
        """The rate that really reaches the reactor."""
        return 0.0 if self.stalled else self.commanded_ml_min() * self.delivery_factor

    def step(self, dt: float, *, now: float) -> float:
        """The rate (mL/min) that reaches the reactor at `now`, and count what the pump believes
        it dispensed over the `dt` seconds to come (`delivered_ml_min` then `account`, with the
        clock read once by the caller)."""
        rate = self.commanded_at(now)
        delivered = 0.0 if self.stalled else rate * self.delivery_factor
        self._count(rate, dt)
        return delivered

    def account(self, dt: float) -> None:
        """Count what the pump believes it dispensed over `dt` seconds."""
        self._count(self.commanded_ml_min(), dt)

    def _count(self, rate: float, dt: float) -> None:
        if rate > 0.0 and not self._running:
            self._run_ml = 0.0  # a new run: the volume a calibration is measured against
        self._running = rate > 0.0
        self._run_ml += rate * dt / 60.0
        self._total_ml += rate * dt / 60.0

    def dispensed_ml(self) -> Reading[float]:
        """Total mL the pump reports dispensed."""
        silent: Reading[float] | None = self._no_answer() if self._went_silent else None
        return silent or Reading.ok(self._total_ml, self._clock.monotonic())

    async def calibrate(self, measured_ml: float) -> bool:
        """What the last run really measured; refuses (ValueError) a volume out of (0, 1000] mL
        or more than 2× off what the pump believes it ran. Returns True once calibrated."""
        if not (math.isfinite(measured_ml) and 0 < measured_ml <= _MAX_CAL_ML):
            raise ValueError(
                f"measured volume must be a number of mL in (0, {_MAX_CAL_ML:g}], got {measured_ml}"
            )
        nominal = self._run_ml
        low, high = PUMP_CAL_RATIO
        if nominal <= 0.0:
            raise ValueError(
                f"{self.tag} has dispensed nothing to compare with: dose a known volume first "
                f"(jog pump {self.tag} 10 cylinder), measure it, then calibrate"
            )
        if not low <= measured_ml / nominal <= high:
            raise ValueError(
                f"{self.tag}: measured {measured_ml:g} mL after a run of {nominal:.2f} mL is more "
                f"than {high:g}× off: dose a known volume again and measure it"
            )
        self._cal_ml = measured_ml
        log.info("pump.calibrated", tag=self.tag, measured_ml=measured_ml, nominal_ml=nominal)
        return True

    async def clear_calibration(self) -> None:
        """Forget the volume calibration."""
        self._cal_ml = None

    async def is_calibrated(self) -> bool:
        """Whether a volume calibration is held."""
        return self._cal_ml is not None
