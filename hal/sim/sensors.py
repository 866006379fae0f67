"""Instrument models over the plant's true values: lag, dead time, noise, drift, slope loss, faults,
and the pH electrode's Nernst voltage read back at the compensation temperature.

Deterministic given the `random.Random` handed in; never reads a clock or the plant itself (the
caller passes each true value and the time step).
"""

from __future__ import annotations

import math
import random
from collections import deque

# The glass electrode's isopotential point: slope loss pivots about pH 7.
DEFAULT_SLOPE_REF = 7.0


class SensorModel:
    """One measured signal: delayed by `dead_time_s`, lagged by `tau_s`, with gaussian noise.

    Faults and ageing are plain attributes: `stuck`, `dead`, `drift_per_s`, `slope`, `slope_ref`.
    """

    def __init__(
        self,
        *,
        tau_s: float,
        dead_time_s: float,
        noise: float,
        rng: random.Random,
        initial: float,
    ) -> None:
        if tau_s < 0 or dead_time_s < 0 or noise < 0:
            raise ValueError(
                f"tau_s, dead_time_s and noise must be >= 0, got {tau_s}, {dead_time_s}, {noise}"
            )
        self.tau_s = tau_s
        # May change at run time (slower mixing with the agitator off); see `update`.
        self.dead_time_s = dead_time_s
        self.noise = noise
        self.drift_per_s = 0.0
        self.slope = 1.0
        self.slope_ref = DEFAULT_SLOPE_REF
        self.stuck = False  # fault: the output holds its last value
        self.dead = False  # fault: no reading at all
        self._rng = rng
        self._time_s = 0.0
        self._offset = 0.0
        self._alpha_key = (-1.0, -1.0)
        self._alpha = 1.0
        self._history: deque[tuple[float, float]] = deque()
        self._lagged = initial
        self._output = initial
        self.reset(initial)

    @property
    def value(self) -> float | None:
        """The measured value, or None while the device is dead."""
        return None if self.dead else self._output

    @property
    def offset(self) -> float:
        """Offset accumulated so far by drift."""
        return self._offset

    def reset(self, value: float) -> None:
        """Settle the instrument at `value` (the process was there for a long time); keeps drift."""
        self._history.clear()
        self._history.append((self._time_s, value))
        self._lagged = value
        if not self.stuck:
            self._output = self._calibrated(value)

    def update(self, true_value: float, dt: float) -> None:
        """Advance `dt` seconds with the process at `true_value` (its value at the step's end)."""
        self._time_s = now = self._time_s + dt
        history = self._history
        history.append((now, true_value))
        # The front is the newest sample at least one dead time old. If the dead time has just
        # grown, nothing is old enough yet and the front holds: the transport delay lengthened.
        cutoff = now - self.dead_time_s + 1e-9
        while len(history) > 1 and history[1][0] <= cutoff:
            history.popleft()
        delayed = history[0][1]

        key = (dt, self.tau_s)
        if key != self._alpha_key:
            self._alpha = 1.0 - math.exp(-dt / self.tau_s) if self.tau_s > 0 else 1.0
            self._alpha_key = key
        self._lagged += (delayed - self._lagged) * self._alpha
        self._offset += self.drift_per_s * dt
        if self.stuck:
            return
        out = self._calibrated(self._lagged)
        if self.noise > 0.0:
            out += self._rng.gauss(0.0, self.noise)
        self._output = out

    def _calibrated(self, value: float) -> float:
        ref = self.slope_ref
        return ref + self.slope * (value - ref) + self._offset


class PhElectrode:
    """A glass electrode in the process, read by a circuit that converts mV with a temperature.

    The membrane's pH (after the probe's lag, from a `SensorModel`) becomes a Nernst voltage at
    the true process temperature, with an offset the buffers never show (the reference junction
    in a slurry) and a slow drift; the circuit turns it back into pH at the temperature it was
    told (25 °C until told), then noise and occasional spikes (bubbles, VFD and SSR switching).
    Deterministic for its `rng`; never reads a clock.
    """

    def __init__(
        self,
        *,
        offset_ph: float,
        drift_ph_per_s: float,
        noise: float,
        spikes_per_s: float,
        spike_size: float,
        rng: random.Random,
    ) -> None:
        # Stated in pH at 25 °C (positive reads high), kept as the voltage it is: it reads
        # differently when hot.
        self.offset_mv = offset_ph * _NERNST_25C
        self.drift_mv_per_s = drift_ph_per_s * _NERNST_25C
        self.noise = noise
        self.spikes_per_s = spikes_per_s
        self.spike_size = spike_size
        self._rng = rng
        self._drift_mv = 0.0
        self._spike_left = 0
        self._spike = 0.0

    def advance(self, dt: float) -> None:
        """Let `dt` seconds of drift accumulate."""
        self._drift_mv += self.drift_mv_per_s * dt

    def convert(self, membrane_ph: float, *, process_c: float, compensation_c: float) -> float:
        """The noise-free conversion: what the circuit makes of the membrane at `membrane_ph`."""
        mv = -_nernst(process_c) * (membrane_ph - ISOPOTENTIAL_PH)
        mv -= self.offset_mv + self._drift_mv  # a lower voltage reads as a higher pH
        return ISOPOTENTIAL_PH - mv / _nernst(compensation_c)

    def read(
        self, membrane_ph: float, *, process_c: float, compensation_c: float, sample_s: float
    ) -> float:
        """What the circuit reports (uncalibrated pH) for the membrane at `membrane_ph`."""
        value = self.convert(membrane_ph, process_c=process_c, compensation_c=compensation_c)
        rng = self._rng
        if self.noise > 0.0:
            value += rng.gauss(0.0, self.noise)
        if self._spike_left > 0:
            self._spike_left -= 1
            value += self._spike
        elif (
            self.spikes_per_s > 0.0
            and self.spike_size > 0.0  # spikes of no size: none (expovariate needs a mean > 0)
            and rng.random() < self.spikes_per_s * sample_s
        ):
            self._spike = rng.choice((-1.0, 1.0)) * rng.expovariate(1.0 / self.spike_size)
            self._spike_left = rng.choice((0, 1))  # one or two samples
            value += self._spike
        return value


# The ideal glass electrode: 0.1984 mV/pH per kelvin, isopotential at pH 7.
ISOPOTENTIAL_PH = 7.0
_NERNST_PER_K = 0.198416


def _nernst(t_c: float) -> float:
    return _NERNST_PER_K * (t_c + 273.15)


_NERNST_25C = _nernst(25.0)
