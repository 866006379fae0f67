"""A test-side validator of Home Assistant MQTT discovery configs for `sensor` and `binary_sensor`.

`validate(platform, payload)` returns every problem it finds in one retained discovery payload
(the JSON object published to ``homeassistant/<platform>/<node_id>/<object_id>/config``), or ``[]``.
It mirrors what Home Assistant itself does with such a payload, and is deliberately stricter in a
few places where HA would quietly repair or drop something: we want our payloads clean, not merely
accepted. Every such place says so in its message and in a comment here.

Derived from Home Assistant core's source, 2026 ``dev``-branch code (HA Core 2026.x). The
upstream repository's own stored copies of these files were years old, so the newest copies found
were taken from forks that mirror HA's ``dev`` branch (repository @ commit):

- ``homeassistant/components/mqtt/sensor.py`` and ``binary_sensor.py`` and ``entity.py``:
  zhangMonday03/core @ d501c87b3a4cebd5d2dd2981343d80927a2887d4 (2026 dev: ``default_entity_id``,
  no ``object_id``, ``DISCOVERY_SCHEMA = ...extend({}, extra=vol.REMOVE_EXTRA)``,
  ``validate_sensor_state_and_device_class_config`` raising on unit/device-class mismatch).
- ``homeassistant/components/mqtt/schemas.py``: M2D-sOxOs/home-assistant-core @ 484df5c6 (the
  ``MQTT_ENTITY_COMMON_SCHEMA``, device and origin schemas); ``visible_by_default`` from the newer
  entity.py above and the 2026 schemas.py of cdce8p/ha-core.
- ``homeassistant/components/mqtt/config.py`` (``MQTT_RO_SCHEMA``) and ``util.py``
  (``valid_topic``/``valid_subscribe_topic``): home-assistant/core @ a5c82092 and @ 980317b0;
  ``discovery.py`` (abbreviation expansion, ``~`` topic base, origin check): cdce8p/ha-core @
  90d26a1e.
- ``homeassistant/components/mqtt/const.py``: esaueng/factory-assistant-core @ ee0f8606.
- ``homeassistant/components/sensor/const.py`` (``SensorDeviceClass``, ``SensorStateClass``,
  ``DEVICE_CLASS_UNITS``, ``STATE_CLASS_UNITS``, ``AMBIGUOUS_UNITS``): cdce8p/ha-core @ 5dcb0873;
  unit strings of the ``UnitOf*`` enums from ``homeassistant/const.py`` as mirrored by zha-quirks.
- ``homeassistant/components/binary_sensor/__init__.py`` (``BinarySensorDeviceClass``, and its
  refusal of entity_category ``config``): esaueng/factory-assistant-core @ 133a1519.
- ``homeassistant/helpers/config_validation.py`` (``cv.string``, ``cv.boolean``,
  ``cv.positive_int``, ``cv.icon``, ``cv.url``, ``cv.configuration_url``, ``cv.template``).

Docs: https://www.home-assistant.io/integrations/sensor.mqtt/ ,
https://www.home-assistant.io/integrations/binary_sensor.mqtt/ ,
https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery (abbreviations, device, origin,
availability) and https://www.home-assistant.io/integrations/sensor/#device-class .

Not checked: Jinja syntax of templates (HA compiles them; no jinja2 here), and the run-time
warnings HA logs for a state_class that does not suit the device_class (not a schema error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlparse

__all__ = [
    "ABBREVIATIONS",
    "BINARY_SENSOR_DEVICE_CLASSES",
    "DEVICE_ABBREVIATIONS",
    "ORIGIN_ABBREVIATIONS",
    "SENSOR_DEVICE_CLASSES",
    "SENSOR_DEVICE_CLASS_UNITS",
    "SENSOR_STATE_CLASSES",
    "expand",
    "validate",
]

# --------------------------------------------------------------------------------------------
# Abbreviations (mqtt/abbreviations.py, as listed on the MQTT integration page). discovery.py
# expands them in the top level, in each `availability` entry, in `device` and in `origin`.
# --------------------------------------------------------------------------------------------

# fmt: off
ABBREVIATIONS: Final[Mapping[str, str]] = {
    "act_t": "action_topic", "act_tpl": "action_template", "atype": "automation_type",
    "aux_cmd_t": "aux_command_topic", "aux_stat_t": "aux_state_topic",
    "aux_stat_tpl": "aux_state_template", "av_tones": "available_tones",
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "away_mode_cmd_t": "away_mode_command_topic",
    "away_mode_stat_t": "away_mode_state_topic",
    "away_mode_stat_tpl": "away_mode_state_template", "b_tpl": "blue_template",
    "bri_cmd_t": "brightness_command_topic", "bri_cmd_tpl": "brightness_command_template",
    "bri_scl": "brightness_scale", "bri_stat_t": "brightness_state_topic",
    "bri_tpl": "brightness_template", "bri_val_tpl": "brightness_value_template",
    "clr_temp_cmd_tpl": "color_temp_command_template",
    "clr_temp_cmd_t": "color_temp_command_topic", "clr_temp_k": "color_temp_kelvin",
    "clr_temp_stat_t": "color_temp_state_topic", "clr_temp_tpl": "color_temp_template",
    "clr_temp_val_tpl": "color_temp_value_template", "clrm": "color_mode",
    "clrm_stat_t": "color_mode_state_topic", "clrm_val_tpl": "color_mode_value_template",
    "cmd_off_tpl": "command_off_template", "cmd_on_tpl": "command_on_template",
    "cmd_t": "command_topic", "cmd_tpl": "command_template", "cmps": "components",
    "cod_arm_req": "code_arm_required", "cod_dis_req": "code_disarm_required",
    "cod_trig_req": "code_trigger_required", "cont_type": "content_type",
    "curr_temp_t": "current_temperature_topic", "curr_temp_tpl": "current_temperature_template",
    # `def_ent_id` is used by many discovery publishers since HA 2025.10 added
    # `default_entity_id`; the stored copies of abbreviations.py predate it (see the report).
    "def_ent_id": "default_entity_id",
    "dev": "device", "dev_cla": "device_class", "dir_cmd_t": "direction_command_topic",
    "dir_cmd_tpl": "direction_command_template", "dir_stat_t": "direction_state_topic",
    "dir_val_tpl": "direction_value_template", "dsp_prc": "display_precision",
    "e": "encoding", "en": "enabled_by_default", "ent_cat": "entity_category",
    "ent_pic": "entity_picture", "evt_typ": "event_types", "exp_aft": "expire_after",
    "fanspd_lst": "fan_speed_list", "flsh_tlng": "flash_time_long",
    "flsh_tsht": "flash_time_short", "fx_cmd_t": "effect_command_topic",
    "fx_cmd_tpl": "effect_command_template", "fx_list": "effect_list",
    "fx_stat_t": "effect_state_topic", "fx_tpl": "effect_template",
    "fx_val_tpl": "effect_value_template", "fan_mode_cmd_t": "fan_mode_command_topic",
    "fan_mode_cmd_tpl": "fan_mode_command_template", "fan_mode_stat_t": "fan_mode_state_topic",
    "fan_mode_stat_tpl": "fan_mode_state_template", "frc_upd": "force_update",
    "g_tpl": "green_template", "hs_cmd_t": "hs_command_topic",
    "hs_cmd_tpl": "hs_command_template", "hs_stat_t": "hs_state_topic",
    "hs_val_tpl": "hs_value_template", "ic": "icon", "img_e": "image_encoding",
    "img_t": "image_topic", "init": "initial", "hum_cmd_t": "target_humidity_command_topic",
    "hum_cmd_tpl": "target_humidity_command_template",
    "hum_stat_t": "target_humidity_state_topic", "hum_state_tpl": "target_humidity_state_template",
    "json_attr": "json_attributes", "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template", "l_ver_t": "latest_version_topic",
    "l_ver_tpl": "latest_version_template", "lrst_t": "last_reset_topic",
    "lrst_val_tpl": "last_reset_value_template", "max": "max", "max_hum": "max_humidity",
    "max_k": "max_kelvin", "max_mirs": "max_mireds", "max_temp": "max_temp",
    "migr_discvry": "migrate_discovery", "min": "min", "min_hum": "min_humidity",
    "min_k": "min_kelvin", "min_mirs": "min_mireds", "min_temp": "min_temp", "mode": "mode",
    "mode_cmd_t": "mode_command_topic", "mode_cmd_tpl": "mode_command_template",
    "mode_stat_t": "mode_state_topic", "mode_stat_tpl": "mode_state_template",
    "modes": "modes", "name": "name", "o": "origin", "obj_id": "object_id",
    "off_dly": "off_delay", "on_cmd_type": "on_command_type", "ops": "options",
    "opt": "optimistic", "osc_cmd_t": "oscillation_command_topic",
    "osc_cmd_tpl": "oscillation_command_template", "osc_stat_t": "oscillation_state_topic",
    "osc_val_tpl": "oscillation_value_template", "p": "platform",
    "pct_cmd_t": "percentage_command_topic", "pct_cmd_tpl": "percentage_command_template",
    "pct_stat_t": "percentage_state_topic", "pct_val_tpl": "percentage_value_template",
    "pl": "payload", "pl_arm_away": "payload_arm_away",
    "pl_arm_custom_b": "payload_arm_custom_bypass", "pl_arm_home": "payload_arm_home",
    "pl_arm_nite": "payload_arm_night", "pl_arm_vacation": "payload_arm_vacation",
    "pl_avail": "payload_available", "pl_cln_sp": "payload_clean_spot",
    "pl_cls": "payload_close", "pl_dir_fwd": "payload_direction_forward",
    "pl_dir_rev": "payload_direction_reverse", "pl_disarm": "payload_disarm",
    "pl_home": "payload_home", "pl_inst": "payload_install", "pl_loc": "payload_locate",
    "pl_lock": "payload_lock", "pl_not_avail": "payload_not_available",
    "pl_not_home": "payload_not_home", "pl_off": "payload_off", "pl_on": "payload_on",
    "pl_open": "payload_open", "pl_osc_off": "payload_oscillation_off",
    "pl_osc_on": "payload_oscillation_on", "pl_paus": "payload_pause",
    "pl_stop": "payload_stop", "pl_strt": "payload_start", "pl_prs": "payload_press",
    "pl_ret": "payload_return_to_base", "pl_rst": "payload_reset",
    "pl_rst_hum": "payload_reset_humidity", "pl_rst_mode": "payload_reset_mode",
    "pl_rst_pct": "payload_reset_percentage", "pl_rst_pr_mode": "payload_reset_preset_mode",
    "pl_stpa": "payload_start_pause", "pl_toff": "payload_turn_off",
    "pl_ton": "payload_turn_on", "pl_trig": "payload_trigger", "pl_unlk": "payload_unlock",
    "pos": "reports_position", "pos_clsd": "position_closed", "pos_open": "position_open",
    "pr_mode_cmd_t": "preset_mode_command_topic",
    "pr_mode_cmd_tpl": "preset_mode_command_template",
    "pr_mode_stat_t": "preset_mode_state_topic", "pr_mode_val_tpl": "preset_mode_value_template",
    "pr_modes": "preset_modes", "ptrn": "pattern", "r_tpl": "red_template",
    "rel_s": "release_summary", "rel_u": "release_url", "ret": "retain",
    "rgb_cmd_t": "rgb_command_topic", "rgb_cmd_tpl": "rgb_command_template",
    "rgb_stat_t": "rgb_state_topic", "rgb_val_tpl": "rgb_value_template",
    "rgbw_cmd_t": "rgbw_command_topic", "rgbw_cmd_tpl": "rgbw_command_template",
    "rgbw_stat_t": "rgbw_state_topic", "rgbw_val_tpl": "rgbw_value_template",
    "rgbww_cmd_t": "rgbww_command_topic", "rgbww_cmd_tpl": "rgbww_command_template",
    "rgbww_stat_t": "rgbww_state_topic", "rgbww_val_tpl": "rgbww_value_template",
    "send_cmd_t": "send_command_topic", "send_if_off": "send_if_off",
    "set_fan_spd_t": "set_fan_speed_topic", "set_pos_t": "set_position_topic",
    "set_pos_tpl": "set_position_template", "pos_t": "position_topic",
    "pos_tpl": "position_template", "spd_rng_min": "speed_range_min",
    "spd_rng_max": "speed_range_max", "src_type": "source_type", "stat_cla": "state_class",
    "stat_closing": "state_closing", "stat_clsd": "state_closed", "stat_jam": "state_jammed",
    "stat_locked": "state_locked", "stat_locking": "state_locking", "stat_off": "state_off",
    "stat_on": "state_on", "stat_open": "state_open", "stat_opening": "state_opening",
    "stat_stopped": "state_stopped", "stat_unlocked": "state_unlocked",
    "stat_unlocking": "state_unlocking", "stat_t": "state_topic", "stat_tpl": "state_template",
    "stat_val_tpl": "state_value_template", "step": "step", "stype": "subtype",
    "sug_dsp_prc": "suggested_display_precision", "sup_clrm": "supported_color_modes",
    "sup_dur": "support_duration", "sup_vol": "support_volume_set",
    "sup_feat": "supported_features", "swing_mode_cmd_t": "swing_mode_command_topic",
    "swing_mode_cmd_tpl": "swing_mode_command_template",
    "swing_mode_stat_t": "swing_mode_state_topic",
    "swing_mode_stat_tpl": "swing_mode_state_template", "t": "topic",
    "temp_cmd_t": "temperature_command_topic", "temp_cmd_tpl": "temperature_command_template",
    "temp_hi_cmd_t": "temperature_high_command_topic",
    "temp_hi_cmd_tpl": "temperature_high_command_template",
    "temp_hi_stat_t": "temperature_high_state_topic",
    "temp_hi_stat_tpl": "temperature_high_state_template",
    "temp_lo_cmd_t": "temperature_low_command_topic",
    "temp_lo_cmd_tpl": "temperature_low_command_template",
    "temp_lo_stat_t": "temperature_low_state_topic",
    "temp_lo_stat_tpl": "temperature_low_state_template",
    "temp_stat_t": "temperature_state_topic", "temp_stat_tpl": "temperature_state_template",
    "temp_unit": "temperature_unit", "tilt_clsd_val": "tilt_closed_value",
    "tilt_cmd_t": "tilt_command_topic", "tilt_cmd_tpl": "tilt_command_template",
    "tilt_max": "tilt_max", "tilt_min": "tilt_min", "tilt_opnd_val": "tilt_opened_value",
    "tilt_opt": "tilt_optimistic", "tilt_status_t": "tilt_status_topic",
    "tilt_status_tpl": "tilt_status_template", "tit": "title", "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement", "url_t": "url_topic", "url_tpl": "url_template",
    "val_tpl": "value_template", "whit_cmd_t": "white_command_topic", "whit_scl": "white_scale",
    "xy_cmd_t": "xy_command_topic", "xy_cmd_tpl": "xy_command_template",
    "xy_stat_t": "xy_state_topic", "xy_val_tpl": "xy_value_template",
}

DEVICE_ABBREVIATIONS: Final[Mapping[str, str]] = {
    "cu": "configuration_url", "cns": "connections", "ids": "identifiers", "name": "name",
    "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id", "hw": "hw_version",
    "sw": "sw_version", "sa": "suggested_area", "sn": "serial_number",
}

ORIGIN_ABBREVIATIONS: Final[Mapping[str, str]] = {
    "name": "name", "sw": "sw_version", "url": "support_url",
}
# fmt: on

TOPIC_BASE: Final = "~"

# --------------------------------------------------------------------------------------------
# Device and state classes, units (sensor/const.py, binary_sensor/__init__.py).
# --------------------------------------------------------------------------------------------

BINARY_SENSOR_DEVICE_CLASSES: Final = frozenset(
    {
        "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
        "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
        "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
        "smoke", "sound", "tamper", "update", "vibration", "window",
    }
)  # fmt: skip

SENSOR_STATE_CLASSES: Final = frozenset(
    {"measurement", "measurement_angle", "total", "total_increasing"}
)

# STATE_CLASS_UNITS: the only unit a measurement_angle sensor may have is DEGREE.
SENSOR_STATE_CLASS_UNITS: Final[Mapping[str, frozenset[str | None]]] = {
    "measurement_angle": frozenset({"°"}),
}

# The `UnitOf*` enums' values, as sets (`set(UnitOfX)` in DEVICE_CLASS_UNITS).
_APPARENT_POWER = frozenset({"mVA", "VA", "kVA"})
_AREA = frozenset({"m²", "cm²", "km²", "mm²", "in²", "ft²", "yd²", "mi²", "ac", "ha"})
_PRESSURE = frozenset(
    {"mPa", "Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "inH₂O", "psi"}
)
_CONDUCTIVITY = frozenset({"S/cm", "μS/cm", "mS/cm"})
_CURRENT = frozenset({"μA", "mA", "A"})
_DATA_RATE = frozenset(
    {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "B/s", "kB/s", "MB/s", "GB/s", "KiB/s", "MiB/s",
     "GiB/s"}
)  # fmt: skip
_INFORMATION = frozenset(
    {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB", "KiB",
     "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
)  # fmt: skip
_LENGTH = frozenset({"mm", "cm", "m", "km", "in", "ft", "yd", "mi", "nmi"})
# `thm` (therm) is listed in the 2026 ENERGY docstring; the enum values come from that docstring.
_ENERGY = frozenset(
    {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal",
     "Gcal", "thm"}
)  # fmt: skip
_FREQUENCY = frozenset({"mHz", "Hz", "kHz", "MHz", "GHz"})
_VOLUMETRIC_FLUX = frozenset({"in/d", "in/h", "mm/d", "mm/h"})
_SPEED = frozenset({"Beaufort", "ft/s", "in/s", "m/min", "m/s", "km/h", "kn", "mph", "mm/s"})
_TEMPERATURE = frozenset({"°C", "°F", "K"})
_VOLTAGE = frozenset({"μV", "mV", "V", "kV", "MV"})
_VOLUME = frozenset({"ft³", "CCF", "MCF", "m³", "L", "mL", "gal", "fl. oz."})
_VOLUME_FLOW_RATE = frozenset(
    {"m³/h", "m³/min", "m³/s", "ft³/min", "L/h", "L/min", "L/s", "gal/h", "gal/min", "gal/d",
     "mL/s"}
)  # fmt: skip
_MASS = frozenset({"g", "kg", "mg", "μg", "oz", "lb", "st"})
_UG_M3 = "μg/m³"  # UnitOfDensity.MICROGRAMS_PER_CUBIC_METER (Greek mu, U+03BC)

# DEVICE_CLASS_UNITS: a device class listed here only accepts these units (None: no unit). A
# class not listed (date, enum, timestamp, uptime, monetary) accepts any unit in the MQTT schema.
SENSOR_DEVICE_CLASS_UNITS: Final[Mapping[str, frozenset[str | None]]] = {
    "absolute_humidity": frozenset({"g/m³", "mg/m³"}),
    "apparent_power": _APPARENT_POWER,
    "aqi": frozenset({None}),
    "area": _AREA,
    "atmospheric_pressure": _PRESSURE,
    "battery": frozenset({"%"}),
    "blood_glucose_concentration": frozenset({"mg/dL", "mmol/L"}),
    "carbon_monoxide": frozenset({"ppb", "ppm", "mg/m³", _UG_M3}),
    "carbon_dioxide": frozenset({"ppm"}),
    "conductivity": _CONDUCTIVITY,
    "current": _CURRENT,
    "data_rate": _DATA_RATE,
    "data_size": _INFORMATION,
    "distance": _LENGTH,
    "duration": frozenset({"d", "h", "min", "s", "ms", "μs"}),
    "energy": _ENERGY,
    "energy_distance": frozenset({"kWh/100km", "Wh/km", "mi/kWh", "km/kWh"}),
    "energy_storage": _ENERGY,
    "frequency": _FREQUENCY,
    "gas": frozenset({"CCF", "ft³", "m³", "L", "MCF"}),
    "humidity": frozenset({"%"}),
    "illuminance": frozenset({"lx"}),
    "irradiance": frozenset({"W/m²", "BTU/(h⋅ft²)"}),
    "moisture": frozenset({"%"}),
    "nitrogen_dioxide": frozenset({"ppb", "ppm", _UG_M3}),
    "nitrogen_monoxide": frozenset({"ppb", _UG_M3}),
    "nitrous_oxide": frozenset({_UG_M3}),
    "ozone": frozenset({"ppb", "ppm", _UG_M3}),
    "ph": frozenset({None}),
    "pm1": frozenset({_UG_M3}),
    "pm10": frozenset({_UG_M3}),
    "pm25": frozenset({_UG_M3}),
    "pm4": frozenset({_UG_M3}),
    "power_factor": frozenset({"%", None}),
    "power": frozenset({"mW", "W", "kW", "MW", "GW", "TW"}),
    "precipitation": frozenset({"in", "mm", "cm"}),
    "precipitation_intensity": _VOLUMETRIC_FLUX,
    "pressure": _PRESSURE,
    "radon": frozenset({"Bq/m³", "pCi/L"}),
    "reactive_energy": frozenset({"varh", "kvarh"}),
    "reactive_power": frozenset({"mvar", "var", "kvar"}),
    "signal_strength": frozenset({"dB", "dBm"}),
    "sound_pressure": frozenset({"dB", "dBA"}),
    "speed": _SPEED | _VOLUMETRIC_FLUX,
    "sulphur_dioxide": frozenset({"ppb", _UG_M3}),
    "temperature": _TEMPERATURE,
    "temperature_delta": _TEMPERATURE,
    "volatile_organic_compounds": frozenset({_UG_M3, "mg/m³"}),
    "volatile_organic_compounds_parts": frozenset({"ppb", "ppm"}),
    "voltage": _VOLTAGE,
    "volume": _VOLUME,
    "volume_flow_rate": _VOLUME_FLOW_RATE,
    "volume_storage": _VOLUME,
    "water": frozenset({"CCF", "ft³", "m³", "gal", "L", "MCF"}),
    "weight": _MASS,
    "wind_direction": frozenset({"°"}),
    "wind_speed": _SPEED,
}

SENSOR_DEVICE_CLASSES: Final = frozenset(SENSOR_DEVICE_CLASS_UNITS) | {
    "date",
    "enum",
    "timestamp",
    "uptime",
    "monetary",
}

# AMBIGUOUS_UNITS: the MQTT sensor rewrites these before the device-class check (legacy micro
# sign U+00B5 to Greek mu U+03BC, and VAr spellings).
AMBIGUOUS_UNITS: Final[Mapping[str, str]] = {
    "\u00b5Sv/h": "μSv/h",
    "\u00b5S/cm": "μS/cm",
    "\u00b5V": "μV",
    "\u00b5g/ft³": "μg/ft³",
    "\u00b5g/m³": "μg/m³",
    "\u00b5mol/s⋅m²": "μmol/s⋅m²",
    "\u00b5g": "μg",
    "\u00b5s": "μs",
    "mVAr": "mvar",
    "VAr": "var",
    "kVAr": "kvar",
    "VArh": "varh",
    "kVArh": "kvarh",
}

ENTITY_CATEGORIES: Final = frozenset({"config", "diagnostic"})
AVAILABILITY_MODES: Final = frozenset({"all", "any", "latest"})

# --------------------------------------------------------------------------------------------
# Value checkers, one per config_validation helper. Each returns the problems for one value.
# HA's helpers coerce (cv.string str()s numbers, cv.boolean takes "on"/1, cv.positive_int takes
# "5"); we report such values anyway, saying HA would coerce them.
# --------------------------------------------------------------------------------------------

Checker = Callable[[str, Any], list[str]]


def _string(path: str, value: Any) -> list[str]:
    if value is None:
        return [f"{path}: must be a string, got null"]
    if isinstance(value, (list, dict)):
        return [f"{path}: must be a string, got {type(value).__name__}"]
    if not isinstance(value, str):
        return [f"{path}: must be a string (HA would coerce {value!r} with str())"]
    return []


def _string_or_null(path: str, value: Any) -> list[str]:
    return [] if value is None else _string(path, value)


def _boolean(path: str, value: Any) -> list[str]:
    if isinstance(value, bool):
        return []
    return [f"{path}: must be a JSON boolean, got {value!r} (cv.boolean might coerce it)"]


def _positive_int(path: str, value: Any) -> list[str]:
    # cv.positive_int = vol.All(vol.Coerce(int), vol.Range(min=0)): 0 is allowed.
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{path}: must be an integer >= 0, got {value!r}"]
    if value < 0:
        return [f"{path}: must be an integer >= 0, got {value}"]
    return []


def _qos(path: str, value: Any) -> list[str]:
    # valid_qos_schema = vol.All(vol.Coerce(int), vol.In([0, 1, 2]))
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1, 2):
        return [f"{path}: must be 0, 1 or 2, got {value!r}"]
    return []


def _template(path: str, value: Any) -> list[str]:
    # cv.template refuses None, lists and dicts, str()s the rest and compiles it (not done here).
    if not isinstance(value, str):
        return [f"{path}: must be a template string, got {value!r}"]
    return []


def _icon(path: str, value: Any) -> list[str]:
    # cv.icon: str(value) must contain ":" ("prefix:name", e.g. "mdi:flask").
    if not isinstance(value, str):
        return [f"{path}: must be a string like 'mdi:name', got {value!r}"]
    if ":" not in value:
        return [f"{path}: icons are specified as 'prefix:name', got {value!r}"]
    return []


def _url_checker(schemes: frozenset[str]) -> Checker:
    # cv.url / cv.configuration_url: scheme in the allowed list, then vol.Url (scheme and host).
    def check(path: str, value: Any) -> list[str]:
        if not isinstance(value, str):
            return [f"{path}: must be a URL string, got {value!r}"]
        parsed = urlparse(value)
        if parsed.scheme not in schemes or not parsed.netloc:
            allowed = ", ".join(sorted(schemes))
            return [f"{path}: invalid url {value!r} (scheme must be one of {allowed})"]
        return []

    return check


_url = _url_checker(frozenset({"http", "https"}))
_configuration_url = _url_checker(frozenset({"homeassistant", "http", "https"}))


def topic_problems(value: Any, *, subscribe: bool = True) -> list[str]:
    """Mirror mqtt/util.py `valid_topic` plus `valid_subscribe_topic` (or `valid_publish_topic`).

    Returns the reasons, without a path prefix.
    """
    if not isinstance(value, str):
        return [f"must be a topic string, got {value!r}"]
    try:
        raw = value.encode("utf-8")
    except UnicodeError:
        return ["MQTT topic name/filter must be valid UTF-8 string."]
    if not raw:
        return ["MQTT topic name/filter must not be empty."]
    if len(raw) > 65535:
        return ["MQTT topic name/filter must not be longer than 65535 encoded bytes."]
    if "\0" in value:
        return ["MQTT topic name/filter must not contain null character."]
    if any(char <= "\u001f" for char in value) or any(
        "\u007f" <= char <= "\u009f" for char in value
    ):
        return ["MQTT topic name/filter must not contain control characters."]
    if any("\ufdd0" <= char <= "\ufdef" for char in value):
        return ["MQTT topic name/filter must not contain non-characters."]
    if any((ord(char) & 0xFFFF) in (0xFFFE, 0xFFFF) for char in value):
        return ["MQTT topic name/filter must not contain noncharacters."]
    if not subscribe:
        if "+" in value or "#" in value:
            return ["Wildcards can not be used in topic names"]
        return []
    for i, char in enumerate(value):
        if char == "+" and (
            (i > 0 and value[i - 1] != "/") or (i < len(value) - 1 and value[i + 1] != "/")
        ):
            return ["Single-level wildcard must occupy an entire level of the filter"]
    index = value.find("#")
    if index != -1:
        if index != len(value) - 1:
            return ["Multi-level wildcard must be the last character in the topic filter."]
        if len(value) > 1 and value[index - 1] != "/":
            return ["Multi-level wildcard must be after a topic level separator."]
    return []


def _state_topic(path: str, value: Any) -> list[str]:
    problems = [f"{path}: {reason}" for reason in topic_problems(value)]
    # HA accepts a wildcard filter here (it is a subscription); an entity reading one value
    # must not, so we refuse it: a state topic for one sensor names one topic.
    if not problems and isinstance(value, str) and ("+" in value or "#" in value):
        problems.append(
            f"{path}: contains an MQTT wildcard ({value!r}); HA would subscribe to the filter, "
            "but a sensor's topic must name one topic"
        )
    return problems


def _entity_category(path: str, value: Any) -> list[str]:
    # ENTITY_CATEGORIES_SCHEMA = vol.Coerce(EntityCategory); both sensor and binary_sensor then
    # refuse "config" when the entity is added (HomeAssistantError in async_internal_added...).
    if not isinstance(value, str) or value not in ENTITY_CATEGORIES:
        return [f"{path}: must be one of 'config', 'diagnostic', got {value!r}"]
    if value == "config":
        return [f"{path}: 'config' is not allowed for sensors/binary sensors; use 'diagnostic'"]
    return []


def _default_entity_id(platform: str) -> Checker:
    def check(path: str, value: Any) -> list[str]:
        problems = _string(path, value)
        if problems:
            return problems
        # HA only requires a string and takes what follows the first "." as the object id;
        # without "<platform>." the entity gets no sensible id, so we insist on the prefix.
        domain, dot, object_id = str(value).partition(".")
        if not dot or domain != platform or not object_id:
            return [f"{path}: expected '{platform}.<object_id>', got {value!r}"]
        return []

    return check


def _state_class(path: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str) or value.lower() not in SENSOR_STATE_CLASSES:
        allowed = ", ".join(sorted(SENSOR_STATE_CLASSES))
        return [f"{path}: must be one of {allowed}, got {value!r}"]
    if value != value.lower():
        return [f"{path}: write it lower-case, {value.lower()!r} (HA lower-cases it)"]
    return []


def _device_class(classes: frozenset[str]) -> Checker:
    # DEVICE_CLASSES_SCHEMA = vol.All(vol.Lower, vol.Coerce(<DeviceClass>)); null allowed.
    def check(path: str, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, str) or value.lower() not in classes:
            return [f"{path}: {value!r} is not a valid device class for this platform"]
        if value != value.lower():
            return [f"{path}: write it lower-case, {value.lower()!r} (HA lower-cases it)"]
        return []

    return check


def _options(path: str, value: Any) -> list[str]:
    # cv.ensure_list; the emptiness/enum rules are in _sensor_rules.
    if not isinstance(value, list):
        return [f"{path}: must be a list of strings, got {value!r} (HA wraps a scalar)"]
    return [f"{path}[{i}]: must be a string" for i, v in enumerate(value) if not isinstance(v, str)]


def _availability_mode(path: str, value: Any) -> list[str]:
    if not isinstance(value, str) or value not in AVAILABILITY_MODES:
        return [f"{path}: must be one of all, any, latest, got {value!r}"]
    return []


_AVAILABILITY_ENTRY: Final[Mapping[str, Checker]] = {
    "topic": lambda p, v: [f"{p}: {r}" for r in topic_problems(v)],
    "payload_available": _string,
    "payload_not_available": _string,
    "value_template": _template,
}


def _availability(path: str, value: Any) -> list[str]:
    # vol.All(cv.ensure_list, [{...}]): a single mapping is accepted and wrapped. Unknown keys in
    # an entry are dropped silently (the entry dicts inherit the discovery schema's REMOVE_EXTRA).
    entries = value if isinstance(value, list) else [value]
    if not entries:
        return [f"{path}: an empty list configures no availability; leave the key out"]
    problems: list[str] = []
    for i, entry in enumerate(entries):
        where = f"{path}[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected an object with a 'topic', got {entry!r}")
            continue
        if "topic" not in entry:
            problems.append(f"{where}.topic: required key not provided")
        problems += _check_mapping(where, entry, _AVAILABILITY_ENTRY, dropped_by_ha=True)
    return problems


_DEVICE: Final[Mapping[str, Checker]] = {
    "identifiers": lambda p, v: _list_of_strings(p, v),
    "connections": lambda p, v: _connections(p, v),
    "manufacturer": _string,
    "model": _string,
    "model_id": _string,
    "name": _string,
    "hw_version": _string,
    "serial_number": _string,
    "sw_version": _string,
    "via_device": _string,
    "suggested_area": _string,
    "configuration_url": _configuration_url,
}


def _list_of_strings(path: str, value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]  # cv.ensure_list
    return [problem for i, item in enumerate(items) for problem in _string(f"{path}[{i}]", item)]


def _connections(path: str, value: Any) -> list[str]:
    # vol.All(cv.ensure_list, [vol.All(vol.Length(2), [cv.string])]): a list of [type, id] pairs.
    items = value if isinstance(value, list) else [value]
    problems: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, list) or len(item) != 2:
            problems.append(f"{path}[{i}]: must be a [type, id] pair, got {item!r}")
            continue
        problems += _list_of_strings(f"{path}[{i}]", item)
    return problems


def _device(path: str, value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: must be an object, got {value!r}"]
    problems: list[str] = []
    if "via_hub" in value:
        # cv.deprecated(CONF_DEPRECATED_VIA_HUB, CONF_VIA_DEVICE): renamed with a warning.
        problems.append(f"{path}.via_hub: deprecated, HA renames it to via_device; publish that")
    # The device schema is a plain vol.Schema: unknown keys make HA reject the whole config.
    known = dict(_DEVICE) | {"via_hub": _string}
    problems += _check_mapping(path, value, known, dropped_by_ha=False)
    # validate_device_has_at_least_one_identifier
    if not (value.get("identifiers") or value.get("connections")):
        problems.append(
            f"{path}: device must have at least one identifying value in "
            "'identifiers' and/or 'connections'"
        )
    return problems


_ORIGIN: Final[Mapping[str, Checker]] = {
    "name": _string,
    "sw_version": _string,
    "support_url": _configuration_url,
}


def _origin(path: str, value: Any) -> list[str]:
    # discovery.py validates MQTT_ORIGIN_INFO_SCHEMA first and drops the whole message on error.
    if not isinstance(value, dict):
        return [f"{path}: must be an object, got {value!r}"]
    problems: list[str] = []
    if "name" not in value:
        problems.append(f"{path}.name: required key not provided (HA ignores the message)")
    problems += _check_mapping(path, value, _ORIGIN, dropped_by_ha=False)
    return problems


def _check_mapping(
    path: str, value: Mapping[str, Any], checkers: Mapping[str, Checker], *, dropped_by_ha: bool
) -> list[str]:
    problems: list[str] = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        checker = checkers.get(key)
        if checker is None:
            if dropped_by_ha:
                # HA's discovery schemas use extra=vol.REMOVE_EXTRA: HA silently drops this key.
                problems.append(f"{where}: unknown key (HA would silently drop it)")
            else:
                problems.append(f"{where}: unknown key (HA rejects: extra keys not allowed)")
            continue
        problems += checker(where, item)
    return problems


# --------------------------------------------------------------------------------------------
# The platform schemas: MQTT_BASE_SCHEMA + MQTT_RO_SCHEMA + platform keys +
# MQTT_ENTITY_COMMON_SCHEMA (availability schemas included).
# --------------------------------------------------------------------------------------------


def _common_keys(platform: str) -> dict[str, Checker]:
    return {
        # MQTT_BASE_SCHEMA
        "qos": _qos,
        "encoding": _string,
        # MQTT_RO_SCHEMA
        "state_topic": _state_topic,
        "value_template": _template,
        # availability (single and list schemas)
        "availability_topic": lambda p, v: [f"{p}: {r}" for r in topic_problems(v)],
        "availability_template": _template,
        "payload_available": _string,
        "payload_not_available": _string,
        "availability_mode": _availability_mode,
        "availability": _availability,
        # MQTT_ENTITY_COMMON_SCHEMA
        "device": _device,
        "entity_picture": _url,
        "origin": _origin,
        "enabled_by_default": _boolean,
        "entity_category": _entity_category,
        "icon": _icon,
        "json_attributes_topic": lambda p, v: [f"{p}: {r}" for r in topic_problems(v)],
        "json_attributes_template": _template,
        "default_entity_id": _default_entity_id(platform),
        "message_expiry_interval": _positive_int,
        "unique_id": _string,
        "visible_by_default": _boolean,
    }


def _sensor_keys() -> dict[str, Checker]:
    return _common_keys("sensor") | {
        "device_class": _device_class(SENSOR_DEVICE_CLASSES),
        "expire_after": _positive_int,
        "force_update": _boolean,
        "last_reset_value_template": _template,
        "name": _string_or_null,
        "options": _options,
        "suggested_display_precision": _positive_int,
        "state_class": _state_class,
        "unit_of_measurement": _string_or_null,
    }


def _binary_sensor_keys() -> dict[str, Checker]:
    return _common_keys("binary_sensor") | {
        "device_class": _device_class(BINARY_SENSOR_DEVICE_CLASSES),
        "expire_after": _positive_int,
        "force_update": _boolean,
        "name": _string_or_null,
        "off_delay": _positive_int,
        "payload_off": _string,
        "payload_on": _string,
    }


_SCHEMAS: Final[Mapping[str, Callable[[], dict[str, Checker]]]] = {
    "sensor": _sensor_keys,
    "binary_sensor": _binary_sensor_keys,
}

# Keys HA once had for these platforms and no longer reads; named so the message says why.
_REMOVED: Final[Mapping[str, str]] = {
    "object_id": "removed from HA's MQTT schema; use default_entity_id ('<platform>.<id>')",
    "last_reset_topic": "removed from the MQTT sensor; use last_reset_value_template",
    "json_attributes": "removed; use json_attributes_topic",
}


def _expand_block(block: Any, table: Mapping[str, str], path: str, problems: list[str]) -> Any:
    """Expand one mapping's abbreviated keys as discovery.py's `_replace_abbreviations` does."""
    if not isinstance(block, dict):
        return block
    out = dict(block)
    for short in [key for key in block if key in table]:
        full = table[short]
        if full != short and full in block:
            # HA: payload[full] = payload.pop(short), so the abbreviated value silently wins.
            where = f"{path}.{full}" if path else full
            problems.append(f"{where}: given both as {short!r} and {full!r}")
        out[full] = out.pop(short)
    return out


def expand(payload: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Return the payload as HA sees it after abbreviation and `~` expansion, and any problems."""
    problems: list[str] = []
    config: dict[str, Any] = _expand_block(dict(payload), ABBREVIATIONS, "", problems)
    if "availability" in config:
        entries = config["availability"]
        listed = entries if isinstance(entries, list) else [entries]
        expanded = [
            _expand_block(entry, ABBREVIATIONS, f"availability[{i}]", problems)
            for i, entry in enumerate(listed)
        ]
        config["availability"] = expanded if isinstance(entries, list) else expanded[0]
    if "origin" in config:
        config["origin"] = _expand_block(config["origin"], ORIGIN_ABBREVIATIONS, "origin", problems)
    if "device" in config:
        config["device"] = _expand_block(config["device"], DEVICE_ABBREVIATIONS, "device", problems)
    if TOPIC_BASE in config:
        base = config.pop(TOPIC_BASE)
        if not isinstance(base, str):
            problems.append(f"{TOPIC_BASE}: the topic base must be a string, got {base!r}")
            base = str(base)
        for key, value in list(config.items()):
            if isinstance(value, str) and value and key.endswith("topic"):
                config[key] = _rebase(value, base)
        entries = config.get("availability")
        if entries:
            listed = entries if isinstance(entries, list) else [entries]
            for entry in listed:
                if isinstance(entry, dict) and isinstance(entry.get("topic"), str):
                    entry["topic"] = _rebase(entry["topic"], base)
    return config, problems


def _rebase(value: str, base: str) -> str:
    if value and value[0] == TOPIC_BASE:
        value = f"{base}{value[1:]}"
    if value and value[-1] == TOPIC_BASE:
        value = f"{value[:-1]}{base}"
    return value


def _sensor_rules(config: Mapping[str, Any]) -> list[str]:
    """Mirror mqtt/sensor.py `validate_sensor_state_and_device_class_config`."""
    problems: list[str] = []
    raw_state_class = config.get("state_class")
    raw_device_class = config.get("device_class")
    unit = config.get("unit_of_measurement")
    if any(
        v is not None and not isinstance(v, str) for v in (raw_state_class, raw_device_class, unit)
    ):
        return problems  # already reported as type problems
    state_class = raw_state_class.lower() if isinstance(raw_state_class, str) else None
    device_class = raw_device_class.lower() if isinstance(raw_device_class, str) else None

    if "last_reset_value_template" in config and state_class != "total":
        problems.append(
            "last_reset_value_template: cannot be used together with state class "
            f"{state_class!r} (needs 'total')"
        )

    if isinstance(unit, str) and not unit.strip():
        # HA pops a blank unit and carries on as if it were absent.
        problems.append("unit_of_measurement: blank; HA drops it, so leave the key out")
        unit = None

    options = config.get("options")
    if options is not None:
        if not options:
            problems.append("options: an empty options list is not allowed")
        if state_class or unit:
            problems.append(
                "options: not allowed together with the state_class or unit_of_measurement option"
            )
        if device_class != "enum":
            problems.append(
                f"options: must be used together with device class 'enum', got {device_class!r}"
            )

    if (
        state_class is not None
        and state_class in SENSOR_STATE_CLASS_UNITS
        and unit not in SENSOR_STATE_CLASS_UNITS[state_class]
    ):
        problems.append(
            f"unit_of_measurement: {unit!r} is not valid together with state class {state_class!r}"
        )

    if unit is None or device_class is None:
        return problems
    unit = AMBIGUOUS_UNITS.get(unit, unit)
    allowed = SENSOR_DEVICE_CLASS_UNITS.get(device_class)
    if allowed is not None and unit not in allowed:
        choices = ", ".join(sorted(repr(u) for u in allowed if u is not None)) or "none"
        problems.append(
            f"unit_of_measurement: {unit!r} is not valid together with device class "
            f"{device_class!r} (HA allows: {choices})"
        )
    return problems


def validate(platform: str, payload: dict[str, Any]) -> list[str]:
    """Every problem in one `sensor` or `binary_sensor` discovery payload; [] when it is clean."""
    if platform not in _SCHEMAS:
        raise ValueError(f"unsupported platform {platform!r}; expected sensor or binary_sensor")
    if not isinstance(payload, dict):
        return [f"payload: must be a JSON object, got {type(payload).__name__}"]

    config, problems = expand(payload)
    checkers = _SCHEMAS[platform]()

    if "state_topic" not in config:
        problems.append("state_topic: required key not provided")
    # vol.Exclusive(availability_topic, "availability") / vol.Exclusive(availability, ...)
    if "availability_topic" in config and "availability" in config:
        problems.append(
            "availability_topic: must not be used together with availability "
            "(two or more values in the same group of exclusion 'availability')"
        )

    for key, value in config.items():
        if key in _REMOVED and key not in checkers:
            problems.append(f"{key}: {_REMOVED[key]} (HA would silently drop it)")
            continue
        problems += _check_mapping("", {key: value}, checkers, dropped_by_ha=True)

    if platform == "sensor":
        problems += _sensor_rules(config)
    return problems
