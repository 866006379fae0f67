"""The sections of the unit's configuration, each with its bounds: a wrong value names its TOML
location and the allowed range. `config.py` puts them together into `UnitConfig`."""

from __future__ import annotations

import grp
from pathlib import Path
from typing import Annotated, Literal

from hal.schema import (
    BaseModel,
    Field,
    Strict,
    StrictFloat,
    field_validator,
    model_validator,
)
from hal.sim.envelope import DEFAULT_RANGES, range_problems
from hal.sim.params import PlantParams
from hal.wiring import (
    STRICT,
    SerialSettings,
)
from unit_controller.mqtt.address import UNIT_ID_PATTERN

# mL one phase may dose through one pump: as the default's bounds.
_Cap = Annotated[float, Field(gt=0, le=200_000)]
# `[low, high]`: a TOML array read as a pair, its numbers strict.
_Range = Annotated[tuple[StrictFloat, StrictFloat], Strict(False)]


def absolute(path: Path) -> Path:
    """`path` when absolute; a relative one (or "", which reads as ".") depends on where the
    process happens to start, under systemd "/"."""
    if not path.is_absolute():
        raise ValueError("must be an absolute path")  # the refusal shows what was given
    return path


class Section(BaseModel):
    model_config = STRICT


class UnitSection(Section):
    """Identity and scan timing."""

    id: str = Field(pattern=UNIT_ID_PATTERN)
    site: str = Field(default="", max_length=64)
    scan_period_s: float = Field(default=0.1, ge=0.02, le=1.0)
    stall_alarm_s: float = Field(
        default=5.0,
        ge=0.5,
        le=600,
        description="the scan loop stopped this long (real seconds: the process was stopped, "
        "the host froze) raises scan_stall once it runs again",
    )
    overrun_alarm_s: float = Field(
        default=1.0,
        ge=0.05,
        le=60,
        description="a scan that takes this long (real seconds) raises scan_overrun",
    )
    state_dir: Path | None = Field(
        default=None,
        strict=False,
        description="where the outbox and journal live; unset = $STATE_DIRECTORY (systemd) "
        "or ~/.local/state/unit-controller/<id>",
    )

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, state_dir: Path | None) -> Path | None:
        return None if state_dir is None else absolute(state_dir)


class HalSection(Section):
    """Which backend drives the devices."""

    backend: Literal["mock", "serial"] = "mock"
    serial: SerialSettings = SerialSettings()


# The most heat a litre of liquor can take per kelvin (J/L/K): water's 4.19 kJ/kg/K on a liquor
# up to 1.15 kg/L. A check of the heater's rise must expect no more than a full reactor of it.
MAX_LIQUOR_HEAT_CAPACITY_J_L_K = 4800.0


class VerifyHeaterLimits(Section):
    """Klipper-style verify_heater: is the heater heating when told to?"""

    hysteresis_c: float = Field(default=5.0, gt=0, le=30)
    heating_gain_c: float = Field(default=2.0, gt=0, le=30)
    check_gain_time_s: float = Field(default=900.0, ge=60, le=7200)
    max_error_c_s: float = Field(default=3000.0, gt=0, le=100_000)
    min_duty: float = Field(
        default=0.5, gt=0, le=1, description="average duty below which the heater is not judged"
    )
    min_heat_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description=(
            "a gain counts only if it is at least this share of the rise the heater's power_w "
            "gives the fullest reactor (high-high) while driven: the agitator's own heat and a "
            "cold fill warming up are not a heater (0: the gain alone counts, as in Klipper)"
        ),
    )


class InterlockLimits(Section):
    """Limits of the interlocks (DESIGN §5); config may tighten them."""

    temperature_high_high_c: float = Field(default=90.0, ge=30, le=95)
    max_temperature_setpoint_c: float = Field(default=85.0, ge=20, le=95)
    min_ph_setpoint: float = Field(default=0.0, ge=-1, le=14)
    max_ph_setpoint: float = Field(default=13.0, ge=0, le=14)
    verify_heater: VerifyHeaterLimits = VerifyHeaterLimits()
    heater_off_rise_c: float = Field(
        default=3.0, gt=0, le=20, description="rise with the heater off that means a welded SSR"
    )
    heater_off_window_s: float = Field(default=600.0, ge=30, le=3600)
    ph_not_responding_ml: float = Field(
        default=500.0, gt=0, le=10_000, description="mL dosed with no pH response before a trip"
    )
    ph_response: float = Field(default=0.05, gt=0, le=2)
    reagent_cap_ml: dict[str, _Cap] = Field(
        default_factory=dict, description="per pump tag: most mL one phase may dose"
    )
    default_reagent_cap_ml: float = Field(default=20_000.0, gt=0, le=200_000)
    heater_off_settle_s: float = Field(
        default=360.0,
        ge=0,
        # An element's lag is minutes: a longer wait leaves a welded SSR to the high-high trip.
        le=1200,
        description="heater off this long (≈3× element lag) before a rise means a welded SSR",
    )
    ph_response_tolerance: float = Field(
        default=0.1,
        gt=0,
        le=2,
        description="pH this far short of the setpoint counts dosing toward 'not responding'",
    )
    discrete_stale_s: float = Field(
        default=3.0, gt=0, le=60, description="level switches and E-stop: oldest usable input"
    )
    pump_stale_s: float = Field(
        default=10.0, gt=0, le=120, description="dosing pump silent this long is lost"
    )
    peroxide_release_s: float = Field(
        default=600.0,
        ge=1,
        le=7200,
        description="time constant of H2O2 decomposition heat, which the weld check subtracts",
    )
    cooling_check_s: float = Field(
        default=600.0,
        ge=60,
        le=7200,
        description="jacket cooling open this long with the batch still hot means no cooling",
    )
    cooling_drop_c: float = Field(default=1.0, gt=0, le=20)
    cooling_above_c: float = Field(
        default=2.0, gt=0, le=30, description="above the setpoint by this much is 'still hot'"
    )
    flatline_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="a probe reading unchanged this long is frozen (0 = off)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> InterlockLimits:
        if self.max_temperature_setpoint_c >= self.temperature_high_high_c:
            raise ValueError(
                f"max_temperature_setpoint_c ({self.max_temperature_setpoint_c}) must be below "
                f"temperature_high_high_c ({self.temperature_high_high_c})"
            )
        if self.min_ph_setpoint >= self.max_ph_setpoint:
            raise ValueError("min_ph_setpoint must be below max_ph_setpoint")
        return self


class HeaterTuning(Section):
    """Temperature loop: heater PID, time proportioning, jacket cooling and exothermic dosing."""

    mode: Literal["pid", "on_off"] = Field(
        default="pid", description="on_off: a plain thermostat, the baseline PID is judged against"
    )
    kp: float = Field(default=1.5, ge=0, le=100, description="duty per °C")
    ki: float = Field(default=0.006, ge=0, le=10, description="duty per °C·s")
    kd: float = Field(default=200.0, ge=0, le=10_000, description="duty·s per °C")
    d_filter_s: float = Field(
        default=60.0, ge=0, le=600, description="time constant of the derivative's low-pass filter"
    )
    cycle_s: float = Field(default=4.0, ge=1, le=60)
    min_pulse_s: float = Field(default=0.2, ge=0, le=5)
    max_duty: float = Field(default=1.0, gt=0, le=1)
    on_off_band_c: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="on_off: heater on below sp − band, off above sp + band",
    )
    cooling_cycle_s: float = Field(
        default=20.0, ge=2, le=600, description="time-proportioning cycle of the cooling valve"
    )
    cooling_min_pulse_s: float = Field(default=2.0, ge=0, le=60)
    cooling_water_c: float = Field(
        default=15.0, ge=0, le=40, description="expected cooling-water temperature (capacity)"
    )
    exotherm_feed_forward: bool = Field(
        default=True,
        description="take the heat dosed reagents release off the heater before the probe sees it",
    )
    exotherm_share: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="share of the heat the unit loses (and the jacket can take) that exothermic "
        "doses may release; the heater keeps the rest to control with",
    )

    @model_validator(mode="after")
    def _pulse_fits_cycle(self) -> HeaterTuning:
        if self.min_pulse_s >= self.cycle_s / 2:
            raise ValueError(
                f"min_pulse_s ({self.min_pulse_s}) must be below half of cycle_s ({self.cycle_s})"
            )
        if self.cooling_min_pulse_s >= self.cooling_cycle_s / 2:
            raise ValueError(
                f"cooling_min_pulse_s ({self.cooling_min_pulse_s}) must be below half of "
                f"cooling_cycle_s ({self.cooling_cycle_s})"
            )
        return self


class PhTuning(Section):
    """pH dosing: filtered measurement, gain- and dead-time-aware doses, PI with feed-forward."""

    mode: Literal["dosing", "on_off"] = Field(
        default="dosing",
        description="on_off: reagent on below sp − band, off above sp + band on the raw reading "
        "(the baseline the dosing controller is judged against)",
    )
    kp_ml: float = Field(
        default=50.0,
        gt=0,  # the loop divides by it: a liquor no dose moves cannot be dosed to a setpoint
        le=10_000,
        description="mL per pH unit: the first guess of the process gain until the loop has "
        "learned it from its own doses",
    )
    ki_ml: float = Field(
        default=5.0,
        ge=0,
        le=1000,
        description="0 turns the regulating integral off (a phase with no load to learn); any "
        "other value turns it on, sized from the learned gain and response time",
    )
    interval_s: float = Field(default=20.0, ge=1, le=600)
    min_dose_ml: float = Field(default=0.1, ge=0, le=100)
    max_dose_ml: float = Field(default=50.0, gt=0, le=2000)
    deadband: float = Field(default=0.0, ge=0, le=0.5)
    delivery_fraction: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="share of each interval the dose is spread over; the rest is left for mixing",
    )
    feed_forward: bool = True
    feed_forward_lag_s: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="the feed takes up hydroxide as it precipitates: lag the feed-forward alike",
    )
    filter_s: float = Field(
        default=8.0, ge=0, le=120, description="time constant of the measured pH's average"
    )
    spike_limit: float = Field(
        default=0.08,
        ge=0.005,
        le=2,
        description="a sample this far from its neighbours' median "
        "(and beyond five σ) is a spike and is replaced",
    )
    response_s: float = Field(
        default=45.0,
        ge=2,
        le=1800,
        description="first guess of dead time plus lag, from a dose to 63 % of its effect on the "
        "filtered reading; learned from the loop's own doses",
    )
    approach_fraction: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="share of the remaining error each approach dose aims at: an approach "
        "lands short and never crosses the setpoint on a good gain estimate",
    )
    closed_loop_responses: float = Field(
        default=0.5,
        gt=0,
        le=20,
        description="how many response times the regulating loop takes to correct an error "
        "(SIMC for an integrating process with delay): larger is calmer",
    )
    on_off_band: float = Field(default=0.02, gt=0, le=1, description="on_off: hysteresis, pH")
    on_off_ml_min: float = Field(
        default=10.0,
        gt=0,
        le=105,
        description="on_off: pump rate when on (at least twice the feed's neutralising rate)",
    )

    @model_validator(mode="after")
    def _doses_ordered(self) -> PhTuning:
        if self.min_dose_ml > self.max_dose_ml:
            raise ValueError(
                f"min_dose_ml ({self.min_dose_ml:g}) must not be above max_dose_ml "
                f"({self.max_dose_ml:g})"
            )
        return self


class ControlTuning(Section):
    """All control tuning."""

    heater: HeaterTuning = HeaterTuning()
    ph: PhTuning = PhTuning()


class SimSection(Section):
    """Simulator settings (mock backend only)."""

    seed: int = Field(default=1, ge=0)
    speed: float | None = Field(
        default=None, ge=0.01, le=10_000, description="times real time; unset = as fast as possible"
    )
    plant: PlantParams = PlantParams()
    envelope: dict[str, _Range] = Field(
        default_factory=dict,
        description="the design envelope: `name = [low, high]` per plant parameter, on top of "
        "the defaults (a parameter held fixed: low = high)",
    )

    @field_validator("envelope")
    @classmethod
    def _envelope_is_plants(
        cls, envelope: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        problems = range_problems(envelope)
        if problems:
            raise ValueError("\n".join(problems))
        return envelope

    def envelope_ranges(self) -> dict[str, tuple[float, float]]:
        """The envelope the runner draws from: the defaults with this config's ranges on top."""
        return {**DEFAULT_RANGES, **self.envelope}


class ConsoleSection(Section):
    """The control socket and the field-tech console."""

    group: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
        description="group that may use the control socket (mode 0660); unset = the daemon's",
    )
    users: tuple[str, ...] = Field(
        default=(),
        strict=False,  # a TOML array; its items stay strict strings
        description="login names that may act as the field-tech console (manual, jog, "
        "calibration, confirm); empty = anyone who can reach the socket",
    )
    pin_hash: str | None = Field(
        default=None,
        pattern=r"^pbkdf2_sha256\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$",
        description="PIN for manual mode and calibration, from `unit-controller hash-pin`",
    )
    pin_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="wrong PINs in a row (from every session together) that lock the PIN out",
    )
    pin_lockout_s: float = Field(
        default=300.0,
        ge=1.0,
        le=86400.0,
        description="how long the PIN stays locked out (s); an alarm says so meanwhile",
    )
    socket_max_connections: int = Field(
        default=16, ge=1, le=1024, description="control-socket sessions at once; more are refused"
    )
    socket_idle_timeout_s: float = Field(
        default=1800.0,
        ge=10.0,
        le=86400.0,
        description="a control-socket session that sends nothing (and watches nothing) this "
        "long is closed",
    )

    @field_validator("group")
    @classmethod
    def _group_exists(cls, group: str | None) -> str | None:
        # Checked where the daemon runs (check-config before a restart): chown would fail.
        if group is not None:
            try:
                grp.getgrnam(group)
            except KeyError:
                raise ValueError(f"no such group on this machine: {group!r}") from None
        return group

    @property
    def pin_required(self) -> bool:
        """True when manual mode and calibration need the PIN."""
        return self.pin_hash is not None


class CalibrationSection(Section):
    """When instruments are due for calibration."""

    ph_due_days: float = Field(
        default=7.0, gt=0, le=365, description="pH probe: days between calibrations"
    )


class SafeStateSection(Section):
    """Where outputs go when they are forced safe (a trip, a stop, an abort, the E-stop).

    Heater, pumps, agitator and fill are off and the drain closed, always; the cooling valve
    opens on temperature high-high. Only the N2 purge has a choice (DESIGN §5).
    """

    purge: Literal["open_while_charged", "closed"] = Field(
        default="open_while_charged",
        description="open_while_charged: the purge stays open after a phase that blanketed the "
        "reactor or a dose of acid or peroxide, until the low-low and low switches both read "
        "dry and the drain has then been open heel_drain_s, and across a restart",
    )
    heel_drain_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="how long the drain, open, takes to empty what lies below the low-low "
        "switch (its at_l at the drain's flow), with a margin: until then the reactor may "
        "still hold acid",
    )


class JournalSection(Section):
    """How long the daemon's journal keeps what it records."""

    keep_days: float = Field(
        default=90.0, ge=1, le=3650, description="events and commands: days kept"
    )
    keep_batches_days: float = Field(
        default=730.0,
        ge=1,
        le=36500,
        description="batch records and calibrations: days kept (the newest calibration of "
        "each probe stays whatever its age)",
    )

    @model_validator(mode="after")
    def _batches_outlive_events(self) -> JournalSection:
        if self.keep_batches_days < self.keep_days:
            raise ValueError(
                f"keep_batches_days ({self.keep_batches_days:g}) must be at least keep_days "
                f"({self.keep_days:g}): a batch record outlives the events around it"
            )
        return self


class ClockSection(Section):
    """Whether the system clock is synchronised: remote commands are checked against it."""

    synchronized_flag: Path = Field(
        default=Path("/run/systemd/timesync/synchronized"),
        strict=False,
        description="a file that exists while the clock is synchronised (systemd-timesyncd's)",
    )
    require_sync: bool | None = Field(
        default=None,
        description="raise clock_not_synchronized while it is not; unset = on the serial "
        "backend (a real unit), not on the simulator",
    )
    check_every_s: float = Field(
        default=10.0, ge=0.1, le=3600, description="how often the flag is looked at"
    )

    @field_validator("synchronized_flag")
    @classmethod
    def _absolute(cls, flag: Path) -> Path:
        return absolute(flag)
