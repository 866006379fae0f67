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
    """Excess-OH⁻ balance around pH 11 at 60 °C: pH = pKw + log10(n/V), with the same hard parts
    as the plant twin: a mixing dead time before reagents reach the bulk, a probe that lags and
    is noisy with spikes, a precipitation lag on the feed's demand, and an optional acid.

    A metal-sulfate feed consumes `equivalents` mol OH⁻ per mol metal; NaOH supplies it.
    """

    PKW_60C = 13.02

    def __init__(
        self,
        *,
        start_ph: float = 11.0,
        volume_l: float = 100.0,
        naoh_mol_l: float = 4.0,
        acid_mol_l: float = 36.0,  # protons per L of 18 M H2SO4
        feed_mol_l: float = 2.0,
        equivalents: float = 2.0,
        probe_tau_s: float = 8.0,
        dead_time_s: float = 8.0,
        precipitation_tau_s: float = 0.0,
        noise: float = 0.004,
        spikes_per_h: float = 0.0,
        offset: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.volume_l = volume_l
        self.excess_oh_mol = 10.0 ** (start_ph - self.PKW_60C) * volume_l
        self.naoh_mol_l = naoh_mol_l
        self.acid_mol_l = acid_mol_l
        self.feed_mol_l = feed_mol_l
        self.equivalents = equivalents
        self.probe_tau_s = probe_tau_s
        self.dead_time_s = dead_time_s
        self.precipitation_tau_s = precipitation_tau_s
        self.noise = noise
        self.spikes_per_h = spikes_per_h
        self.offset = offset
        self._rng = random.Random(seed)
        self._transit: deque[tuple[float, float, float, float]] = deque()
        self._t = 0.0
        self._dissolved_mol = 0.0  # metal fed but not yet precipitated
        self.probe_ph = start_ph
        self.naoh_ml = 0.0
        self.acid_ml = 0.0
        self.max_true_ph = start_ph
        self.min_true_ph = start_ph

    @property
    def true_ph(self) -> float:
        """The well-mixed bulk pH."""
        return self.PKW_60C + math.log10(max(self.excess_oh_mol, 1e-12) / self.volume_l)

    @property
    def time_s(self) -> float:
        """Time since the start."""
        return self._t

    def step(
        self, *, naoh_ml_min: float, feed_ml_min: float, dt: float, acid_ml_min: float = 0.0
    ) -> None:
        """Advance `dt` seconds with the given reagent and feed rates."""
        self._t += dt
        self.naoh_ml += naoh_ml_min * dt / 60.0
        self.acid_ml += acid_ml_min * dt / 60.0
        # What the pumps deliver now reaches the bulk one dead time later.
        self._transit.append(
            (
                self._t + self.dead_time_s,
                naoh_ml_min * dt / 60_000.0,
                feed_ml_min * dt / 60_000.0,
                acid_ml_min * dt / 60_000.0,
            )
        )
        while self._transit and self._transit[0][0] <= self._t:
            _, naoh_l, feed_l, acid_l = self._transit.popleft()
            self.excess_oh_mol += naoh_l * self.naoh_mol_l - acid_l * self.acid_mol_l
            self._dissolved_mol += feed_l * self.feed_mol_l
            self.volume_l += naoh_l + feed_l + acid_l
        # The feed's metal takes its hydroxide as it precipitates.
        tau = self.precipitation_tau_s
        share = 1.0 if tau <= 0.0 else 1.0 - math.exp(-dt / tau)
        formed = self._dissolved_mol * share
        self._dissolved_mol -= formed
        self.excess_oh_mol -= self.equivalents * formed
        ph = self.true_ph
        self.max_true_ph = max(self.max_true_ph, ph)
        self.min_true_ph = min(self.min_true_ph, ph)
        lag = 1.0 - math.exp(-dt / self.probe_tau_s) if self.probe_tau_s > 0 else 1.0
        self.probe_ph += (ph - self.probe_ph) * lag

    def measured(self) -> float:
        """The probe reading with seeded noise, occasional spikes and its offset."""
        value = self.probe_ph + self.offset
        if self.noise:
            value += self._rng.gauss(0.0, self.noise)
        if self.spikes_per_h and self._rng.random() < self.spikes_per_h / 3600.0:
            value += self._rng.choice((-0.3, 0.3))
        return value
