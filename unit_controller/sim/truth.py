"""How well the batch really went: the plant's true pH and temperature against the setpoints.

Fed each scan with the simulator's true state and the controller's snapshot; never changes the
run. The batch record (what a real unit can know) keeps the measured figures beside these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unit_controller.batch.record import PH_BAND
from unit_controller.controller import Snapshot
from unit_controller.machine import State

# The true temperature counts as having reached a new setpoint once within this much (°C).
REACHED_C = 0.2


@dataclass(slots=True)
class _PhPhase:
    seconds: float = 0.0
    in_band_s: float = 0.0


@dataclass(slots=True)
class PhaseIae:
    """IAE of one phase: pH·s and °C·s (temperature once its setpoint was reached)."""

    ph: float = 0.0
    ph_control: float = 0.0
    ph_probe_floor: float = 0.0  # what holding the reading exactly at setpoint would score
    temperature: float = 0.0


@dataclass(slots=True)
class TruthRecorder:
    """Accumulates true in-band time, IAE and overshoot while the batch executes."""

    ph_phases: dict[str, _PhPhase] = field(default_factory=dict)
    phase_iae: dict[str, PhaseIae] = field(default_factory=dict)
    iae_ph: float = 0.0  # pH·s over the pH-controlled phases
    # pH·s against where the probe reads the setpoint (its calibration bias taken out)
    iae_ph_control: float = 0.0
    # pH·s of the probe's own bias: the true IAE of a controller that held the reading exactly
    # at setpoint. No controller of the reading can do better; the envelope reports it beside.
    iae_ph_probe_floor: float = 0.0
    iae_temperature: float = 0.0  # °C·s once each setpoint was reached
    overshoot_c: float = 0.0
    max_ph_error: float = 0.0
    _setpoint_c: float | None = None
    _reached: bool = False
    _side: float = 0.0  # which side of the setpoint the segment started on
    _at: float | None = None

    def observe(
        self,
        snap: Snapshot,
        *,
        true_ph: float,
        true_temperature_c: float,
        probe_bias: float = 0.0,
    ) -> None:
        """Account the scan `snap` with the plant's true values at that moment.

        `probe_bias`: how far the settled, noise-free reading sits from the true pH now; the
        control IAE judges the true pH against where the probe reads the setpoint.
        """
        dt = 0.0 if self._at is None else max(0.0, snap.at - self._at)
        self._at = snap.at
        if snap.state is not State.EXECUTE:
            return
        targets = snap.targets
        ph = targets.ph
        phase_iae = self.phase_iae.setdefault(snap.phase or "", PhaseIae())
        if ph is not None and snap.phase is not None:
            record = self.ph_phases.setdefault(snap.phase, _PhPhase())
            error = abs(true_ph - ph.setpoint)
            record.seconds += dt
            if error <= PH_BAND + 1e-9:
                record.in_band_s += dt
            self.iae_ph += error * dt
            phase_iae.ph += error * dt
            control_error = abs(true_ph + probe_bias - ph.setpoint)
            self.iae_ph_control += control_error * dt
            phase_iae.ph_control += control_error * dt
            self.iae_ph_probe_floor += abs(probe_bias) * dt
            phase_iae.ph_probe_floor += abs(probe_bias) * dt
            self.max_ph_error = max(self.max_ph_error, error)
        sp = targets.temperature_c
        if sp != self._setpoint_c:
            self._setpoint_c = sp
            self._reached = False
            self._side = 0.0 if sp is None else (1.0 if true_temperature_c > sp else -1.0)
        if sp is None:
            return
        offset = true_temperature_c - sp
        if not self._reached:
            # Reached once within the margin or across it, from whichever side it started:
            # a hot liquor cooling to its setpoint has no overshoot until it gets there.
            self._reached = abs(offset) <= REACHED_C or offset * self._side < 0.0
        if self._reached:
            self.iae_temperature += abs(offset) * dt
            phase_iae.temperature += abs(offset) * dt
            self.overshoot_c = max(self.overshoot_c, offset)

    def in_band_fraction(self) -> dict[str, float]:
        """True fraction of time within ±0.05 of the setpoint, per pH-controlled phase."""
        return {
            name: round(p.in_band_s / p.seconds, 4)
            for name, p in self.ph_phases.items()
            if p.seconds > 0
        }

    def summary(self) -> dict[str, Any]:
        """The true figures as plain data."""
        return {
            "true_in_band_fraction": self.in_band_fraction(),
            "iae": {
                "ph_true": round(self.iae_ph, 2),
                "ph_control": round(self.iae_ph_control, 2),
                "ph_probe_floor": round(self.iae_ph_probe_floor, 2),
                "temperature_true": round(self.iae_temperature, 1),
            },
            "true_overshoot_c": round(self.overshoot_c, 2),
            "max_true_ph_error": round(self.max_ph_error, 3),
        }
