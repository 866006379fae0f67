"""The reactor as physics: heat balance, level, reagent doses and the pH of the liquor (DESIGN §8).

Holds only the true state; it never models instruments or faults in devices (sensors.py and the
mock layer do), and never reads a clock: time passes only through `step(dt)`.
"""

from __future__ import annotations

import math

from hal.sim.chemistry import (
    PK2_BISULFATE,
    Composition,
    charge_imbalance,
    pka_ammonium,
    solve_ph,
)
from hal.sim.params import PlantParams
from hal.wiring import BoardWiring, CoilFunction, LevelPoint, Reagent

# Heats of reaction (J/mol), released into the liquor.
DILUTION_H2SO4_J_MOL = 75_000.0
NEUTRALISATION_J_MOL = 57_000.0
H2O2_DECOMPOSITION_J_MOL = 98_000.0
# H2O2 decomposes first order (metal ions and heat catalyse it in a leach).
H2O2_K_PER_S = 1.0 / 600.0
# Acid dosed above this pH finds base to neutralise; base dosed below PH_BASE_REACTS does.
PH_ACID_REACTS = 2.0
PH_BASE_REACTS = 12.0

# pH is re-solved at most this often (simulated s): the probe's own lag is far longer.
PH_SOLVE_PERIOD_S = 0.5
# A temperature change this large alone (K) is worth a re-solve (Kw and pKa move with it).
PH_SOLVE_DT_K = 0.05
# Below this mass (kg) the heat balance uses it anyway, so a few mL never heat by 1000 K/s.
MIN_HEAT_MASS_KG = 1.0
# With nothing in the vessel its "temperature" drifts to ambient (s): what the RTD would see.
EMPTY_VESSEL_TAU_S = 600.0

# The liquor boils here (°C, salts raise it a little); surplus heat evaporates water instead.
BOILING_C = 102.0
LATENT_HEAT_J_KG = 2.26e6

# Black mass per kg: mostly NMC oxides, some lithium, traces of Fe and Al (mol/kg).
BLACK_MASS_MOL_PER_KG = {"m": 10.0, "li": 1.0, "fe": 0.1, "al": 0.15}
# The liquor presets: ~4 kg black mass leached into 100 L at 40 °C.
PRESET_VOLUME_L = 100.0
PRESET_TEMPERATURE_C = 40.0
PRESET_BLACK_MASS_KG = 4.0
# Leach liquor's pH is set by its free acid. Bisulfate buffers hard below pH 2 (pK2 1.99), so
# this is the lowest pH from which 4 M NaOH reaches pH 4.25 in ≲ 3 L (pH 1 would need ~23 L).
LEACH_LIQUOR_PH = 2.6
PURIFIED_LIQUOR_PH = 4.3

PRESETS = ("empty", "water", "leach_liquor", "purified_liquor")

_NO_REAGENT, _H2SO4, _H2O2, _NAOH, _NH4OH, _METAL_SULFATE = range(6)
_REAGENT_CODE = {
    Reagent.H2SO4: _H2SO4,
    Reagent.H2O2: _H2O2,
    Reagent.NAOH: _NAOH,
    Reagent.NH4OH: _NH4OH,
    Reagent.METAL_SULFATE: _METAL_SULFATE,
}


class Plant:
    """The stirred reactor's true state, advanced by `step(dt)` under the actuator inputs."""

    def __init__(self, *, params: PlantParams, wiring: BoardWiring) -> None:
        self.params = params
        # actuator inputs, set by the mock devices before each step
        self.ssr_on = False
        self.contactor_closed = False
        self.agitator_on = False
        self.fill_pump_on = False
        self.drain_open = False
        self.purge_on = False
        self.heater_open = False  # fault: element open circuit
        self.pump_ml_min: dict[str, float] = dict.fromkeys(wiring.pumps(), 0.0)
        # wiring resolved once: the step loop must not walk pydantic models
        self._power_w = wiring.heater().power_w * params.heater_efficiency
        self._fill_l_s = wiring.coil(CoilFunction.FILL_PUMP).flow_l_min / 60.0
        self._drain_l_s = wiring.coil(CoilFunction.DRAIN_VALVE).flow_l_min / 60.0
        self._at_l = {p: wiring.level_switch(p).at_l for p in LevelPoint}
        self._lsll_l = self._at_l[LevelPoint.LOW_LOW]
        self._lsl_l = self._at_l[LevelPoint.LOW]
        self._lsh_l = self._at_l[LevelPoint.HIGH]
        self._pumps = {
            tag: (_REAGENT_CODE.get(w.reagent, _NO_REAGENT), w.concentration_mol_l)
            for tag, w in wiring.pumps().items()
        }
        self._rho = params.density_kg_l
        self._cp = params.cp_j_kg_k
        self._ua = params.ua_w_k
        self._t_amb = params.ambient_c
        self._t_in = params.water_c
        self._capacity_l = params.capacity_l
        self._lag_dt = -1.0
        self._lag_a = 1.0
        self._h2o2_a = 0.0
        # true state
        self.composition = Composition()
        self.h2o2_mol = 0.0
        self.volume_l = params.initial_volume_l
        self.temperature_c = params.initial_temperature_c
        self.max_temperature_c = self.temperature_c
        self.heater_power_w = 0.0
        self.overflow_l = 0.0
        self.evaporated_l = 0.0
        self.heater_on_dry_s = 0.0
        self.time_s = 0.0
        self.dosed_ml: dict[str, float] = dict.fromkeys(self._pumps, 0.0)
        self._ph = 7.0
        self._ph_t = self.temperature_c
        self._since_solve = 0.0
        self._dirty = False
        self._solve()

    # --- outputs -------------------------------------------------------------------------

    @property
    def ph(self) -> float:
        """True pH of the liquor (7.0 with the vessel empty), at most 0.5 s old."""
        return self._ph

    def wet(self, point: LevelPoint) -> bool:
        """Whether liquid stands at the level switch at `point`."""
        return self.volume_l >= self._at_l[point]

    # --- contents ------------------------------------------------------------------------

    def preload(self, preset: str) -> None:
        """Replace the contents with a recipe's `starts_with` preset (see PRESETS)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown plant preset {preset!r}; valid: {', '.join(PRESETS)}")
        self.composition = Composition()
        self.h2o2_mol = 0.0
        self.temperature_c = self.params.initial_temperature_c
        if preset == "empty":
            self.volume_l = 0.0
        elif preset == "water":
            self.volume_l = 0.5 * (self._lsl_l + self._lsh_l)
        else:
            self.volume_l = PRESET_VOLUME_L
            self.temperature_c = PRESET_TEMPERATURE_C
            comp = self.composition
            for name, per_kg in BLACK_MASS_MOL_PER_KG.items():
                setattr(comp, name, per_kg * PRESET_BLACK_MASS_KG)
            if preset == "purified_liquor":
                # Fe and Al left as hydroxide cake on the filter; NaOH from purification stays.
                comp.fe = comp.al = 0.0
                comp.sulfate = self._sulfate_for(comp, LEACH_LIQUOR_PH)
                comp.sodium = (
                    -charge_imbalance(
                        comp, volume_l=self.volume_l, t_c=self.temperature_c, ph=PURIFIED_LIQUOR_PH
                    )
                    * self.volume_l
                )
            else:
                comp.sulfate = self._sulfate_for(comp, LEACH_LIQUOR_PH)
        self.max_temperature_c = max(self.max_temperature_c, self.temperature_c)
        self._solve()

    def _sulfate_for(self, comp: Composition, ph: float) -> float:
        """Sulfate (mol) that makes the liquor's pH exactly `ph` (closed form)."""
        probe = comp.copy()
        probe.sulfate = 0.0
        excess = charge_imbalance(probe, volume_l=self.volume_l, t_c=self.temperature_c, ph=ph)
        h: float = 10.0**-ph
        k2: float = 10.0**-PK2_BISULFATE
        return excess * self.volume_l / (1.0 + k2 / (h + k2))

    def charge_black_mass(self, kg: float) -> None:
        """Tip `kg` of black mass into the reactor; its oxides dissolve as the acid allows."""
        if kg < 0:
            raise ValueError(f"black mass must be >= 0 kg, got {kg}")
        comp = self.composition
        for name, per_kg in BLACK_MASS_MOL_PER_KG.items():
            setattr(comp, name, getattr(comp, name) + per_kg * kg)
        self._solve()

    # --- dynamics ------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance the plant by `dt` seconds under the current actuator inputs."""
        if dt <= 0.0:
            if dt < 0.0:
                raise ValueError(f"dt must be >= 0, got {dt}")
            return
        if dt != self._lag_dt:
            tau = self.params.heater_tau_s
            self._lag_a = 1.0 - math.exp(-dt / tau) if tau > 0 else 1.0
            self._h2o2_a = 1.0 - math.exp(-H2O2_K_PER_S * dt)
            self._lag_dt = dt
        self.time_s += dt
        v = self.volume_l
        t = self.temperature_c

        energised = self.ssr_on and self.contactor_closed and not self.heater_open
        self.heater_power_w += (
            (self._power_w if energised else 0.0) - self.heater_power_w
        ) * self._lag_a
        if energised and v < self._lsll_l:
            self.heater_on_dry_s += dt

        q = 0.0  # reaction heat this step (J)
        v_in = self._fill_l_s * dt if self.fill_pump_on else 0.0
        if v_in:
            self._dirty = True
        for tag, rate in self.pump_ml_min.items():
            if rate <= 0.0:
                continue
            ml = rate * dt / 60.0
            self.dosed_ml[tag] += ml
            v_in += ml * 1e-3
            q += self._dose(tag, ml)
            self._dirty = True
        if v_in:
            # Inflow arrives at water temperature: mixing is the Σṁ·cp·(T − T_in) term, exactly.
            t = (t * v + self._t_in * v_in) / (v + v_in)
            v += v_in

        if self.drain_open and v > 0.0:
            out = min(v, self._drain_l_s * dt)
            self._remove(out / v)
            v -= out
            self._dirty = True
        if v > self._capacity_l:
            spill = v - self._capacity_l
            self._remove(self._capacity_l / v)
            self.overflow_l += spill
            v = self._capacity_l

        if self.h2o2_mol > 0.0:
            gone = self.h2o2_mol * self._h2o2_a
            self.h2o2_mol -= gone
            q += H2O2_DECOMPOSITION_J_MOL * gone

        if v > 0.0:
            # The element sits just below LSLL: below it only the covered share heats liquor.
            share = 1.0 if v >= self._lsll_l else v / self._lsll_l
            mass = v * self._rho
            power = self.heater_power_w * share - self._ua * (t - self._t_amb)
            t += (power * dt + q) / (
                self._cp * (mass if mass > MIN_HEAT_MASS_KG else MIN_HEAT_MASS_KG)
            )
            if t > BOILING_C:
                boiled = min(v, (t - BOILING_C) * self._cp * mass / LATENT_HEAT_J_KG / self._rho)
                self.evaporated_l += boiled
                v -= boiled
                t = BOILING_C
                self._dirty = True
        else:
            t += (self._t_amb - t) * dt / EMPTY_VESSEL_TAU_S
        self.volume_l = v
        self.temperature_c = t
        if t > self.max_temperature_c:
            self.max_temperature_c = t

        self._since_solve += dt
        if self._since_solve >= PH_SOLVE_PERIOD_S - 1e-9 and (
            self._dirty or abs(t - self._ph_t) > PH_SOLVE_DT_K
        ):
            self._solve()

    def _dose(self, tag: str, ml: float) -> float:
        """Add `ml` of pump `tag`'s reagent to the composition; returns the heat released (J)."""
        code, conc = self._pumps[tag]
        mol = conc * ml * 1e-3
        comp = self.composition
        if code == _NAOH:
            comp.sodium += mol
            return NEUTRALISATION_J_MOL * mol if self._ph < PH_BASE_REACTS else 0.0
        if code == _METAL_SULFATE:
            comp.m += mol
            comp.sulfate += mol
            return 0.0
        if code == _NH4OH:
            comp.ammonia += mol
            if self._ph < pka_ammonium(self.temperature_c):
                return NEUTRALISATION_J_MOL * mol
            return 0.0
        if code == _H2SO4:
            comp.sulfate += mol
            q = DILUTION_H2SO4_J_MOL * mol
            if self._ph > PH_ACID_REACTS:
                q += 2.0 * NEUTRALISATION_J_MOL * mol
            return q
        if code == _H2O2:
            self.h2o2_mol += mol
        return 0.0

    def _remove(self, keep: float) -> None:
        """Keep the `keep` fraction of everything in solution or suspension."""
        self.composition.scale(keep)
        self.h2o2_mol *= keep

    def _solve(self) -> None:
        self._ph = solve_ph(
            self.composition,
            self.volume_l,
            self.temperature_c,
            None if self.volume_l <= 0.0 else self._ph,
        )
        self._ph_t = self.temperature_c
        self._since_solve = 0.0
        self._dirty = False
