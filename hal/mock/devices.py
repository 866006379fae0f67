"""Mock devices on the plant simulator, behaving like the real instruments at their interface.

Never blocks; never lets an output outlive its lease (the same rule the hardware enforces).
"""

from __future__ import annotations

from hal.clock import Clock
from hal.reading import Reading
from hal.sim.sensors import SensorModel

# An EZO circuit answers a read in about 900 ms, so a new sample arrives about once a second.
SAMPLE_PERIOD_S = 1.0
# What an EZO-RTD reports with its probe disconnected.
RTD_OPEN_CIRCUIT_C = -1023.0


class _Sampled:
    """A probe whose newest sample is refreshed once per sample period from a sensor model."""

    def __init__(self, *, tag: str, model: SensorModel, clock: Clock) -> None:
        self.tag = tag
        self.model = model
        self._clock = clock
        self._next_sample = clock.monotonic()
        self._latest: Reading[float] = Reading.bad("no reading yet", clock.monotonic())
        self.error = False  # fault: the circuit answers every read with *ER

    def sample(self, true_value: float, dt: float) -> None:
        """Advance the sensor model and take a sample when one is due."""
        self.model.update(true_value, dt)
        now = self._clock.monotonic()
        if now + 1e-9 < self._next_sample:
            return
        self._next_sample = now + SAMPLE_PERIOD_S
        value = self._measure()
        if self.error or value is None:
            # A failed read leaves the last sample to go stale, as a real driver would.
            return
        self._latest = Reading.ok(round(value, 3), now)

    def _measure(self) -> float | None:
        return self.model.value

    def resample(self, true_value: float) -> None:
        """Take a sample now, whatever the schedule (after the simulator preloads the plant)."""
        self._next_sample = self._clock.monotonic()
        self.sample(true_value, 0.0)

    def latest(self) -> Reading[float]:
        """The newest sample."""
        return self._latest


class MockRtd(_Sampled):
    """EZO-RTD on the reactor temperature."""

    open_circuit = False  # fault: probe disconnected; the circuit reads -1023

    def _measure(self) -> float | None:
        return RTD_OPEN_CIRCUIT_C if self.open_circuit else self.model.value


class MockPhProbe(_Sampled):
    """EZO-pH on the reactor pH."""

    compensation_c: float | None = None

    def compensate(self, temperature_c: float) -> None:
        """Remember the compensation temperature (the model reports pH at process temperature)."""
        self.compensation_c = temperature_c


class MockDigitalInput:
    """A level switch or E-stop contact on the relay board's inputs."""

    def __init__(self, *, tag: str, clock: Clock) -> None:
        self.tag = tag
        self._clock = clock
        self.forced: bool | None = None  # fault: switch stuck at this value
        self._latest: Reading[bool] = Reading.bad("no reading yet", clock.monotonic())

    def sample(self, true_value: bool) -> None:
        """Take the switch's state (inputs are polled every scan on the board)."""
        value = true_value if self.forced is None else self.forced
        self._latest = Reading.ok(value, self._clock.monotonic())

    def latest(self) -> Reading[bool]:
        """The newest sample."""
        return self._latest


class MockCoil:
    """A relay coil whose on-state is a lease: not renewed within `lease_s`, it drops out."""

    def __init__(self, *, tag: str, clock: Clock, lease_s: float = 5.0) -> None:
        self.tag = tag
        self._clock = clock
        self._lease_s = lease_s
        self._on_until = -1.0

    def set(self, on: bool) -> None:
        """Desired state; renewing an on-coil extends its lease."""
        now = self._clock.monotonic()
        self._on_until = now + self._lease_s if on else -1.0

    def drive(self, on: bool, *, for_s: float | None = None) -> None:
        """Hardware truth from an emulated relay board: on for `for_s` seconds, or until off."""
        if not on:
            self._on_until = -1.0
        elif for_s is None:
            self._on_until = float("inf")
        else:
            self._on_until = self._clock.monotonic() + for_s

    @property
    def energised(self) -> bool:
        """True while the lease holds."""
        return self._clock.monotonic() < self._on_until


class MockHeaterSsr:
    """The heater SSR with the relay board's timed flash-on (turns itself off)."""

    def __init__(self, *, tag: str, clock: Clock) -> None:
        self.tag = tag
        self._clock = clock
        self._on_until = -1.0
        self.welded = False  # fault: SSR failed shorted

    def pulse(self, on_s: float) -> None:
        """On for `on_s` seconds from now, then off by itself; 0 switches off now."""
        now = self._clock.monotonic()
        self._on_until = now + on_s if on_s > 0 else -1.0

    @property
    def conducting(self) -> bool:
        """True while the SSR passes current (always, once welded)."""
        return self.welded or self._clock.monotonic() < self._on_until


class MockDosingPump:
    """An EZO-PMP running bounded doses at a commanded rate."""

    def __init__(self, *, tag: str, clock: Clock, max_ml_min: float, lease_s: float = 2.0) -> None:
        self.tag = tag
        self._clock = clock
        self._max = max_ml_min
        self._lease_s = lease_s
        self._rate = 0.0
        self._until = -1.0
        self._total_ml = 0.0
        self.stalled = False  # fault: motor turns no more (the circuit still counts)

    def run(self, ml_min: float, *, for_s: float | None = None) -> None:
        """Desired rate; each call is a bounded run that stops by itself after `for_s` seconds
        (default: the lease)."""
        self._rate = min(max(ml_min, 0.0), self._max)
        run_s = self._lease_s if for_s is None else for_s
        self._until = self._clock.monotonic() + run_s if self._rate > 0 else -1.0

    def commanded_ml_min(self) -> float:
        """The rate the pump is running at now (0 once its lease has run out)."""
        return self._rate if self._clock.monotonic() < self._until else 0.0

    def delivered_ml_min(self) -> float:
        """The rate that really reaches the reactor."""
        return 0.0 if self.stalled else self.commanded_ml_min()

    def account(self, dt: float) -> None:
        """Count what the pump believes it dispensed over `dt` seconds."""
        self._total_ml += self.commanded_ml_min() * dt / 60.0

    def dispensed_ml(self) -> Reading[float]:
        """Total mL the pump reports dispensed."""
        return Reading.ok(self._total_ml, self._clock.monotonic())
