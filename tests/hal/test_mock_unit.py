"""Mock devices on the simulator: output leases expire by themselves and faults look real.

Built from the example config with a VirtualClock; time moves only when a test advances it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hal.clock import VirtualClock
from hal.mock.devices import RTD_OPEN_CIRCUIT_C
from hal.mock.unit import SimulatedUnit, UnknownFault
from hal.sim.faults import FaultSpec, parse_fault
from hal.wiring import CoilFunction, LevelPoint
from unit_controller.config import UnitConfig, load_config

DT = 0.1


@pytest.fixture(scope="module")
def config() -> UnitConfig:
    return load_config()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def unit(config: UnitConfig, clock: VirtualClock) -> SimulatedUnit:
    return SimulatedUnit(wiring=config.wiring, params=config.sim.plant, clock=clock, seed=1)


def _run(unit: SimulatedUnit, clock: VirtualClock, seconds: float, *, dt: float = DT) -> None:
    """Advance the clock and the plant together, as the sim driver does."""
    for _ in range(round(seconds / dt)):
        clock.advance(dt)
        unit.step(dt)


def _inject(unit: SimulatedUnit, text: str) -> None:
    unit.inject(parse_fault(text))


# --- output leases ----------------------------------------------------------------------------


def test_coil_drops_out_when_its_lease_is_not_renewed(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    agitator = unit.coils[CoilFunction.AGITATOR]
    lease_s = unit.wiring.coil(CoilFunction.AGITATOR).lease_s  # the wiring's bound: 10 s
    agitator.set(True)
    clock.advance(lease_s - 0.1)
    assert agitator.energised
    clock.advance(0.2)
    assert not agitator.energised


def test_renewing_a_coil_keeps_it_energised(unit: SimulatedUnit, clock: VirtualClock) -> None:
    purge = unit.coils[CoilFunction.PURGE_VALVE]
    for _ in range(10):
        purge.set(True)
        clock.advance(3.0)
        assert purge.energised


def test_coil_set_off_drops_out_at_once(unit: SimulatedUnit) -> None:
    contactor = unit.coils[CoilFunction.CONTACTOR]
    contactor.set(True)
    contactor.set(False)
    assert not contactor.energised


def test_heater_pulse_turns_off_by_itself_after_its_on_time(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    unit.heater.pulse(2.0)
    assert unit.heater.conducting
    clock.advance(1.9)
    assert unit.heater.conducting
    clock.advance(0.2)
    assert not unit.heater.conducting


def test_heater_pulse_of_zero_switches_off_now(unit: SimulatedUnit) -> None:
    unit.heater.pulse(30.0)
    unit.heater.pulse(0.0)
    assert not unit.heater.conducting


def test_pump_run_stops_after_its_lease(unit: SimulatedUnit, clock: VirtualClock) -> None:
    pump = unit.pumps["P-201"]
    bound_s = unit.wiring.pumps()["P-201"].run_bound_min * 60.0  # the circuit's DC bound
    pump.run(60.0)
    assert pump.commanded_ml_min() == 60.0
    clock.advance(bound_s - 0.1)
    assert pump.commanded_ml_min() == 60.0
    clock.advance(0.2)
    assert pump.commanded_ml_min() == 0.0


def test_pump_rate_is_clamped_to_what_the_pump_can_do(unit: SimulatedUnit) -> None:
    pump = unit.pumps["P-201"]
    pump.run(1000.0)
    assert pump.commanded_ml_min() == 105.0
    pump.run(-5.0)
    assert pump.commanded_ml_min() == 0.0


def test_a_pump_left_alone_doses_only_for_its_lease(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    unit.preload("water")
    unit.pumps["P-204"].run(60.0)  # 1 mL/s for the pump's 1 min run bound
    _run(unit, clock, 90.0)
    assert unit.plant.dosed_ml["P-204"] == pytest.approx(60.0, rel=0.031)  # tubing error
    assert unit.pumps["P-204"].dispensed_ml().value == pytest.approx(60.0, abs=0.11)


def test_stalled_pump_counts_dispensed_volume_but_delivers_nothing(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    unit.preload("water")
    _inject(unit, "dosing_pump_stall:P-201@0")
    for _ in range(10):  # 1 s at 60 mL/min on both pumps, renewed every scan
        unit.pumps["P-201"].run(60.0)
        unit.pumps["P-204"].run(60.0)
        _run(unit, clock, DT)
    stalled, healthy = unit.pumps["P-201"], unit.pumps["P-204"]
    assert stalled.stalled
    assert stalled.dispensed_ml().value == pytest.approx(1.0)
    assert unit.plant.dosed_ml["P-201"] == 0.0
    assert healthy.dispensed_ml().value == pytest.approx(1.0)
    # what reaches the reactor is what the pump counts, off by its tubing's error
    assert unit.plant.dosed_ml["P-204"] == pytest.approx(healthy.delivery_factor)


def test_each_pump_delivers_within_its_error_of_what_it_counts(config: UnitConfig) -> None:
    bound = config.sim.plant.pump_error
    factors = set()
    for seed in range(5):
        unit = SimulatedUnit(
            wiring=config.wiring, params=config.sim.plant, clock=VirtualClock(), seed=seed
        )
        for pump in unit.pumps.values():
            assert 1.0 - bound <= pump.delivery_factor <= 1.0 + bound
            factors.add(round(pump.delivery_factor, 6))
    assert len(factors) > 10  # drawn per pump and per seed, not one figure for all


def _settled_reading(unit: SimulatedUnit, clock: VirtualClock) -> float:
    _run(unit, clock, 300.0, dt=1.0)
    values = []
    for _ in range(120):
        _run(unit, clock, 1.0, dt=1.0)
        reading = unit.ph.latest().value
        assert reading is not None
        values.append(reading)
    return sum(values) / len(values)


def test_the_ph_reading_follows_the_compensation_temperature_it_is_given(
    config: UnitConfig,
) -> None:
    clock = VirtualClock()
    unit = SimulatedUnit(wiring=config.wiring, params=config.sim.plant, clock=clock, seed=2)
    unit.preload("purified_liquor")  # pH 5.5
    unit.plant.temperature_c = unit.ph.process_c = 60.0
    unit.ph.compensate(60.0)
    right = _settled_reading(unit, clock)
    unit.ph.compensate(25.0)  # the EZO's default when never told
    wrong = _settled_reading(unit, clock)
    true = unit.plant.ph
    # Nernst: away from pH 7 a wrong temperature scales the error by T_process/T_told
    assert abs(right - true) < 0.03
    assert wrong - true == pytest.approx((true - 7.0) * (333.15 / 298.15 - 1.0), abs=0.03)


def test_a_positive_offset_reads_high(config: UnitConfig) -> None:
    params = config.sim.plant.model_copy(update={"ph_offset": 0.05, "ph_drift_per_h": 0.0})
    clock = VirtualClock()
    unit = SimulatedUnit(wiring=config.wiring, params=params, clock=clock, seed=3)
    unit.preload("water")
    unit.ph.compensate(unit.plant.temperature_c)
    assert _settled_reading(unit, clock) - unit.plant.ph == pytest.approx(0.05, abs=0.01)
    assert unit.ph.bias(unit.plant.ph) == pytest.approx(0.05, abs=0.005)


def test_noise_and_spikes_are_on_the_reading(config: UnitConfig) -> None:
    params = config.sim.plant.model_copy(
        update={"ph_noise": 0.03, "ph_spikes_per_h": 600.0, "ph_offset": 0.0}
    )
    clock = VirtualClock()
    unit = SimulatedUnit(wiring=config.wiring, params=params, clock=clock, seed=4)
    unit.preload("water")
    unit.ph.compensate(unit.plant.temperature_c)
    _run(unit, clock, 100.0, dt=1.0)
    errors = []
    for _ in range(600):
        _run(unit, clock, 1.0, dt=1.0)
        reading = unit.ph.latest().value
        assert reading is not None
        errors.append(reading - unit.plant.ph)
    spikes = [e for e in errors if abs(e) > 0.15]
    assert 20 < len(spikes) < 300  # 10 a minute on average, one or two samples each
    ordinary = sorted(abs(e) for e in errors)[: len(errors) // 2]
    assert 0.01 < ordinary[-1] < 0.04  # the median absolute error of σ 0.03 noise ≈ 0.02


# --- faults -----------------------------------------------------------------------------------


def test_rtd_dead_reads_the_open_circuit_value(unit: SimulatedUnit, clock: VirtualClock) -> None:
    _run(unit, clock, 2.0)
    before = unit.rtd.latest()
    assert before.good
    assert before.value == pytest.approx(20.0, abs=0.5)
    _inject(unit, "rtd_dead@0")
    _run(unit, clock, 2.0)
    after = unit.rtd.latest()
    assert after.value == RTD_OPEN_CIRCUIT_C == -1023.0
    assert after.at > before.at  # a fresh reading: the circuit answers, with -1023


def test_ph_probe_dead_stops_the_readings_so_they_go_stale(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    _run(unit, clock, 2.0)
    _inject(unit, "ph_probe_dead@0")
    last = unit.ph.latest()
    _run(unit, clock, 12.0)
    assert unit.ph.latest() == last
    assert last.age(clock.monotonic()) > unit.wiring.ph_probe().stale_s


@pytest.mark.parametrize(("fault", "probe"), [("ph_probe_stuck", "ph"), ("rtd_stuck", "rtd")])
def test_stuck_probe_keeps_answering_with_a_frozen_value(
    unit: SimulatedUnit, clock: VirtualClock, fault: str, probe: str
) -> None:
    device = unit.ph if probe == "ph" else unit.rtd
    healthy = []
    for _ in range(10):
        _run(unit, clock, 1.0)
        healthy.append(device.latest().value)
    assert len(set(healthy)) > 1  # noise: a live probe never repeats itself for 10 s
    _inject(unit, f"{fault}@0")
    stuck = []
    for _ in range(10):
        _run(unit, clock, 1.0)
        reading = device.latest()
        assert reading.good
        assert reading.at == pytest.approx(clock.monotonic(), abs=1.0)  # fresh, not stale
        stuck.append(reading.value)
    assert len(set(stuck)) == 1


def test_ph_probe_drift_walks_the_reading_down_from_the_true_ph(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    unit.preload("water")
    _inject(unit, "ph_probe_drift@0")
    _run(unit, clock, 600.0, dt=1.0)
    reading = unit.ph.latest().value
    assert reading is not None
    assert reading - unit.plant.ph == pytest.approx(-0.5, abs=0.05)  # -0.05 pH/min for 10 min


def test_ssr_welded_conducts_without_being_told(unit: SimulatedUnit, clock: VirtualClock) -> None:
    _inject(unit, "ssr_welded@0")
    _run(unit, clock, DT)
    assert unit.heater.conducting
    assert unit.plant.ssr_on


def test_heater_open_gives_no_power_however_it_is_driven(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    unit.preload("water")
    _inject(unit, "heater_open@0")
    for _ in range(100):
        unit.coils[CoilFunction.CONTACTOR].set(True)
        unit.heater.pulse(1.0)
        _run(unit, clock, DT)
    assert unit.plant.heater_open
    assert unit.plant.heater_power_w == 0.0


def test_level_low_low_stuck_reads_dry_although_covered(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    unit.preload("water")
    lsll = unit.levels[LevelPoint.LOW_LOW]
    assert lsll.latest().value is True
    _inject(unit, "level_low_low_stuck@0")
    _run(unit, clock, DT)
    assert unit.plant.wet(LevelPoint.LOW_LOW)
    assert lsll.latest().value is False


def test_level_high_high_reads_wet_in_an_empty_vessel(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    lshh = unit.levels[LevelPoint.HIGH_HIGH]
    assert lshh.latest().value is False
    _inject(unit, "level_high_high@0")
    _run(unit, clock, DT)
    assert not unit.plant.wet(LevelPoint.HIGH_HIGH)
    assert lshh.latest().value is True


def test_estop_fault_makes_the_estop_input_read_pressed(
    unit: SimulatedUnit, clock: VirtualClock
) -> None:
    assert unit.estop.latest().value is False
    _inject(unit, "estop@0")
    _run(unit, clock, DT)
    reading = unit.estop.latest()
    assert reading.good
    assert reading.value is True


def test_pump_stall_without_a_tag_hits_the_units_base_pump(unit: SimulatedUnit) -> None:
    _inject(unit, "dosing_pump_stall@0")
    assert [tag for tag, pump in unit.pumps.items() if pump.stalled] == ["P-203"]  # NaOH


def test_injected_faults_are_recorded(unit: SimulatedUnit) -> None:
    _inject(unit, "estop@1")
    _inject(unit, "dosing_pump_stall:P-205@2")
    assert [str(f) for f in unit.injected] == ["estop@1", "dosing_pump_stall:P-205@2"]


def test_check_fault_changes_nothing(unit: SimulatedUnit, clock: VirtualClock) -> None:
    for name in SimulatedUnit.FAULTS:
        unit.check_fault(FaultSpec(name=name, tag=None, at_s=0.0))
    _run(unit, clock, DT)
    assert unit.injected == []
    assert unit.estop.latest().value is False
    assert not unit.heater.conducting
    assert not any(pump.stalled for pump in unit.pumps.values())


def test_unknown_fault_is_refused_listing_the_known_ones(unit: SimulatedUnit) -> None:
    with pytest.raises(UnknownFault, match="unknown fault 'ph_probe_melted'") as info:
        unit.check_fault(parse_fault("ph_probe_melted@5"))
    for name in SimulatedUnit.FAULTS:
        assert name in str(info.value)


def test_a_tag_on_a_fault_that_takes_none_is_refused(unit: SimulatedUnit) -> None:
    with pytest.raises(UnknownFault, match="'estop' takes no :TAG"):
        unit.check_fault(parse_fault("estop:HS-100@5"))


def test_pump_stall_on_a_pump_the_unit_lacks_is_refused_naming_its_pumps(
    unit: SimulatedUnit,
) -> None:
    with pytest.raises(UnknownFault, match="no pump 'P-999'") as info:
        unit.check_fault(parse_fault("dosing_pump_stall:P-999@5"))
    assert "P-201, P-202, P-203, P-204, P-205" in str(info.value)


def test_every_fault_the_simulator_knows_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [name for name in SimulatedUnit.FAULTS if f"`{name}" not in readme]
    assert missing == []


def test_a_pump_faults_tag_is_taken_in_any_case_as_the_other_faults_tags(
    unit: SimulatedUnit,
) -> None:
    _inject(unit, "dosing_pump_stall:p-201@0")
    _inject(unit, "pump_motor_unpowered:p-204@0")
    assert unit.pumps["P-201"].stalled
    assert unit.pumps["P-204"].motor_unpowered
