"""The unit's configuration (TOML, validated once at start-up with bounds).

A wrong value stops start-up with its TOML location and the allowed range; never later.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from hal.schema import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from hal.sim.envelope import with_plant_values
from hal.wiring import (
    OWN_LOCATION,
    TAG_PATTERN,
    BoardWiring,
    DeviceWiring,
    LevelPoint,
    relay_board_problems,
    serial_port_problems,
    wiring_problems,
)
from unit_controller.config_sections import (
    MAX_LIQUOR_HEAT_CAPACITY_J_L_K,
    CalibrationSection,
    ClockSection,
    ConsoleSection,
    ControlTuning,
    HalSection,
    HeaterTuning,
    InterlockLimits,
    JournalSection,
    PhTuning,
    SafeStateSection,
    Section,
    SimSection,
    UnitSection,
    VerifyHeaterLimits,
)
from unit_controller.errors import ConfigError
from unit_controller.mqtt.metric_names import pump_key_clashes
from unit_controller.mqtt.settings import MqttSettings
from unit_controller.shipped import EXAMPLE_CONFIG
from unit_controller.tomlfile import read_toml, validation_problems

DEFAULT_CONFIG = EXAMPLE_CONFIG


class UnitConfig(Section):
    """The whole config file."""

    unit: UnitSection
    hal: HalSection = HalSection()
    devices: dict[Annotated[str, Field(pattern=TAG_PATTERN)], DeviceWiring]
    interlocks: InterlockLimits = InterlockLimits()
    control: ControlTuning = ControlTuning()
    sim: SimSection = SimSection()
    mqtt: MqttSettings = MqttSettings()
    console: ConsoleSection = ConsoleSection()
    calibration: CalibrationSection = CalibrationSection()
    journal: JournalSection = JournalSection()
    safe_state: SafeStateSection = SafeStateSection()
    clock: ClockSection = ClockSection()

    _wiring: BoardWiring | None = PrivateAttr(default=None)

    # Cross-checks are field validators so that each problem carries its TOML location
    # (`devices`, `interlocks`) and is reported alongside the problems of other sections.
    @field_validator("devices")
    @classmethod
    def _one_unit(
        cls, devices: dict[str, DeviceWiring], info: ValidationInfo
    ) -> dict[str, DeviceWiring]:
        # Every backend: the wiring is the unit's, and a mock config becomes a serial one under
        # `sim --backend serial`, `emulate` and on the unit itself.
        problems = wiring_problems(devices) + relay_board_problems(devices)
        problems += pump_key_clashes(t for t, d in devices.items() if d.kind == "dosing_pump")
        hal = info.data.get("hal")
        if isinstance(hal, HalSection) and hal.backend == "serial":
            problems += serial_port_problems(devices, hal.serial)
        elif isinstance(hal, HalSection) and "backend" not in hal.model_fields_set:
            ported = sorted(tag for tag, device in devices.items() if device.port)
            if ported or hal.serial.relay_board_port:
                # A real unit's config that lost its [hal] would run the simulator quietly: its
                # fleet would see simulated readings while nobody reads the E-stop.
                problems.append(
                    f"{OWN_LOCATION}hal.backend: not set, so the simulator ('mock') runs, but "
                    f"the config names serial ports ({', '.join(ported) or 'the relay board'}): "
                    "set backend = 'serial' for a real unit, or 'mock' to simulate it"
                )
        if problems:
            # One problem a line: check-config lists each on its own (see tomlfile).
            raise ValueError("\n".join(problems))
        return devices

    @field_validator("mqtt")
    @classmethod
    def _sparkplug_group(cls, mqtt: MqttSettings, info: ValidationInfo) -> MqttSettings:
        unit = info.data.get("unit")
        if mqtt.payload != "sparkplug" or mqtt.sparkplug_group or unit is None:
            return mqtt
        if not re.fullmatch(r"[^/+#]+", unit.site):
            raise ValueError(
                "payload = 'sparkplug' needs a group id: set [mqtt] sparkplug_group, or a "
                f"[unit] site without '/', '+', '#' (it is {unit.site!r})"
            )
        return mqtt

    @field_validator("interlocks")
    @classmethod
    def _caps_name_pumps(cls, interlocks: InterlockLimits, info: ValidationInfo) -> InterlockLimits:
        devices = info.data.get("devices")
        if devices is None:  # the devices are wrong already; that problem is reported
            return interlocks
        wiring = BoardWiring(devices=devices)
        pumps = wiring.pumps()
        problems = []
        unknown = sorted(set(interlocks.reagent_cap_ml) - set(pumps))
        if unknown:
            problems.append(
                f"reagent_cap_ml names pumps the unit lacks: {unknown} "
                f"(pumps: {', '.join(sorted(pumps)) or 'none'})"
            )
        problems += _limits_beyond_instruments(interlocks, wiring)
        if problems:
            raise ValueError("\n".join(problems))
        return interlocks

    @property
    def wiring(self) -> BoardWiring:
        """The device wiring with roles resolved (built once)."""
        if self._wiring is None:
            self._wiring = BoardWiring(devices=self.devices)
        return self._wiring

    @property
    def clock_sync_required(self) -> bool:
        """Whether an unsynchronised clock raises an alarm on this unit."""
        if self.clock.require_sync is None:
            return self.hal.backend == "serial"
        return self.clock.require_sync

    def reagent_cap_ml(self, tag: str) -> float:
        """Most mL one phase may dose through pump `tag`."""
        return self.interlocks.reagent_cap_ml.get(tag, self.interlocks.default_reagent_cap_ml)


def with_overrides(
    config: UnitConfig,
    *,
    unit_id: str | None = None,
    mqtt_url: str | None = None,
    state_dir: Path | None = None,
) -> UnitConfig:
    """The config with command-line settings in place, validated like the file (ConfigError)."""
    document = config.model_dump(exclude_unset=True)
    unit = document.setdefault("unit", {})
    if unit_id is not None:
        unit["id"] = unit_id
    if state_dir is not None:
        unit["state_dir"] = state_dir
    if mqtt_url is not None:
        document.setdefault("mqtt", {})["url"] = mqtt_url
    try:
        return UnitConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError("command line", validation_problems(exc)) from None


def with_plant(config: UnitConfig, values: dict[str, float]) -> UnitConfig:
    """The config with these plant parameters (flat config names) in place; ConfigError names
    each unknown parameter or out-of-bounds value."""
    if not values:
        return config
    try:
        plant = with_plant_values(config.sim.plant, values)
    except ValueError as exc:
        raise ConfigError("--plant", [f"sim.plant.{p}" for p in str(exc).split("; ")]) from None
    return config.model_copy(update={"sim": config.sim.model_copy(update={"plant": plant})})


def with_baseline_control(config: UnitConfig) -> UnitConfig:
    """The config with plain on/off control of temperature and pH: the baseline to beat."""
    control = config.control
    return config.model_copy(
        update={
            "control": control.model_copy(
                update={
                    "heater": control.heater.model_copy(update={"mode": "on_off"}),
                    "ph": control.ph.model_copy(update={"mode": "on_off"}),
                }
            )
        }
    )


def _limits_beyond_instruments(limits: InterlockLimits, wiring: BoardWiring) -> list[str]:
    """Limits the unit's own instruments could never show reached."""
    problems = []
    rtd, probe = wiring.rtd(), wiring.ph_probe()
    if rtd.max_c <= limits.temperature_high_high_c:
        # Above its range a reading is bad, not a number: the high-high abort would never come.
        problems.append(
            f"temperature_high_high_c ({limits.temperature_high_high_c:g}) must be below the "
            f"range of {wiring.rtd_tag} (max_c {rtd.max_c:g})"
        )
    if not probe.min_ph < limits.min_ph_setpoint <= limits.max_ph_setpoint < probe.max_ph:
        problems.append(
            f"pH setpoints {limits.min_ph_setpoint:g}..{limits.max_ph_setpoint:g} must lie "
            f"inside the range of {wiring.ph_tag} ({probe.min_ph:g}..{probe.max_ph:g})"
        )
    # A welded SSR heats the fullest reactor at full power: the rise it must show within the
    # window has to be one the heater can make, or the check never trips.
    full_l = wiring.level_switch(LevelPoint.HIGH_HIGH).at_l
    reachable_c = (
        wiring.heater().power_w
        * limits.heater_off_window_s
        / (full_l * MAX_LIQUOR_HEAT_CAPACITY_J_L_K)
    )
    if limits.heater_off_rise_c > reachable_c:
        problems.append(
            f"heater_off_rise_c ({limits.heater_off_rise_c:g} °C) within heater_off_window_s "
            f"({limits.heater_off_window_s:g} s) is more than {wiring.heater_tag} "
            f"({wiring.heater().power_w:g} W) can raise {full_l:g} L at "
            f"{wiring.level_tag(LevelPoint.HIGH_HIGH)} (at most {reachable_c:.2g} °C): a welded "
            "SSR would never trip it; lengthen the window or lower the rise"
        )
    return problems


def state_directory(config: UnitConfig) -> Path:
    """Where this unit keeps its outbox and journal (see `UnitSection.state_dir`)."""
    if config.unit.state_dir is not None:
        return config.unit.state_dir
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        # systemd may list several directories separated by ':'; ours is the first.
        return Path(systemd.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "unit-controller" / config.unit.id


def resolve_state_dir(config: UnitConfig, flag: Path | None = None) -> Path:
    """The state directory as the daemon resolves it: `--state-dir`, else systemd's
    $STATE_DIRECTORY, else the config's, else $XDG_STATE_HOME/unit-controller/<unit>."""
    if flag is not None:
        return flag
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])
    return state_directory(config)


def load_config(path: Path | None = None) -> UnitConfig:
    """Read and validate a config file (the simulator example when `path` is None)."""
    path = path or DEFAULT_CONFIG
    document, problems = read_toml(path)
    if document is None:
        raise ConfigError(str(path), problems)
    try:
        return UnitConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(str(path), validation_problems(exc)) from None


__all__ = [
    "DEFAULT_CONFIG",
    "CalibrationSection",
    "ClockSection",
    "ConsoleSection",
    "ControlTuning",
    "HalSection",
    "HeaterTuning",
    "InterlockLimits",
    "JournalSection",
    "PhTuning",
    "SafeStateSection",
    "Section",
    "SimSection",
    "UnitConfig",
    "UnitSection",
    "VerifyHeaterLimits",
    "load_config",
    "resolve_state_dir",
    "state_directory",
    "with_baseline_control",
    "with_overrides",
    "with_plant",
]
