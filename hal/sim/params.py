"""Physical parameters of the simulated unit, from the `[sim]` section of the config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PlantParams(BaseModel):
    """Reactor, heat balance and sensor-model parameters (DESIGN §8)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # vessel and liquid
    capacity_l: float = Field(
        default=120.0, gt=0, le=2000, description="brim volume: above is overflow"
    )
    density_kg_l: float = Field(default=1.1, gt=0.5, le=2.0)
    cp_j_kg_k: float = Field(default=3800.0, gt=1000, le=5000)
    ambient_c: float = Field(default=20.0, ge=-20, le=50)
    water_c: float = Field(
        default=15.0, ge=0, le=50, description="temperature of fill water and reagents"
    )
    ua_w_k: float = Field(default=12.0, ge=0, le=200, description="heat loss coefficient")
    heater_efficiency: float = Field(default=1.0, gt=0, le=1)
    heater_tau_s: float = Field(default=120.0, ge=0, le=600, description="element lag")
    # temperature probe (EZO-RTD in a thermowell)
    rtd_tau_s: float = Field(default=20.0, ge=0, le=120)
    rtd_noise_c: float = Field(default=0.02, ge=0, le=2)
    # pH probe (glass electrode)
    ph_tau_s: float = Field(default=8.0, ge=0, le=60)
    ph_dead_time_s: float = Field(
        default=8.0, ge=0, le=60, description="mixing dead time, agitated"
    )
    ph_noise: float = Field(default=0.004, ge=0, le=0.5)
    # the reactor at power-up (the recipe's `starts_with` may preload it in the simulator)
    initial_volume_l: float = Field(default=0.0, ge=0)
    initial_temperature_c: float = Field(default=20.0, ge=0, le=100)
