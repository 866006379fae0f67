"""Physical parameters of the simulated unit, from the `[sim.plant]` section of the config.

Defaults are realistic mid-range values (DESIGN §8): what a real reactor, probe and pumps do on
an ordinary day, not an easy plant. Pure data with bounds; nothing here simulates anything.
"""

from __future__ import annotations

from hal.schema import BaseModel, Field, model_validator
from hal.wiring import STRICT

# Standard atomic/molar masses (g/mol) of what the black mass brings.
MOLAR_MASS_G = {
    "ni": 58.693,
    "co": 58.933,
    "mn": 54.938,
    "li": 6.94,
    "al": 26.982,
    "cu": 63.546,
    "fe": 55.845,
}


class BlackMass(BaseModel):
    """Composition of the shredded-battery black mass, wt% (DESIGN §1).

    Defaults: a mixed NMC black mass after mechanical pre-treatment (see README, "The plant
    simulator" for the published analyses it sits among). The rest (to 100 %) is oxide oxygen,
    binder, fluoride and moisture, which leaves no metal in solution.
    """

    model_config = STRICT

    ni_pct: float = Field(default=17.5, ge=0, le=60)
    co_pct: float = Field(default=6.5, ge=0, le=60)
    mn_pct: float = Field(default=6.0, ge=0, le=60)
    li_pct: float = Field(default=3.4, ge=0, le=10)
    al_pct: float = Field(default=1.4, ge=0, le=15, description="metallic, from the foil")
    cu_pct: float = Field(default=0.9, ge=0, le=15, description="metallic, from the foil")
    fe_pct: float = Field(default=0.3, ge=0, le=10, description="metallic, from the casings")
    graphite_pct: float = Field(default=34.0, ge=0, le=80, description="anode carbon, inert")
    refractory_pct: float = Field(
        default=2.0,
        ge=0,
        le=50,
        description="share of the Ni/Co/Mn/Li oxide too coarse or sintered to leach (%)",
    )

    @model_validator(mode="after")
    def _fits_in_100_pct(self) -> BlackMass:
        total = (
            self.ni_pct
            + self.co_pct
            + self.mn_pct
            + self.li_pct
            + self.al_pct
            + self.cu_pct
            + self.fe_pct
            + self.graphite_pct
        )
        if total > 100.0:
            raise ValueError(f"the wt% add up to {total:g}, more than 100")
        return self

    def mol_per_kg(self) -> dict[str, float]:
        """Moles of each metal in one kg of black mass."""
        return {
            name: getattr(self, f"{name}_pct") * 10.0 / molar
            for name, molar in MOLAR_MASS_G.items()
        }


class PlantParams(BaseModel):
    """Reactor, chemistry, heat balance and instrument parameters (DESIGN §8)."""

    model_config = STRICT

    # --- vessel and liquid --------------------------------------------------------------
    capacity_l: float = Field(
        default=120.0, gt=0, le=2000, description="brim volume: above is overflow"
    )
    density_kg_l: float = Field(default=1.1, gt=0.5, le=2.0)
    cp_j_kg_k: float = Field(default=3800.0, gt=1000, le=5000)
    vessel_heat_capacity_j_k: float = Field(
        default=30_000.0, ge=0, le=1e6, description="steel shell, jacket and internals"
    )
    ambient_c: float = Field(default=20.0, ge=-20, le=50)
    water_c: float = Field(
        default=15.0, ge=0, le=50, description="temperature of fill water and reagents"
    )
    ua_w_k: float = Field(default=12.0, ge=0, le=200, description="heat loss coefficient")
    heater_efficiency: float = Field(default=1.0, gt=0, le=1)
    heater_tau_s: float = Field(default=120.0, ge=0, le=600, description="element lag")
    agitator_w: float = Field(
        default=200.0,
        ge=0,
        le=5000,
        description="shaft power the agitator turns into heat (a pitched blade at 1000 rpm)",
    )
    purge_nl_min: float = Field(
        default=10.0,
        ge=0,
        le=500,
        description="N2 through the headspace with XV-102 open; it leaves saturated with water "
        "vapour and carries ammonia",
    )
    vent_nl_min: float = Field(
        default=1.0, ge=0, le=100, description="air breathing through the vent, purge closed"
    )
    cooling_water_c: float = Field(default=15.0, ge=0, le=40, description="jacket cooling water")
    cooling_tau_s: float = Field(
        default=30.0, ge=0, le=600, description="jacket fill/drain lag after XV-103 moves"
    )

    # --- temperature probe (EZO-RTD in a thermowell) -------------------------------------
    rtd_tau_s: float = Field(default=20.0, ge=0, le=120)
    rtd_noise_c: float = Field(default=0.02, ge=0, le=2)

    # --- pH measurement (glass electrode and EZO-pH) -------------------------------------
    ph_tau_s: float = Field(default=12.0, ge=0, le=120, description="electrode response lag, clean")
    ph_fouling_s_per_h: float = Field(
        default=4.0,
        ge=0,
        le=120,
        description="lag the electrode gains per hour in a slurry of precipitate",
    )
    ph_dead_time_s: float = Field(
        default=1.0, ge=0, le=60, description="the probe's own delay (reading cycle)"
    )
    ph_noise: float = Field(default=0.015, ge=0, le=0.5, description="σ of the reading, pH")
    ph_spikes_per_h: float = Field(
        default=6.0, ge=0, le=3600, description="bubbles and switching spikes on the reading"
    )
    ph_spike_size: float = Field(default=0.15, ge=0, le=5, description="mean spike, pH")
    ph_offset: float = Field(
        default=0.01,
        ge=-1,
        le=1,
        description="residual calibration offset, pH at 25 °C (a mV offset: it grows "
        "wrong with temperature like the real one)",
    )
    ph_drift_per_h: float = Field(default=0.002, ge=-1, le=1, description="slow drift, pH/h")

    # --- process dead time and pumps -----------------------------------------------------
    mixing_dead_time_s: float = Field(
        default=10.0,
        ge=0,
        le=120,
        description="dosing-line transport and mixing: from a pump to the bulk the probe sees "
        "(four times as long with the agitator off)",
    )
    pump_error: float = Field(
        default=0.03,
        ge=0,
        le=0.5,
        description="each pump delivers within ±this fraction of what it counts (drawn per "
        "pump from the seed)",
    )

    # --- chemistry -----------------------------------------------------------------------
    feed_scale: float = Field(
        default=1.0,
        ge=0.1,
        le=10,
        description="metal-feed rate as a multiple of the recipe's (same metal: the feeding "
        "phase is shortened by the same factor)",
    )
    hydroxide_per_metal: float = Field(
        default=2.0,
        ge=1.5,
        le=2.5,
        description="OH⁻ a mol of Ni/Co/Mn takes into the precipitate (< 2: basic sulfate; "
        "> 2: side reactions the recipe does not know of)",
    )
    feed_acid_per_metal: float = Field(
        default=0.01, ge=0, le=0.5, description="free H2SO4 per mol metal in the sulfate feed"
    )
    precipitation_tau_s: float = Field(
        default=30.0, ge=0.5, le=3600, description="time constant of hydroxide precipitation"
    )
    leach_tau_s: float = Field(
        default=600.0, ge=10, le=36_000, description="oxide dissolution at 75 °C in acid"
    )
    peroxide_tau_s: float = Field(
        default=600.0, ge=10, le=36_000, description="H2O2 decomposition at 75 °C"
    )
    black_mass: BlackMass = BlackMass()

    # --- the reactor at power-up (a recipe's `starts_with` preloads it in the simulator) ---
    initial_volume_l: float = Field(default=0.0, ge=0)
    initial_temperature_c: float = Field(default=20.0, ge=0, le=100)


def plant_figures(params: PlantParams) -> dict[str, float]:
    """Every plant parameter as one flat mapping of number by config name (black mass too)."""
    flat: dict[str, float] = {}
    for name, value in params.model_dump().items():
        if isinstance(value, dict):
            for sub, number in value.items():
                flat[f"{name}.{sub}"] = float(number)
        else:
            flat[name] = float(value)
    return flat
