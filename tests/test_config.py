"""The unit's config: the example loads, defaults are sane, each problem names its TOML location.

Each bad config is the shipped example with one edit, as a person would make it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hal.wiring import CoilFunction, LevelPoint
from unit_controller.config import (
    DEFAULT_CONFIG,
    HeaterTuning,
    InterlockLimits,
    PhTuning,
    SimSection,
    UnitConfig,
    load_config,
)
from unit_controller.errors import ConfigError

EXAMPLE = DEFAULT_CONFIG.read_text(encoding="utf-8")
ROOT = Path(__file__).resolve().parents[1]


def _edited(tmp_path: Path, *edits: tuple[str, str], append: str = "") -> Path:
    """The example with each `old` replaced by `new` (once; `old` must be there) plus `append`."""
    text = EXAMPLE
    for old, new in edits:
        assert old in text, f"the example no longer contains {old!r}"
        text = text.replace(old, new, 1)
    path = tmp_path / "unit.toml"
    path.write_text(text + append, encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == str(path)
    assert info.value.problems
    return info.value.problems


@pytest.fixture(scope="module")
def example() -> UnitConfig:
    return load_config(DEFAULT_CONFIG)


# --- the example and the defaults -------------------------------------------------------------


def test_load_config_without_a_path_loads_the_simulator_example(example: UnitConfig) -> None:
    assert load_config() == example
    assert example.unit.id == "sim-unit-01"
    assert example.hal.backend == "mock"
    assert example.unit.scan_period_s == 0.1


def test_example_wiring_resolves_every_role_to_its_pid_tag(example: UnitConfig) -> None:
    wiring = example.wiring
    assert (wiring.rtd_tag, wiring.ph_tag, wiring.heater_tag, wiring.estop_tag) == (
        "TT-101",
        "AT-101",
        "E-101",
        "HS-100",
    )
    assert wiring.coil_tag(CoilFunction.CONTACTOR) == "K-101"
    assert wiring.coil_tag(CoilFunction.DRAIN_VALVE) == "XV-101"
    assert [wiring.level_tag(p) for p in LevelPoint] == [
        "LSLL-101",
        "LSL-101",
        "LSH-101",
        "LSHH-101",
    ]
    assert sorted(wiring.pumps()) == ["P-201", "P-202", "P-203", "P-204", "P-205"]


def test_every_pump_gets_the_default_reagent_cap_unless_configured(example: UnitConfig) -> None:
    configured = example.interlocks.reagent_cap_ml
    assert configured == {"P-205": 60_000.0}  # the metal feed may empty its tank in one phase
    for tag in example.wiring.pumps():
        expected = configured.get(tag, example.interlocks.default_reagent_cap_ml)
        assert example.reagent_cap_ml(tag) == expected > 0


def test_a_config_with_only_unit_and_devices_gets_sane_defaults(tmp_path: Path) -> None:
    text = EXAMPLE.split("# --- interlock limits")[0]
    path = tmp_path / "minimal.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.interlocks == InterlockLimits()
    assert config.control.heater == HeaterTuning()
    assert config.control.ph == PhTuning()
    assert config.sim == SimSection()


def test_default_limits_keep_setpoints_inside_the_trips() -> None:
    limits = InterlockLimits()
    assert limits.max_temperature_setpoint_c < limits.temperature_high_high_c <= 95
    assert 0 <= limits.min_ph_setpoint < limits.max_ph_setpoint <= 14
    assert limits.reagent_cap_ml == {}
    assert limits.heater_off_settle_s < limits.heater_off_window_s


def test_default_tuning_and_simulation_are_usable() -> None:
    heater = HeaterTuning()
    assert 0 < heater.min_pulse_s < heater.cycle_s / 2
    assert 0 < heater.max_duty <= 1
    ph = PhTuning()
    assert 0 <= ph.min_dose_ml < ph.max_dose_ml
    assert ph.interval_s > 0
    sim = SimSection()
    assert sim.seed >= 0
    assert sim.speed is None  # as fast as possible


# --- problems with their TOML location --------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            ("stale_s = 5.0", "stale_s = -1.0"),
            "devices.TT-101.stale_s: Input should be greater than or equal to 2 (got -1.0)",
        ),
        (
            ("scan_period_s = 0.1", "scan_period_s = 5"),
            "unit.scan_period_s: Input should be less than or equal to 1 (got 5)",
        ),
        (('id = "sim-unit-01"\n', ""), "unit.id: Field required"),
        (
            ('site = "lab"', 'site = "lab"\nsite_name = "Hall 2"'),
            "unit.site_name: Extra inputs are not permitted (got 'Hall 2')",
        ),
        (('backend = "mock"', 'backend = "modbus"'), "hal.backend: Input should be 'mock' or"),
        (
            ("[devices.TT-101]", "[devices.tt101]"),
            "devices.tt101: String should match pattern",
        ),
        (
            ('kind = "heater"', 'kind = "laser"'),
            "devices.E-101.kind: Input tag 'laser' found using 'kind' does not match",
        ),
        (
            (
                "concentration_mol_l = 18.0",
                "concentration_mol_l = 18.0\nmin_ml_min = 5.0\nmax_ml_min = 4.0",
            ),
            "devices.P-201: min_ml_min (5.0) must be below max_ml_min (4.0)",
        ),
        (
            ("max_temperature_setpoint_c = 85.0", "max_temperature_setpoint_c = 90.0"),
            "interlocks: max_temperature_setpoint_c (90.0) must be below "
            "temperature_high_high_c (90.0)",
        ),
        (
            ("cycle_s = 4.0", "cycle_s = 4.0\nmin_pulse_s = 2.0"),
            "control.heater: min_pulse_s (2.0) must be below half of cycle_s (4.0)",
        ),
        (
            ("interval_s = 20.0", "interval_s = 0.5"),
            "control.ph.interval_s: Input should be greater than or equal to 1 (got 0.5)",
        ),
        (("[sim]\nseed = 1", "[sim]\nseed = -3"), "sim.seed: Input should be greater than or"),
        # NaN passes every comparison a limit makes: a NaN cap would never trip.
        (
            ('reagent_cap_ml = { "P-205" = 60000.0 }', 'reagent_cap_ml = { "P-205" = nan }'),
            "interlocks.reagent_cap_ml.P-205: Input should be a finite number (got nan)",
        ),
        (
            ('reagent_cap_ml = { "P-205" = 60000.0 }', 'reagent_cap_ml = { "P-205" = -5.0 }'),
            "interlocks.reagent_cap_ml.P-205: Input should be greater than 0 (got -5.0)",
        ),
        (
            ("stale_s = 5.0", "stale_s = inf"),
            "devices.TT-101.stale_s: Input should be a finite number (got inf)",
        ),
        # Quoted numbers and switches are mistakes, not values: a security switch least of all.
        (
            ("allow_unsigned = true", 'allow_unsigned = "yes"'),
            "mqtt.allow_unsigned: Input should be a valid boolean (got 'yes')",
        ),
        (
            ("allow_unsigned = true", "allow_unsigned = 1"),
            "mqtt.allow_unsigned: Input should be a valid boolean (got 1)",
        ),
        (
            ("scan_period_s = 0.1", 'scan_period_s = "0.1"'),
            "unit.scan_period_s: Input should be a valid number (got '0.1')",
        ),
        # Values once accepted that broke the unit. A flow that rounds to nothing divided by
        # zero at start (sim and run exited).
        (
            ("flow_l_min = 4.0", "flow_l_min = 5e-324"),
            "devices.XV-103: a cooling_valve needs the jacket's ua_w_k (W/K) and "
            "its cooling-water flow_l_min, both at least 0.1",
        ),
        # Below the circuits' ~1 s read every reading was stale between two: batches held.
        (
            ("stale_s = 5.0", "stale_s = 0.5"),
            "devices.TT-101.stale_s: Input should be greater than or equal to 2 (got 0.5)",
        ),
        # 1e-9: ~1,400 connects a second to a broker that was away, and a flood of warnings.
        (
            ("[mqtt]", "[mqtt]\nreconnect_min_s = 1e-9"),
            "mqtt.reconnect_min_s: Input should be greater than or equal to 0.05 (got 1e-09)",
        ),
    ],
)
def test_a_bad_value_is_refused_with_its_toml_location(
    tmp_path: Path, edit: tuple[str, str], problem: str
) -> None:
    problems = _problems(_edited(tmp_path, edit))
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


def test_a_ph_gain_of_zero_is_refused_not_left_to_crash_the_scan(tmp_path: Path) -> None:
    # The dosing loop divides by it: a 0 passed check-config and ended the daemon at the
    # first pH phase (ZeroDivisionError in every scan).
    problems = _problems(_edited(tmp_path, ("[control.ph]", "[control.ph]\nkp_ml = 0.0")))
    assert problems == ["control.ph.kp_ml: Input should be greater than 0 (got 0.0)"]


def test_two_devices_in_one_role_are_refused_at_devices(tmp_path: Path) -> None:
    path = _edited(tmp_path, append='\n[devices.TT-102]\nkind = "rtd"\n')
    assert _problems(path) == [
        "devices: exactly one device of kind 'rtd' is needed, found ['TT-101', 'TT-102']"
    ]


def test_a_missing_role_is_refused_naming_it(tmp_path: Path) -> None:
    path = _edited(tmp_path, ('function = "purge_valve"', 'function = "agitator"'))
    problems = _problems(path)
    assert len(problems) == 2
    assert problems[0].startswith("devices: exactly one coil with function 'agitator' is needed")
    assert (
        problems[1] == "devices: exactly one coil with function 'purge_valve' is needed, found []"
    )


def test_a_relay_or_input_wired_to_two_devices_is_refused_on_any_backend(tmp_path: Path) -> None:
    # On the board one channel would drive two outputs (the heater's SSR and the fill pump) or
    # read two switches; `sim --backend serial` and `emulate` take a mock config to serial too.
    path = _edited(tmp_path, ("relay = 3", "relay = 0"), ("input = 4", "input = 1"))
    assert _problems(path) == [
        "devices: relay 0 is wired to more than one device: E-101, P-101 (a device without "
        "`relay =` is on relay 0)",
        "devices: input 1 is wired to more than one device: LSL-101, HS-100",
    ]


def test_level_switches_out_of_order_are_refused(tmp_path: Path) -> None:
    path = _edited(tmp_path, ("at_l = 40.0", "at_l = 120.0"))
    assert _problems(path) == [
        "devices: level switches must rise low_low < low < high < high_high, "
        "got [15.0, 120.0, 100.0, 112.0]"
    ]


def test_reagent_cap_for_a_pump_the_unit_lacks_is_refused(tmp_path: Path) -> None:
    path = _edited(
        tmp_path, ('reagent_cap_ml = { "P-205" = 60000.0 }', "reagent_cap_ml = { P-999 = 10.0 }")
    )
    (problem,) = _problems(path)
    assert problem.startswith("interlocks: reagent_cap_ml names pumps the unit lacks: ['P-999']")
    assert "P-201, P-202, P-203, P-204, P-205" in problem


def test_reagent_cap_for_a_real_pump_applies_to_that_pump_only(tmp_path: Path) -> None:
    path = _edited(
        tmp_path, ('reagent_cap_ml = { "P-205" = 60000.0 }', "reagent_cap_ml = { P-201 = 750.0 }")
    )
    config = load_config(path)
    assert config.reagent_cap_ml("P-201") == 750.0
    assert config.reagent_cap_ml("P-203") == config.interlocks.default_reagent_cap_ml


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = _edited(
        tmp_path,
        ('id = "sim-unit-01"\n', ""),
        ("scan_period_s = 0.1", "scan_period_s = 0"),
        ("max_temperature_setpoint_c = 85.0", "max_temperature_setpoint_c = 91.0"),
        append='\n[devices.TT-102]\nkind = "rtd"\n',
    )
    problems = _problems(path)
    assert [p.split(":")[0] for p in problems] == [
        "unit.id",
        "unit.scan_period_s",
        "devices",
        "interlocks",
    ]


def test_serial_backend_needs_a_port_for_every_uart_device_and_the_relay_board(
    tmp_path: Path,
) -> None:
    path = _edited(tmp_path, ('backend = "mock"', 'backend = "serial"'))
    problems = _problems(path)
    assert (
        "devices: TT-101.port: needed on the serial backend (its stable path, /dev/unit/TT-101: "
        "deploy/list-adapters shows them)" in problems
    )
    # Each problem where it is fixed: the relay board's port in [hal.serial], not in devices.
    assert (
        "hal.serial.relay_board_port: needed on the serial backend (the relay board's stable "
        "path, /dev/unit/relay-board: deploy/list-adapters shows them)" in problems
    )
    assert not any(p.startswith("devices: hal.") for p in problems)
    assert len(problems) == 8  # RTD, pH, five pumps, the relay board


def test_serial_backend_with_its_ports_is_a_valid_config(tmp_path: Path) -> None:
    text = EXAMPLE.replace(
        'backend = "mock"',
        'backend = "serial"\n[hal.serial]\nrelay_board_port = "/dev/serial/by-id/relay"',
    )
    for tag in ("TT-101", "AT-101", "P-201", "P-202", "P-203", "P-204", "P-205"):
        text = text.replace(
            f"[devices.{tag}]\n", f'[devices.{tag}]\nport = "/dev/serial/by-id/{tag}"\n'
        )
    path = tmp_path / "unit.toml"
    path.write_text(text)
    config = load_config(path)
    assert config.hal.backend == "serial"
    assert config.hal.serial.relay_board_port == "/dev/serial/by-id/relay"


def test_a_port_that_is_not_an_absolute_path_is_named(tmp_path: Path) -> None:
    # Found by an installer: "dev/ttyUSB0" and a trailing space passed, to find nothing later.
    text = EXAMPLE.replace(
        'backend = "mock"',
        'backend = "serial"\n[hal.serial]\nrelay_board_port = "/dev/unit/relay-board "',
    )
    for tag in ("TT-101", "AT-101", "P-201", "P-202", "P-203", "P-204", "P-205"):
        port = "dev/ttyUSB0" if tag == "TT-101" else f"/dev/unit/{tag}"
        text = text.replace(f"[devices.{tag}]\n", f'[devices.{tag}]\nport = "{port}"\n')
    problems = _problems_of(tmp_path, text)
    assert (
        "devices: TT-101.port: 'dev/ttyUSB0' is not an absolute path (e.g. /dev/unit/...)"
        in problems
    )
    assert "hal.serial.relay_board_port: '/dev/unit/relay-board ' has spaces around it" in problems
    assert len(problems) == 2, problems


# --- files that are not configs ---------------------------------------------------------------


def test_missing_file_is_one_problem_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert _problems(path) == [f"{path}: no such file"]


def test_bad_toml_is_one_problem_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[unit]\nid = \n", encoding="utf-8")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}: not valid TOML")
    assert "line 2" in problem


def test_a_directory_or_binary_file_cannot_be_read(tmp_path: Path) -> None:
    binary = tmp_path / "unit.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert _problems(tmp_path)[0] == f"{tmp_path}: is a directory, not a file"
    assert _problems(binary)[0].startswith(f"{binary}: cannot read")


def test_an_empty_file_lacks_unit_and_devices(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    assert _problems(path) == ["unit: Field required", "devices: Field required"]


def _problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "unit.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_a_socket_group_that_does_not_exist_here_is_named(tmp_path: Path) -> None:
    text = EXAMPLE.replace("[console]\n", '[console]\ngroup = "no-such-group-here"\n', 1)
    problems = _problems_of(tmp_path, text)
    assert any(p.startswith("console.group:") and "no such group" in p for p in problems), problems


def test_tls_files_that_cannot_be_loaded_are_named(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not a certificate\n")
    text = EXAMPLE.replace("[mqtt]\n", f'[mqtt]\nurl = "mqtts://broker"\nca_file = "{ca}"\n', 1)
    problems = _problems_of(tmp_path, text)
    assert any(str(ca) in p and "not a usable CA bundle" in p for p in problems), problems


def test_a_client_certificate_that_cannot_be_loaded_is_named(tmp_path: Path) -> None:
    cert, key = tmp_path / "unit.crt", tmp_path / "unit.key"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    text = EXAMPLE.replace(
        "[mqtt]\n", f'[mqtt]\nurl = "mqtts://broker"\ncert_file = "{cert}"\nkey_file = "{key}"\n', 1
    )
    problems = _problems_of(tmp_path, text)
    named = [p for p in problems if str(cert) in p and "not a usable certificate and key" in p]
    assert named, problems


def test_batches_must_be_kept_at_least_as_long_as_events(tmp_path: Path) -> None:
    text = EXAMPLE.replace("keep_batches_days = 730.0", "keep_batches_days = 30", 1)
    text = text.replace("keep_days = 90.0", "keep_days = 400", 1)
    problems = _problems_of(tmp_path, text)
    assert any(p.startswith("journal:") and "keep_batches_days (30)" in p for p in problems)


def test_the_clock_must_be_synchronised_on_a_real_unit_not_on_the_simulator() -> None:
    assert load_config(ROOT / "deploy/examples/sim.toml").clock_sync_required is False
    real = load_config(ROOT / "deploy/examples/unit.toml")
    assert real.clock_sync_required is True
    assert str(real.clock.synchronized_flag) == "/run/systemd/timesync/synchronized"
    assert (real.journal.keep_days, real.journal.keep_batches_days) == (90.0, 730.0)


def test_a_password_in_the_broker_url_is_refused_and_never_echoed() -> None:
    from hal.schema import ValidationError
    from unit_controller.mqtt.settings import MqttSettings
    from unit_controller.tomlfile import validation_problems

    with pytest.raises(ValidationError) as caught:
        MqttSettings.model_validate({"url": "mqtts://alice:s3cret@broker.example:8883"})
    text = "\n".join(validation_problems(caught.value))
    assert "username / password_file" in text
    assert "s3cret" not in text
    assert "***@broker.example" in text


def test_toml_arrays_still_read_as_pairs_and_lists_with_their_items_strict(tmp_path: Path) -> None:
    config = load_config(_edited(tmp_path, append="\n[sim.envelope]\nph_tau_s = [5, 12.5]\n"))
    assert config.sim.envelope["ph_tau_s"] == (5.0, 12.5)
    (problem,) = _problems(_edited(tmp_path, append='\n[sim.envelope]\nph_tau_s = ["5", 9]\n'))
    assert problem.startswith("sim.envelope.ph_tau_s[0]: Input should be a valid number (got '5')")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "mqtt.ca_file: is empty: give the file's path, or leave the key out"),
        ("{dir}", "mqtt.ca_file: {dir} is a directory, not a file"),
        ("/dev/null", "mqtt.ca_file: /dev/null is not a regular file"),
        ("{dangling}", "mqtt.ca_file: {dangling} is a link to nothing"),
        ("{dir}/none.crt", "mqtt.ca_file: no such file: {dir}/none.crt"),
    ],
)
def test_a_tls_file_that_is_not_a_file_says_what_it_is(
    tmp_path: Path, value: str, problem: str
) -> None:
    dangling = tmp_path / "dangling.crt"
    dangling.symlink_to(tmp_path / "gone")
    names = {"dir": tmp_path, "dangling": dangling}
    text = EXAMPLE.replace("[mqtt]\n", f'[mqtt]\nca_file = "{value.format(**names)}"\n', 1)
    (found,) = _problems_of(tmp_path, text)
    assert found.startswith(problem.format(**names)), found


def test_two_instruments_on_one_serial_port_are_refused(tmp_path: Path) -> None:
    # Each driver locks its port: which of the two gets it would be a race at every start.
    text = EXAMPLE.replace(
        'backend = "mock"',
        'backend = "serial"\n[hal.serial]\nrelay_board_port = "/dev/serial/by-id/TT-101"',
    )
    for tag in ("TT-101", "AT-101", "P-201", "P-202", "P-203", "P-204", "P-205"):
        port = "P-201" if tag == "P-202" else tag
        text = text.replace(
            f"[devices.{tag}]\n", f'[devices.{tag}]\nport = "/dev/serial/by-id/{port}"\n'
        )
    path = tmp_path / "unit.toml"
    path.write_text(text)
    assert _problems(path) == [
        "devices: TT-101.port: /dev/serial/by-id/TT-101 is given to TT-101 and the relay board: "
        "each instrument needs its own port",
        "devices: P-201.port: /dev/serial/by-id/P-201 is given to P-201 and P-202: each "
        "instrument needs its own port",
    ]


def test_serial_ports_on_the_default_backend_are_refused_not_simulated(tmp_path: Path) -> None:
    # A real unit's config that lost its [hal] would run the simulator, quietly.
    path = _edited(
        tmp_path,
        ('[hal]\nbackend = "mock"\n', ""),
        ("[devices.TT-101]\n", '[devices.TT-101]\nport = "/dev/serial/by-id/TT-101"\n'),
    )
    (problem,) = _problems(path)
    assert problem.startswith("hal.backend: not set, so the simulator ('mock') runs, but the "
                              "config names serial ports (TT-101)")  # fmt: skip
    # Said outright, the simulator may keep ports (a config shared with `emulate`).
    said = _edited(
        tmp_path, ("[devices.TT-101]\n", '[devices.TT-101]\nport = "/dev/serial/by-id/TT-101"\n')
    )
    assert load_config(said).hal.backend == "mock"


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (("temperature_high_high_c = 90.0", "temperature_high_high_c = 89.0"), None),
        (
            ('stale_s = 5.0\n', "stale_s = 5.0\nmax_c = 85.0\n"),
            "interlocks: temperature_high_high_c (90) must be below the range of TT-101 (max_c 85)",
        ),
        (
            ('stale_s = 10.0\n', "stale_s = 10.0\nmax_ph = 12.0\n"),
            "interlocks: pH setpoints 0..13 must lie inside the range of AT-101 (-1..12)",
        ),
        (
            ("temperature_high_high_c = 90.0", "temperature_high_high_c = 90.0\n"
             "heater_off_window_s = 30.0"),
            "interlocks: heater_off_rise_c (3 °C) within heater_off_window_s (30 s) is more than "
            "E-101 (6000 W) can raise 112 L at LSHH-101 (at most 0.33 °C)",
        ),
        (
            ("temperature_high_high_c = 90.0", "temperature_high_high_c = 90.0\n"
             "heater_off_settle_s = 3600.0"),
            "interlocks.heater_off_settle_s: Input should be less than or equal to 1200",
        ),
        (
            ("[control.ph]\n", "[control.ph]\nmin_dose_ml = 100.0\nmax_dose_ml = 1.0\n"),
            "control.ph: min_dose_ml (100) must not be above max_dose_ml (1)",
        ),
        (
            ("[unit]\n", '[unit]\nstate_dir = ""\n'),
            "unit.state_dir: must be an absolute path (got '')",
        ),
        (
            ("[unit]\n", '[unit]\nstate_dir = "relative/dir"\n'),
            "unit.state_dir: must be an absolute path (got 'relative/dir')",
        ),
        (
            ('synchronized_flag = "/run/systemd/timesync/synchronized"', 'synchronized_flag = ""'),
            "clock.synchronized_flag: must be an absolute path (got '')",
        ),
    ],
)  # fmt: skip
def test_limits_the_units_instruments_could_never_show_reached_are_refused(
    tmp_path: Path, edit: tuple[str, str], problem: str | None
) -> None:
    path = _edited(tmp_path, edit)
    if problem is None:
        load_config(path)
        return
    problems = _problems(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


def test_two_operators_with_one_key_are_refused(tmp_path: Path) -> None:
    # Either could sign as the other, and the journal would name whoever the command said.
    from unit_controller.mqtt.signing import new_private_key, public_key_text

    key = public_key_text(new_private_key(tmp_path / "alice.key"))
    other = public_key_text(new_private_key(tmp_path / "carol.key"))
    operators = "".join(
        f'\n[[mqtt.operators]]\nname = "{name}"\npublic_key = "{k}"\n'
        for name, k in (("alice", key), ("bob", key), ("carol", other))
    )
    (problem,) = _problems(_edited(tmp_path, append=operators))
    assert problem == "mqtt: operators: alice and bob have the same public_key"
