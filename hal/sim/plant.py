"""The reactor as physics: heat balance, level, reagent streams, leaching, precipitation and pH.

Holds only the true state (DESIGN §8); it never models instruments or faults in devices
(sensors.py and the mock layer do), and never reads a clock: time passes only through `step(dt)`.
Reagents reach the bulk a mixing dead time after their pump delivers them; metals precipitate
and black mass leaches at finite rates; every heat of reaction comes from a stated enthalpy.
"""

from __future__ import annotations

import math
from collections import deque

from hal.sim import presets
from hal.sim.chemistry import (
    BISULFATE_DISSOCIATION_J_MOL,
    DH_AMMONIUM_J_MOL,
    NEUTRALISATION_J_MOL,
    PCAM_METALS,
    Liquor,
    Speciation,
    solve_ph,
    speciation,
)
from hal.sim.params import PlantParams
from hal.sim.precipitation import bound_ammonia, precipitate
from hal.sim.residue import (
    PEROXIDE_DECOMPOSITION_J_MOL,
    PEROXIDE_EA_J_MOL,
    SOLIDS_CP_J_KG_K,
    Residue,
    arrhenius,
    leach,
)
from hal.sim.streams import Receiver, Stream, reagent_stream
from hal.sim.vapour import ammonia_stripping_mol_s, evaporation_kg_s, latent_heat_j_kg
from hal.wiring import BoardWiring, CoilFunction, LevelPoint

PRESETS = presets.PRESETS

# Chemistry (kinetics and the pH solve) runs at most this often (simulated s): the probe's own
# lag is far longer.
CHEMISTRY_PERIOD_S = 0.5
# Below this mass (kg) the heat balance uses it anyway, so a few mL never heat by 1000 K/s.
MIN_HEAT_MASS_KG = 1.0
# With nothing in the vessel its "temperature" drifts to ambient (s): what the RTD would see.
EMPTY_VESSEL_TAU_S = 600.0
# The liquor boils here (°C, salts raise it a little); surplus heat evaporates water instead.
BOILING_C = 102.0
WATER_CP_J_KG_K = 4186.0
# Mixing is this much slower with the agitator stopped.
UNSTIRRED_MIXING = 4.0
# Ammonia held in complexes never exceeds this share of the total (the explicit update's bound).
MAX_BOUND_SHARE = 0.95


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
        self.cooling_open = False
        self.heater_open = False  # fault: element open circuit
        self.pump_ml_min: dict[str, float] = dict.fromkeys(wiring.pumps(), 0.0)
        # wiring resolved once: the step loop must not walk config models
        self._power_w = wiring.heater().power_w * params.heater_efficiency
        self._fill_l_s = wiring.coil(CoilFunction.FILL_PUMP).flow_l_min / 60.0
        self._drain_l_s = wiring.coil(CoilFunction.DRAIN_VALVE).flow_l_min / 60.0
        self._cool_w_k = 0.0
        if wiring.has_coil(CoilFunction.COOLING_VALVE):
            jacket = wiring.coil(CoilFunction.COOLING_VALVE)
            water_w_k = jacket.flow_l_min / 60.0 * WATER_CP_J_KG_K
            # Effectiveness of a jacket with the water passing once: flow-limited when small.
            self._cool_w_k = water_w_k * (1.0 - math.exp(-jacket.ua_w_k / water_w_k))
        self._at_l = {p: wiring.level_switch(p).at_l for p in LevelPoint}
        self._lsll_l = self._at_l[LevelPoint.LOW_LOW]
        mol = params.black_mass.mol_per_kg()
        pcam = sum(mol[m] for m in PCAM_METALS)
        # A synthetic metal-sulfate feed is made up in the black mass's Ni:Co:Mn proportions.
        self.feed_ratio = {m: (mol[m] / pcam if pcam > 0 else 1.0 / 3.0) for m in PCAM_METALS}
        self.streams: dict[str, Stream] = {
            tag: reagent_stream(
                w, feed_ratio=self.feed_ratio, feed_acid_per_metal=params.feed_acid_per_metal
            )
            for tag, w in wiring.pumps().items()
        }
        # What a litre of each stream adds, species by species, leaving out the zeros (a step
        # adds what arrived, several times a step while dosing).
        self._stream_terms = {tag: _terms(stream) for tag, stream in self.streams.items()}
        self._rho = params.density_kg_l
        self._cp = params.cp_j_kg_k
        self._lag_dt = -1.0
        self._lag_a = 1.0
        self._cool_a = 1.0
        self._in_transit: deque[tuple[float, dict[str, float]]] = deque()
        # true state
        self.liquor = Liquor()
        self.residue = Residue()
        self.h2o2_mol = 0.0
        self.volume_l = params.initial_volume_l
        self.temperature_c = params.initial_temperature_c
        self.max_temperature_c = self.temperature_c
        self.heater_power_w = 0.0
        self.jacket = 0.0  # share of full cooling the jacket gives now (lags the valve)
        self.overflow_l = 0.0
        self.evaporated_l = 0.0
        self.ammonia_stripped_mol = 0.0
        self.heater_on_dry_s = 0.0
        self.time_s = 0.0
        self.dosed_ml: dict[str, float] = dict.fromkeys(self.streams, 0.0)
        self.reaction_heat_j = 0.0
        self.drained = Receiver()
        self.spilled = Receiver()
        self.charged = Residue()  # every black mass ever tipped in, for the mass balance
        self.charged_kg = 0.0
        self._ph = 7.0
        self._spec = Speciation(7.0, 0.0, 0.0, 0.0, 0.0)
        self._in_oh = self._in_hso4 = self._in_nh4 = 0.0
        self._since_chemistry = 0.0
        self._solve()

    # --- outputs -------------------------------------------------------------------------

    @property
    def ph(self) -> float:
        """True pH of the bulk liquor (7.0 with the vessel empty), at most 0.5 s old."""
        return self._ph

    @property
    def free_ammonia_mol_l(self) -> float:
        """Free NH3 in the liquor now (mol/L)."""
        return self._spec.free_ammonia_mol_l

    @property
    def solids_present(self) -> bool:
        """Whether precipitate or undissolved black mass is suspended in the liquor."""
        liquor = self.liquor
        precipitate = liquor.ni_s + liquor.co_s + liquor.mn_s + liquor.cu_s
        precipitate += liquor.fe_s + liquor.al_s
        return precipitate > 1e-3 or self.residue.mass_kg() > 1e-3

    def wet(self, point: LevelPoint) -> bool:
        """Whether liquid stands at the level switch at `point`."""
        return self.volume_l >= self._at_l[point]

    @property
    def cooling_fitted(self) -> bool:
        """Whether the unit has a jacket cooling valve."""
        return self._cool_w_k > 0.0

    # --- contents ------------------------------------------------------------------------

    def preload(self, preset: str) -> None:
        """Replace the contents with a recipe's `starts_with` preset (see PRESETS)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown plant preset {preset!r}; valid: {', '.join(PRESETS)}")
        if preset == "empty":
            self.load(Liquor(), volume_l=0.0, temperature_c=self.params.initial_temperature_c)
        elif preset == "water":
            volume = 0.5 * (self._at_l[LevelPoint.LOW] + self._at_l[LevelPoint.HIGH])
            self.load(Liquor(), volume_l=volume, temperature_c=self.params.initial_temperature_c)
        else:
            make = presets.leach_liquor if preset == "leach_liquor" else presets.purified_liquor
            contents = make(self.params)
            self.load(
                contents.liquor, volume_l=contents.volume_l, temperature_c=contents.temperature_c
            )

    def load(
        self,
        liquor: Liquor,
        *,
        volume_l: float,
        temperature_c: float,
        residue: Residue | None = None,
        h2o2_mol: float = 0.0,
    ) -> None:
        """Replace the contents (a transfer from another vessel); nothing in transit."""
        if volume_l < 0.0:
            raise ValueError(f"volume must be >= 0, got {volume_l}")
        self.liquor = liquor.copy()
        self.residue = residue.copy() if residue is not None else Residue()
        self.h2o2_mol = h2o2_mol
        self.volume_l = volume_l
        self.temperature_c = temperature_c
        self.max_temperature_c = max(self.max_temperature_c, temperature_c)
        self._in_transit.clear()
        self._ph = 7.0
        self._solve(reaction_heat=False)
        self._update_ammine()
        self._solve(reaction_heat=False)

    def charge_black_mass(self, kg: float) -> None:
        """Tip `kg` of black mass into the reactor; it leaches as the acid and H2O2 allow."""
        if not (math.isfinite(kg) and kg >= 0):
            raise ValueError(f"black mass must be a number of kg >= 0, got {kg}")
        charge = Residue.of_black_mass(self.params.black_mass, kg)
        self.residue.add(charge)
        self.charged.add(charge)
        self.charged_kg += kg

    def set_stream(self, tag: str, stream: Stream) -> None:
        """What pump `tag` delivers from now on (a campaign feeds the liquor it made)."""
        if tag not in self.streams:
            raise ValueError(f"no pump {tag!r} on this unit")
        self.streams[tag] = stream
        self._stream_terms[tag] = _terms(stream)

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
            tau = self.params.cooling_tau_s
            self._cool_a = 1.0 - math.exp(-dt / tau) if tau > 0 else 1.0
            self._lag_dt = dt
        self.time_s += dt
        energised = self.ssr_on and self.contactor_closed and not self.heater_open
        self.heater_power_w += (
            (self._power_w if energised else 0.0) - self.heater_power_w
        ) * self._lag_a
        if energised and self.volume_l < self._lsll_l:
            self.heater_on_dry_s += dt
        self.jacket += ((1.0 if self.cooling_open else 0.0) - self.jacket) * self._cool_a

        q = self._inflows(dt)
        self._outflows(dt)
        self._heat(dt, q)
        self._since_chemistry += dt
        if self._since_chemistry >= CHEMISTRY_PERIOD_S - 1e-9:
            self._chemistry(self._since_chemistry)

    def _inflows(self, dt: float) -> float:
        """Fill water and reagents arriving now; returns the heat of mixing released (J)."""
        delivered: dict[str, float] = {}
        for tag, rate in self.pump_ml_min.items():
            if rate > 0.0:
                ml = rate * dt / 60.0
                self.dosed_ml[tag] += ml
                delivered[tag] = ml
        if delivered:
            delay = self.params.mixing_dead_time_s * (1.0 if self.agitator_on else UNSTIRRED_MIXING)
            self._in_transit.append((self.time_s + delay, delivered))
        q = 0.0
        water_l = self._fill_l_s * dt if self.fill_pump_on else 0.0
        if water_l:
            self._mix_in(water_l, self.params.water_c)
        transit = self._in_transit
        while transit and transit[0][0] <= self.time_s + 1e-9:
            for tag, ml in transit.popleft()[1].items():
                q += self._arrive(tag, ml)
        return q

    def _arrive(self, tag: str, ml: float) -> float:
        stream = self.streams[tag]
        litres = ml * 1e-3
        liquor = self.liquor
        for name, per_l in self._stream_terms[tag]:  # as liquor.add(stream.per_l, litres)
            setattr(liquor, name, getattr(liquor, name) + litres * per_l)
        self.h2o2_mol += stream.h2o2_mol_l * litres
        self._in_oh += stream.hydroxide_mol_l * litres
        self._in_hso4 += stream.bisulfate_mol_l * litres
        self._in_nh4 += stream.ammonium_mol_l * litres
        t_in = self.params.water_c if stream.temperature_c is None else stream.temperature_c
        self._mix_in(litres, t_in)
        return stream.dilution_j_per_l * litres

    def _mix_in(self, litres: float, t_in: float) -> None:
        # Inflow arrives at its own temperature: mixing is the Σṁ·cp·(T − T_in) term, exactly.
        c_liquor = self._heat_capacity()
        c_in = litres * self._rho * self._cp
        self.temperature_c = (self.temperature_c * c_liquor + t_in * c_in) / (c_liquor + c_in)
        self.volume_l += litres

    def _outflows(self, dt: float) -> None:
        v = self.volume_l
        if self.drain_open and v > 0.0:
            out = min(v, self._drain_l_s * dt)
            self._leave(out, self.drained)
        if self.volume_l > self.params.capacity_l:
            spill = self.volume_l - self.params.capacity_l
            self.overflow_l += spill
            self._leave(spill, self.spilled)

    def _leave(self, litres: float, receiver: Receiver) -> None:
        """`litres` of the (well-mixed) slurry go to `receiver`."""
        v = self.volume_l
        share = litres / v
        gone_liquor = self.liquor.copy()
        gone_liquor.scale(share)
        gone_residue = self.residue.copy()
        gone_residue.scale(share)
        receiver.take(
            volume_l=litres,
            liquor=gone_liquor,
            residue=gone_residue,
            h2o2_mol=self.h2o2_mol * share,
            t_c=self.temperature_c,
        )
        keep = 1.0 - share
        if litres >= v - 1e-12:
            keep = 0.0
        self.liquor.scale(keep)
        self.residue.scale(keep)
        self.h2o2_mol *= keep
        spec = self._spec
        self._spec = Speciation(
            spec.ph,
            spec.hydroxide * keep,
            spec.bisulfate * keep,
            spec.ammonium * keep,
            spec.free_ammonia_mol_l,
            spec.free_sulfate_mol_l,
        )
        self.volume_l = v * keep

    def _heat_capacity(self) -> float:
        mass = self.volume_l * self._rho
        return (
            self._cp * mass
            + self.params.vessel_heat_capacity_j_k
            + SOLIDS_CP_J_KG_K * self.residue.mass_kg()
        )

    def _heat(self, dt: float, q_reaction: float) -> None:
        v = self.volume_l
        t = self.temperature_c
        p = self.params
        if v <= 0.0:
            self.temperature_c = t + (p.ambient_c - t) * dt / EMPTY_VESSEL_TAU_S
            return
        # The element and impeller sit just below LSLL: below it only their covered share acts.
        share = 1.0 if v >= self._lsll_l else v / self._lsll_l
        power = self.heater_power_w * share - p.ua_w_k * (t - p.ambient_c)
        if self.agitator_on:
            power += p.agitator_w * share
        if self.jacket > 0.0:
            power -= self.jacket * self._cool_w_k * (t - p.cooling_water_c)
        gas = p.purge_nl_min if self.purge_on else p.vent_nl_min
        evaporated_kg = evaporation_kg_s(t, gas_nl_min=gas) * dt
        power_j = power * dt - evaporated_kg * latent_heat_j_kg(t) + q_reaction
        capacity = self._heat_capacity()
        mass = v * self._rho
        t += power_j / (capacity if mass > MIN_HEAT_MASS_KG else max(capacity, MIN_HEAT_MASS_KG))
        evaporated_l = min(v, evaporated_kg / self._rho)
        if t > BOILING_C:
            boiled = min(v, (t - BOILING_C) * capacity / latent_heat_j_kg(BOILING_C) / self._rho)
            evaporated_l += boiled
            t = BOILING_C
        self.evaporated_l += evaporated_l
        self.volume_l = max(0.0, v - evaporated_l)
        self.temperature_c = t
        if t > self.max_temperature_c:
            self.max_temperature_c = t

    # --- chemistry -----------------------------------------------------------------------

    def _chemistry(self, dt: float) -> None:
        """Kinetics over `dt`, then the new pH and the heat the acid–base equilibria released."""
        self._since_chemistry = 0.0
        v = self.volume_l
        if v <= 0.0:
            self._solve(reaction_heat=False)
            return
        t_c = self.temperature_c
        p = self.params
        q = 0.0
        if self.residue.oxide_mol > 0.0 or self.residue.al + self.residue.cu + self.residue.fe > 0:
            done = leach(
                self.residue,
                self.liquor,
                dt=dt,
                t_c=t_c,
                acid_mol_l=10.0**-self._ph + self._spec.bisulfate / v,
                h2o2_mol=self.h2o2_mol,
                volume_l=v,
                tau_s=p.leach_tau_s,
            )
            self.h2o2_mol = max(0.0, self.h2o2_mol - done.peroxide_mol)
            q += done.heat_j
        if self.h2o2_mol > 0.0:
            k = arrhenius(t_c, PEROXIDE_EA_J_MOL) / p.peroxide_tau_s
            gone = self.h2o2_mol * (1.0 - math.exp(-k * dt))
            self.h2o2_mol -= gone
            q += gone * PEROXIDE_DECOMPOSITION_J_MOL
        heat, hydroxide = precipitate(
            self.liquor,
            self._spec,
            ph=self._ph,
            dt=dt,
            t_c=t_c,
            volume_l=v,
            tau_s=p.precipitation_tau_s,
            hydroxide_per_metal=p.hydroxide_per_metal,
        )
        q += heat
        self._in_oh -= hydroxide
        free_nh3 = self._spec.free_ammonia_mol_l
        if free_nh3 > 0.0:
            gas = p.purge_nl_min if self.purge_on else p.vent_nl_min
            lost = ammonia_stripping_mol_s(t_c, free_nh3_mol_l=free_nh3, gas_nl_min=gas) * dt
            lost = min(lost, 0.5 * (self.liquor.ammonia - self.liquor.ammonia_bound))
            self.liquor.ammonia -= lost
            self.ammonia_stripped_mol += lost
        self._update_ammine()
        q += self._solve(reaction_heat=True)
        self.reaction_heat_j += q
        capacity = self._heat_capacity()
        self.temperature_c += q / max(capacity, MIN_HEAT_MASS_KG)

    def _update_ammine(self) -> None:
        """NH3 held by the dissolved ammines at the last free NH3 (explicit)."""
        liquor = self.liquor
        bound = bound_ammonia(liquor, self._spec.free_ammonia_mol_l, self.temperature_c)
        liquor.ammonia_bound = min(bound, MAX_BOUND_SHARE * liquor.ammonia)

    def _solve(self, *, reaction_heat: bool = False) -> float:
        """Re-solve the pH; returns the heat (J) the acid–base equilibria released doing so."""
        v = self.volume_l
        if v <= 0.0:
            self._ph = 7.0
            self._spec = Speciation(7.0, 0.0, 0.0, 0.0, 0.0)
            self._in_oh = self._in_hso4 = self._in_nh4 = 0.0
            return 0.0
        self._ph = solve_ph(self.liquor, v, self.temperature_c, self._ph)
        old = self._spec
        new = speciation(self.liquor, volume_l=v, t_c=self.temperature_c, ph=self._ph)
        q = 0.0
        if reaction_heat:
            water = old.hydroxide + self._in_oh - new.hydroxide
            bisulfate = old.bisulfate + self._in_hso4 - new.bisulfate
            ammonium = old.ammonium + self._in_nh4 - new.ammonium
            q = (
                NEUTRALISATION_J_MOL * water
                + BISULFATE_DISSOCIATION_J_MOL * bisulfate
                - DH_AMMONIUM_J_MOL * ammonium
            )
        self._spec = new
        self._in_oh = self._in_hso4 = self._in_nh4 = 0.0
        return q

    # --- for the mass balance ------------------------------------------------------------

    def metal_in_reactor(self, name: str) -> float:
        """Moles of metal `name` in the reactor now: dissolved, precipitated and unleached."""
        return self.liquor.metal_total(name) + self.residue.metal(name)


def _terms(stream: Stream) -> tuple[tuple[str, float], ...]:
    """The species a litre of `stream` carries, by field name (none of the zeros)."""
    return tuple((name, value) for name, value in stream.per_l.as_dict().items() if value)
