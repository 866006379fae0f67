"""A simulated unit: the plant model with mock devices wired to it, and fault injection.

The simulation driver calls `step(dt)` after advancing the clock; nothing here blocks.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from typing import ClassVar

from hal.board import Board
from hal.clock import Clock
from hal.log import get_logger
from hal.mock.devices import (
    MockCoil,
    MockDigitalInput,
    MockHeaterSsr,
    MockPhProbe,
    MockRtd,
)
from hal.mock.pump import MockDosingPump
from hal.sim.faults import DEVICE_AWAY_S, FaultSpec
from hal.sim.params import PlantParams
from hal.sim.plant import Plant
from hal.sim.sensors import PhElectrode, SensorModel
from hal.wiring import BoardWiring, CoilFunction, LevelPoint, Reagent

# A device that may stop answering (fault device_silent).
_Answering = MockDigitalInput | MockDosingPump | MockRtd | MockPhProbe

log = get_logger(__name__)

# A drifting pH probe walks off this fast (pH per minute); a coated electrode drifts downward.
PH_DRIFT_PER_MIN = -0.05


class UnknownFault(ValueError):
    """A fault name this backend does not know, or a tag it cannot apply to."""


class SimulatedUnit:
    """Plant + mock devices + faults; `board` is what the controller sees."""

    FAULTS: ClassVar[dict[str, str]] = {
        "ph_probe_dead": "the pH circuit answers every read with *ER",
        "ph_probe_stuck": "the pH reading freezes at its current value",
        "ph_probe_drift": f"the pH reading drifts {PH_DRIFT_PER_MIN:+} pH/min",
        "rtd_dead": "the RTD opens; the circuit reads -1023 °C",
        "rtd_stuck": "the temperature reading freezes at its current value",
        "ssr_welded": "the heater SSR fails shorted (on whenever the contactor is closed)",
        "heater_open": "the heater element goes open circuit (no power)",
        "level_low_low_stuck": "LSLL reads dry although covered",
        "level_high_high": "LSHH reads wet (foam reaching the switch)",
        "dosing_pump_stall": "a pump stops delivering (:TAG, default the pH pump in use)",
        "pump_motor_unpowered": "a pump's motor loses its supply; its circuit refuses every run "
        "(*UV,PUMPPWR) (:TAG, default the pH pump in use)",
        "estop": "the E-stop is pressed",
        "cooling_valve_stuck": "the jacket cooling valve XV-103 stays shut whatever its coil",
        "relay_refused": "the relay board refuses every write to one coil (:TAG, default the "
        "agitator M-101; the heater's tag: its SSR drive); an on-coil drops out when its lease "
        "ends",
        "device_silent": f"a device stops answering for {DEVICE_AWAY_S:g} s (:TAG an EZO "
        "circuit, or one input of the relay board; default the pH probe); a pump's last run "
        "ends by itself",
    }

    def __init__(
        self, *, wiring: BoardWiring, params: PlantParams, clock: Clock, seed: int
    ) -> None:
        self.wiring = wiring
        self.params = params
        self.clock = clock
        # Read every step: plain floats, not the parameters model's attributes.
        self._ph_tau_s = params.ph_tau_s
        self._ph_fouling_s_per_h = params.ph_fouling_s_per_h
        rng = random.Random(seed)
        self.plant = Plant(params=params, wiring=wiring)
        self.rtd = MockRtd(
            tag=wiring.rtd_tag,
            clock=clock,
            model=SensorModel(
                tau_s=params.rtd_tau_s,
                dead_time_s=0.0,
                noise=params.rtd_noise_c,
                rng=random.Random(rng.random()),
                initial=self.plant.temperature_c,
            ),
        )
        self.ph = MockPhProbe(
            tag=wiring.ph_tag,
            clock=clock,
            model=SensorModel(
                tau_s=params.ph_tau_s,
                dead_time_s=params.ph_dead_time_s,
                noise=0.0,  # the electrode adds it, after the circuit's conversion
                rng=random.Random(rng.random()),
                initial=self.plant.ph,
            ),
            electrode=PhElectrode(
                offset_ph=params.ph_offset,
                drift_ph_per_s=params.ph_drift_per_h / 3600.0,
                noise=params.ph_noise,
                spikes_per_s=params.ph_spikes_per_h / 3600.0,
                spike_size=params.ph_spike_size,
                rng=random.Random(rng.random()),
            ),
        )
        self.ph.process_c = self.plant.temperature_c
        # Hours the electrode has spent in a slurry of precipitate: it coats and slows.
        self.fouled_s = 0.0
        self.heater = MockHeaterSsr(tag=wiring.heater_tag, clock=clock)
        self.coils = {
            f: MockCoil(tag=wiring.coil_tag(f), clock=clock, lease_s=wiring.coil(f).lease_s)
            for f in wiring.coil_functions()
        }
        self.levels = {
            p: MockDigitalInput(tag=wiring.level_tag(p), clock=clock) for p in LevelPoint
        }
        self.estop = MockDigitalInput(tag=wiring.estop_tag, clock=clock)
        # Each pump's tubing delivers within ±pump_error of what its circuit counts.
        pump_rng = random.Random(rng.random())
        self.pumps = {
            tag: MockDosingPump(
                tag=tag,
                clock=clock,
                max_ml_min=w.max_ml_min,
                lease_s=w.run_bound_min * 60.0,  # the circuit's own bound, as on the real unit
                delivery_factor=1.0 + pump_rng.uniform(-params.pump_error, params.pump_error),
            )
            for tag, w in sorted(wiring.pumps().items())
        }
        self.board = Board(
            temperature=self.rtd,
            ph=self.ph,
            heater=self.heater,
            coils=dict(self.coils),
            levels=dict(self.levels),
            estop=self.estop,
            pumps=dict(self.pumps),
        )
        self.injected: list[FaultSpec] = []
        # Pumps dosing into a measuring cylinder (a console jog to calibrate one), asked each
        # step: the tech holds the tube over a cylinder, so the plant never gets that dose.
        self.cylinder_pumps: Callable[[], Collection[str]] | None = None
        self._sample_all()

    def held_outputs(self) -> dict[str, object]:
        """What the devices hold now (not what the controller commanded): heater 1.0/0.0, each
        coil by its short name, each pump's rate in mL/min."""
        names = {
            CoilFunction.CONTACTOR: "contactor",
            CoilFunction.AGITATOR: "agitator",
            CoilFunction.FILL_PUMP: "fill",
            CoilFunction.DRAIN_VALVE: "drain",
            CoilFunction.PURGE_VALVE: "purge",
            CoilFunction.COOLING_VALVE: "cooling",
        }
        held: dict[str, object] = {"heater": 1.0 if self.heater.conducting else 0.0}
        held |= {names.get(f, str(f)): coil.energised for f, coil in sorted(self.coils.items())}
        held["pumps"] = {tag: round(p.commanded_ml_min(), 3) for tag, p in self.pumps.items()}
        return held

    def preload(self, preset: str) -> None:
        """Fill the reactor as a recipe's `starts_with` expects (simulator only)."""
        self.plant.preload(preset)
        self.rtd.model.reset(self.plant.temperature_c)
        self.ph.model.reset(self.plant.ph)
        self._sample_all()

    def _sample_all(self) -> None:
        # Instruments have a first reading by the time the controller starts scanning.
        self.rtd.resample(self.plant.temperature_c)
        self.ph.resample(self.plant.ph)
        self._sample_inputs()

    def step(self, dt: float) -> None:
        """Advance the plant by `dt` under the outputs the devices hold, then sample inputs."""
        plant = self.plant
        # Nothing here moves the clock: read it once for every device.
        now = self.clock.monotonic()
        coils = self.coils
        plant.ssr_on = self.heater.conducting_at(now)
        plant.contactor_closed = coils[CoilFunction.CONTACTOR].energised_at(now)
        plant.agitator_on = coils[CoilFunction.AGITATOR].energised_at(now)
        plant.fill_pump_on = coils[CoilFunction.FILL_PUMP].energised_at(now)
        plant.drain_open = coils[CoilFunction.DRAIN_VALVE].energised_at(now)
        plant.purge_on = coils[CoilFunction.PURGE_VALVE].energised_at(now)
        cooling = coils.get(CoilFunction.COOLING_VALVE)
        plant.cooling_open = (
            cooling is not None and cooling.energised_at(now) and not self.cooling_stuck
        )
        rates = plant.pump_ml_min
        for tag, pump in self.pumps.items():
            rates[tag] = pump.step(dt, now=now)
        if self.cylinder_pumps is not None:
            for tag in self.cylinder_pumps():
                if tag in rates:
                    rates[tag] = 0.0
        plant.step(dt)
        if plant.solids_present:
            self.fouled_s += dt
        self.ph.model.tau_s = self._ph_tau_s + self._ph_fouling_s_per_h * (self.fouled_s / 3600.0)
        self.ph.process_c = plant.temperature_c
        self.rtd.sample(plant.temperature_c, dt)
        self.ph.sample(plant.ph, dt)
        self._sample_inputs(now)

    def _sample_inputs(self, now: float | None = None) -> None:
        if now is None:
            now = self.clock.monotonic()
        plant = self.plant
        for point, switch in self.levels.items():
            switch.sample(plant.wet(point), now=now)
        self.estop.sample(self._estop_pressed, now=now)

    _estop_pressed = False
    cooling_stuck = False  # fault: XV-103 stays shut whatever its coil

    def check_fault(self, fault: FaultSpec) -> None:
        """Raise UnknownFault unless this unit can inject `fault`."""
        self._fault_action(fault)

    def inject(self, fault: FaultSpec) -> None:
        """Make `fault` happen now."""
        self._fault_action(fault)()
        self.injected.append(fault)
        log.warning(
            "sim.fault_injected",
            fault=fault.name,
            tag=fault.tag,
            at_s=round(self.clock.monotonic(), 1),
        )

    def _fault_action(self, fault: FaultSpec) -> Callable[[], None]:
        name = fault.name
        if name not in self.FAULTS:
            raise UnknownFault(
                f"unknown fault {name!r}; the simulator knows: {', '.join(sorted(self.FAULTS))}"
            )
        if name in ("dosing_pump_stall", "pump_motor_unpowered"):
            tag = (fault.tag or self._default_base_pump()).upper()  # as the other faults' tags
            if tag not in self.pumps:
                raise UnknownFault(
                    f"{name}: no pump {tag!r} (pumps: {', '.join(sorted(self.pumps))})"
                )
            pump = self.pumps[tag]
            flag = "stalled" if name == "dosing_pump_stall" else "motor_unpowered"
            return lambda: setattr(pump, flag, True)
        if name == "device_silent":
            devices = self._answering_devices()
            tag = fault.tag or self.wiring.ph_tag
            device = devices.get(tag.upper())
            if device is None:
                raise UnknownFault(
                    f"device_silent: no device {tag!r} (devices: {', '.join(sorted(devices))})"
                )
            return lambda: device.go_silent(DEVICE_AWAY_S)
        if name == "relay_refused":
            coils: dict[str, MockCoil | MockHeaterSsr] = {
                coil.tag: coil for coil in self.coils.values()
            }
            coils[self.heater.tag.upper()] = self.heater  # the SSR's drive is a relay too
            tag = (fault.tag or self.coils[CoilFunction.AGITATOR].tag).upper()
            if tag not in coils:
                raise UnknownFault(
                    f"relay_refused: no coil {tag!r} (coils: {', '.join(sorted(coils))})"
                )
            coil = coils[tag]
            return lambda: setattr(coil, "refused", True)
        if name == "cooling_valve_stuck" and CoilFunction.COOLING_VALVE not in self.coils:
            raise UnknownFault("cooling_valve_stuck: this unit has no jacket cooling valve")
        if fault.tag is not None:
            raise UnknownFault(
                f"fault {name!r} takes no :TAG (only dosing_pump_stall, pump_motor_unpowered, "
                "device_silent and relay_refused do)"
            )
        actions: dict[str, Callable[[], None]] = {
            "ph_probe_dead": lambda: setattr(self.ph, "error", True),
            "ph_probe_stuck": lambda: setattr(self.ph.model, "stuck", True),
            "ph_probe_drift": lambda: setattr(self.ph.model, "drift_per_s", PH_DRIFT_PER_MIN / 60),
            "rtd_dead": lambda: setattr(self.rtd, "open_circuit", True),
            "rtd_stuck": lambda: setattr(self.rtd.model, "stuck", True),
            "ssr_welded": lambda: setattr(self.heater, "welded", True),
            "heater_open": lambda: setattr(self.plant, "heater_open", True),
            "level_low_low_stuck": lambda: setattr(
                self.levels[LevelPoint.LOW_LOW], "forced", False
            ),
            "level_high_high": lambda: setattr(self.levels[LevelPoint.HIGH_HIGH], "forced", True),
            "estop": lambda: setattr(self, "_estop_pressed", True),
            "cooling_valve_stuck": lambda: setattr(self, "cooling_stuck", True),
        }
        return actions[name]

    def _answering_devices(
        self,
    ) -> dict[str, MockDigitalInput | MockDosingPump | MockRtd | MockPhProbe]:
        devices: dict[str, MockDigitalInput | MockDosingPump | MockRtd | MockPhProbe] = {
            self.rtd.tag: self.rtd,
            self.ph.tag: self.ph,
            self.estop.tag: self.estop,
        }
        devices |= {switch.tag: switch for switch in self.levels.values()}
        devices |= self.pumps
        return devices

    def _default_base_pump(self) -> str:
        bases = [t for t, w in self.wiring.pumps().items() if w.reagent is Reagent.NAOH]
        return bases[0] if bases else next(iter(self.pumps))
