"""Tiny process models for the control tests: a heated reactor and a pH buffer region.

Deterministic (seeded noise, explicit dt); never a stand-in for the plant simulator in hal/sim.
"""

from __future__ import annotations

import math
import random
from collections import deque


class HeatedReactor:
    """100 L reactor: lagged heater power, slow losses, lagged probe (first-order + lag)."""

    def __init__(
        self,
        *,
        start_c: float = 20.0,
        ambient_c: float = 20.0,
        power_w: float = 6000.0,
        k_per_min_full: float = 0.86,
        ua_w_k: float = 12.0,
        element_tau_s: float = 120.0,
        probe_tau_s: float = 20.0,
        noise_c: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.true_c = start_c
        self.probe_c = start_c
        self.ambient_c = ambient_c
        self.power_w = power_w
        # Heat capacity from the heating rate at full power (losses ignored at the quote).
        self.heat_capacity_j_k = power_w / (k_per_min_full / 60.0)
        self.ua_w_k = ua_w_k
        self.element_tau_s = element_tau_s
        self.probe_tau_s = probe_tau_s
        self.delivered_w = 0.0
        self.noise_c = noise_c
        self._rng = random.Random(seed)

    def step(self, *, duty: float, dt: float) -> None:
        """Advance `dt` seconds with the heater at `duty` (0..1 average)."""
        target_w = self.power_w * duty
        lag = 1.0 - math.exp(-dt / self.element_tau_s)
        self.delivered_w += (target_w - self.delivered_w) * lag
        loss_w = self.ua_w_k * (self.true_c - self.ambient_c)
        self.true_c += (self.delivered_w - loss_w) * dt / self.heat_capacity_j_k
        self.probe_c += (self.true_c - self.probe_c) * (1.0 - math.exp(-dt / self.probe_tau_s))

    def measured(self) -> float:
        """The probe reading, with noise if configured."""
        return self.probe_c + (self._rng.gauss(0.0, self.noise_c) if self.noise_c else 0.0)


class CausticBuffer:
    """Excess-OH⁻ balance around pH 11 at 60 °C: pH = pKw + log10(n/V), probe lag and dead time.

    A metal-sulfate feed consumes `equivalents` mol OH⁻ per mol metal; NaOH supplies it.
    """

    PKW_60C = 13.02

    def __init__(
        self,
        *,
        start_ph: float = 11.0,
        volume_l: float = 100.0,
        naoh_mol_l: float = 4.0,
        feed_mol_l: float = 2.0,
        equivalents: float = 2.0,
        probe_tau_s: float = 8.0,
        dead_time_s: float = 8.0,
        noise: float = 0.004,
        seed: int = 1,
    ) -> None:
        self.volume_l = volume_l
        self.excess_oh_mol = 10.0 ** (start_ph - self.PKW_60C) * volume_l
        self.naoh_mol_l = naoh_mol_l
        self.feed_mol_l = feed_mol_l
        self.equivalents = equivalents
        self.probe_tau_s = probe_tau_s
        self.dead_time_s = dead_time_s
        self.noise = noise
        self._rng = random.Random(seed)
        self._history: deque[tuple[float, float]] = deque()
        self._t = 0.0
        self.probe_ph = start_ph
        self._delayed_ph = start_ph
        self.naoh_ml = 0.0

    @property
    def true_ph(self) -> float:
        """The well-mixed bulk pH."""
        return self.PKW_60C + math.log10(max(self.excess_oh_mol, 1e-12) / self.volume_l)

    def step(self, *, naoh_ml_min: float, feed_ml_min: float, dt: float) -> None:
        """Advance `dt` seconds with the given reagent and feed rates."""
        naoh_l = naoh_ml_min * dt / 60_000.0
        feed_l = feed_ml_min * dt / 60_000.0
        self.naoh_ml += naoh_l * 1000.0
        self.excess_oh_mol += naoh_l * self.naoh_mol_l - self.equivalents * feed_l * self.feed_mol_l
        self.volume_l += naoh_l + feed_l
        self._t += dt
        self._history.append((self._t, self.true_ph))
        # The probe sees the bulk as it was one dead time ago, through a first-order lag.
        while self._history and self._history[0][0] <= self._t - self.dead_time_s:
            self._delayed_ph = self._history.popleft()[1]
        lag = 1.0 - math.exp(-dt / self.probe_tau_s)
        self.probe_ph += (self._delayed_ph - self.probe_ph) * lag

    def measured(self) -> float:
        """The probe reading with seeded noise."""
        return self.probe_ph + (self._rng.gauss(0.0, self.noise) if self.noise else 0.0)
