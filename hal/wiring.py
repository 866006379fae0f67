"""Device wiring by tag, as read from the `[devices]` section of the unit's config.

Owned by `hal` so that a `Board` can be built without knowing the controller; validated once.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Literal

from hal.schema import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

TAG_PATTERN = r"^[A-Z][A-Z0-9]*-[0-9]{2,4}[A-Z]?$"


class CoilFunction(StrEnum):
    """What a relay coil drives."""

    CONTACTOR = "contactor"
    AGITATOR = "agitator"
    FILL_PUMP = "fill_pump"
    DRAIN_VALVE = "drain_valve"
    PURGE_VALVE = "purge_valve"
    COOLING_VALVE = "cooling_valve"  # jacket cooling water, where fitted (XV-103)


# Every unit has one coil of each of these; the others are optional (at most one).
REQUIRED_COILS = frozenset(
    {
        CoilFunction.CONTACTOR,
        CoilFunction.AGITATOR,
        CoilFunction.FILL_PUMP,
        CoilFunction.DRAIN_VALVE,
        CoilFunction.PURGE_VALVE,
    }
)


class LevelPoint(StrEnum):
    """Which level switch."""

    LOW_LOW = "low_low"
    LOW = "low"
    HIGH = "high"
    HIGH_HIGH = "high_high"


class Reagent(StrEnum):
    """What a dosing pump delivers (the simulator uses it for chemistry)."""

    H2SO4 = "h2so4"
    H2O2 = "h2o2"
    NAOH = "naoh"
    NH4OH = "nh4oh"
    METAL_SULFATE = "metal_sulfate"


# Every model of the unit's config: a quoted "30" or "yes" is a mistake, not a number or a
# switch; NaN and inf pass every comparison a limit makes, so they are refused too. An enum, a
# path or a tuple field opts out (strict=False) where a TOML string or array is its form.
STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class _Device(BaseModel):
    model_config = STRICT
    description: str = ""
    port: str | None = Field(default=None, description="serial port, by stable path")


class RtdWiring(_Device):
    """EZO-RTD reactor temperature probe."""

    kind: Literal["rtd"]
    # At least two of the circuit's ~1 s reads: less and every reading goes stale between two.
    stale_s: float = Field(default=5.0, ge=2, le=60)
    min_c: float = Field(default=-20.0, ge=-50, le=50)
    max_c: float = Field(default=150.0, ge=50, le=300)


class PhProbeWiring(_Device):
    """EZO-pH reactor pH probe."""

    kind: Literal["ph_probe"]
    stale_s: float = Field(default=10.0, ge=2, le=120)
    min_ph: float = Field(default=-1.0, ge=-2, le=2)
    max_ph: float = Field(default=15.0, ge=12, le=16)


class HeaterWiring(_Device):
    """Heater SSR on a relay-board channel with timed flash-on."""

    kind: Literal["heater"]
    power_w: float = Field(default=6000.0, gt=0, le=50_000)
    relay: int = Field(default=0, ge=0, le=255)
    element_lag_s: float = Field(
        default=120.0,
        ge=0,
        le=600,
        description="the element's time constant: the heat it still gives once switched off",
    )


class CoilWiring(_Device):
    """A relay-board coil."""

    kind: Literal["coil"]
    function: CoilFunction = Field(strict=False)
    relay: int = Field(default=0, ge=0, le=255)
    flow_l_min: float = Field(
        default=0.0, ge=0, le=200, description="pumps, drain valve; cooling water through XV-103"
    )
    ua_w_k: float = Field(
        default=0.0, ge=0, le=5000, description="cooling valve: the jacket's heat transfer, W/K"
    )
    lease_s: float = Field(
        default=10.0,
        ge=4.0,
        le=60.0,
        description="an on-coil is a timed flash-on this long, renewed while wanted: what it "
        "stays on at most once the controller stops renewing it",
    )

    @model_validator(mode="after")
    def _cooling_needs_a_jacket(self) -> CoilWiring:
        if self.function is CoilFunction.COOLING_VALVE and not (
            self.ua_w_k >= _LEAST_JACKET and self.flow_l_min >= _LEAST_JACKET
        ):
            raise ValueError(
                "a cooling_valve needs the jacket's ua_w_k (W/K) and its cooling-water "
                f"flow_l_min, both at least {_LEAST_JACKET:g}"
            )
        return self


# A jacket's least heat transfer (W/K) and water flow (L/min): the jacket's figures divide by
# the flow, and a flow that rounds to nothing is no jacket.
_LEAST_JACKET = 0.1


class LevelSwitchWiring(_Device):
    """A level switch on a relay-board discrete input."""

    kind: Literal["level_switch"]
    point: LevelPoint = Field(strict=False)
    input: int = Field(default=0, ge=0, le=255)
    at_l: float = Field(gt=0, le=1000, description="liquid volume at which the switch is wet")


class EstopWiring(_Device):
    """The E-stop's auxiliary contact on a discrete input."""

    kind: Literal["estop"]
    input: int = Field(default=0, ge=0, le=255)


class DosingPumpWiring(_Device):
    """An EZO-PMP dosing or feed pump."""

    kind: Literal["dosing_pump"]
    reagent: Reagent = Field(strict=False)
    concentration_mol_l: float = Field(gt=0, le=25)
    min_ml_min: float = Field(default=0.5, ge=0.0, le=10)
    max_ml_min: float = Field(default=105.0, gt=0, le=105)
    run_bound_min: int = Field(
        default=1,
        ge=1,
        le=10,
        description="each run is a bounded DC,<rate>,<minutes> that the circuit ends by itself: "
        "what the pump runs at most once the controller stops renewing it. Whole minutes: "
        "the EZO-PMP takes no shorter run (1 is its least)",
    )

    @model_validator(mode="after")
    def _rates_ordered(self) -> DosingPumpWiring:
        if self.min_ml_min >= self.max_ml_min:
            raise ValueError(
                f"min_ml_min ({self.min_ml_min}) must be below max_ml_min ({self.max_ml_min})"
            )
        return self


DeviceWiring = Annotated[
    RtdWiring
    | PhProbeWiring
    | HeaterWiring
    | CoilWiring
    | LevelSwitchWiring
    | EstopWiring
    | DosingPumpWiring,
    Field(discriminator="kind"),
]


class BoardWiring(BaseModel):
    """Every device of the unit by tag, with the roles the controller needs resolved once."""

    model_config = STRICT
    devices: dict[Annotated[str, Field(pattern=TAG_PATTERN)], DeviceWiring]
    # role -> tag, resolved once: the scan asks for tags many times a second
    _roles: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _one_of_each_role(self) -> BoardWiring:
        problems = wiring_problems(self.devices)
        if problems:
            raise ValueError("; ".join(problems))
        for tag, device in self.devices.items():
            if isinstance(device, CoilWiring):
                self._roles[f"coil:{device.function}"] = tag
            elif isinstance(device, LevelSwitchWiring):
                self._roles[f"level:{device.point}"] = tag
            elif not isinstance(device, DosingPumpWiring):
                self._roles[device.kind] = tag
        return self

    def _only(self, kind: str) -> str:
        return self._roles[kind]

    @property
    def rtd_tag(self) -> str:
        """Tag of the reactor temperature probe."""
        return self._only("rtd")

    @property
    def ph_tag(self) -> str:
        """Tag of the reactor pH probe."""
        return self._only("ph_probe")

    @property
    def heater_tag(self) -> str:
        """Tag of the heater SSR."""
        return self._only("heater")

    @property
    def estop_tag(self) -> str:
        """Tag of the E-stop input."""
        return self._only("estop")

    def rtd(self) -> RtdWiring:
        """The temperature probe's wiring."""
        device = self.devices[self.rtd_tag]
        assert isinstance(device, RtdWiring)
        return device

    def ph_probe(self) -> PhProbeWiring:
        """The pH probe's wiring."""
        device = self.devices[self.ph_tag]
        assert isinstance(device, PhProbeWiring)
        return device

    def heater(self) -> HeaterWiring:
        """The heater's wiring."""
        device = self.devices[self.heater_tag]
        assert isinstance(device, HeaterWiring)
        return device

    def coil_tag(self, function: CoilFunction) -> str:
        """Tag of the coil that drives `function` (KeyError for an optional one not fitted)."""
        return self._roles[f"coil:{function}"]

    def has_coil(self, function: CoilFunction) -> bool:
        """Whether the unit has a coil for `function` (the optional ones may be missing)."""
        return f"coil:{function}" in self._roles

    def coil_functions(self) -> list[CoilFunction]:
        """The coil functions this unit has, in the enum's order."""
        return [f for f in CoilFunction if self.has_coil(f)]

    def coil(self, function: CoilFunction) -> CoilWiring:
        """Wiring of the coil that drives `function`."""
        device = self.devices[self.coil_tag(function)]
        assert isinstance(device, CoilWiring)
        return device

    def level_tag(self, point: LevelPoint) -> str:
        """Tag of the level switch at `point`."""
        return self._roles[f"level:{point}"]

    def level_switch(self, point: LevelPoint) -> LevelSwitchWiring:
        """Wiring of the level switch at `point`."""
        device = self.devices[self.level_tag(point)]
        assert isinstance(device, LevelSwitchWiring)
        return device

    def pumps(self) -> dict[str, DosingPumpWiring]:
        """Every dosing pump by tag."""
        return {t: d for t, d in self.devices.items() if isinstance(d, DosingPumpWiring)}


def wiring_problems(devices: Mapping[str, DeviceWiring]) -> list[str]:
    """What keeps `devices` from being one unit: each role once, level switches in order."""
    problems: list[str] = []
    for kind in ("rtd", "ph_probe", "heater", "estop"):
        tags = [t for t, d in devices.items() if d.kind == kind]
        if len(tags) != 1:
            problems.append(f"exactly one device of kind '{kind}' is needed, found {tags}")
    for function in CoilFunction:
        tags = [
            t for t, d in devices.items() if isinstance(d, CoilWiring) and d.function is function
        ]
        if function in REQUIRED_COILS and len(tags) != 1:
            problems.append(f"exactly one coil with function '{function}' is needed, found {tags}")
        elif len(tags) > 1:
            problems.append(f"at most one coil with function '{function}' is allowed, found {tags}")
    at: list[float] = []
    for point in LevelPoint:
        found = {
            t: d
            for t, d in devices.items()
            if isinstance(d, LevelSwitchWiring) and d.point is point
        }
        if len(found) != 1:
            problems.append(f"exactly one level switch at '{point}' is needed, found {list(found)}")
        at.extend(d.at_l for d in found.values())
    if not problems and (at != sorted(at) or len(set(at)) != len(at)):
        problems.append(f"level switches must rise low_low < low < high < high_high, got {at}")
    return problems


def relay_board_problems(devices: Mapping[str, DeviceWiring]) -> list[str]:
    """Relay and discrete-input numbers used twice: on the board one channel would drive (or
    read) two devices, so the serial backend refuses to start on them."""
    problems: list[str] = []
    for what, numbers in (
        (
            "relay",
            {t: d.relay for t, d in devices.items() if isinstance(d, HeaterWiring | CoilWiring)},
        ),
        (
            "input",
            {
                t: d.input
                for t, d in devices.items()
                if isinstance(d, LevelSwitchWiring | EstopWiring)
            },
        ),
    ):
        by_number: dict[int, list[str]] = {}
        for tag, number in numbers.items():
            by_number.setdefault(number, []).append(tag)
        problems.extend(
            f"{what} {number} is wired to more than one device: {', '.join(tags)}"
            + (f" (a device without `{what} =` is on {what} 0)" if number == 0 else "")
            for number, tags in sorted(by_number.items())
            if len(tags) > 1
        )
    return problems


class SerialSettings(BaseModel):
    """How the serial backend reaches the instruments (DESIGN §7): the relay board and timing."""

    model_config = STRICT
    relay_board_port: str | None = Field(
        default=None, description="the Modbus RTU relay/IO board, by stable path"
    )
    relay_board_slave: int = Field(default=1, ge=1, le=247)
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = 9600
    # Reply timeouts, retries and "device lost" limits are each driver's own, tuned to its
    # device (an EZO read takes ~900 ms; a Modbus write ~20 ms): see hal/serial.


# Starts a cross-check's problem that names its own location (see serial_port_problems).
OWN_LOCATION = "@"


def _port_shape_problem(port: str) -> str | None:
    """Why `port` cannot be a device's path, or None: it is opened as given, from the
    service's working directory, so a relative path or a stray space finds nothing."""
    if port != port.strip():
        return f"{port!r} has spaces around it"
    if any(ord(c) < 32 or ord(c) == 127 for c in port):
        return f"{port!r} holds a control character"
    if not port.startswith("/"):
        return f"{port!r} is not an absolute path (e.g. /dev/unit/...)"
    return None


def serial_port_problems(devices: dict[str, DeviceWiring], serial: SerialSettings) -> list[str]:
    """What the serial backend lacks: a port for every UART instrument and the relay board.

    A problem that lies outside the devices starts with `@` and its own location.
    """
    problems = [
        f"{tag}.port: needed on the serial backend (its stable path, /dev/unit/{tag}: "
        "deploy/list-adapters shows them)"
        for tag, device in devices.items()
        if isinstance(device, RtdWiring | PhProbeWiring | DosingPumpWiring) and not device.port
    ]
    if not serial.relay_board_port:
        problems.append(
            f"{OWN_LOCATION}hal.serial.relay_board_port: needed on the serial backend (the relay "
            "board's stable path, /dev/unit/relay-board: deploy/list-adapters shows them)"
        )
    for tag, device in devices.items():
        if device.port and (shape := _port_shape_problem(device.port)) is not None:
            problems.append(f"{tag}.port: {shape}")
    if serial.relay_board_port and (shape := _port_shape_problem(serial.relay_board_port)):
        problems.append(f"{OWN_LOCATION}hal.serial.relay_board_port: {shape}")
    # One port, one instrument: each driver locks its port, and which of two gets it is a race.
    users: dict[str, list[str]] = {}
    for tag, device in devices.items():
        if device.port:
            users.setdefault(device.port, []).append(tag)
    if serial.relay_board_port:
        users.setdefault(serial.relay_board_port, []).append("the relay board")
    for port, tags in users.items():
        if len(tags) > 1:  # the relay board comes last: the first is a device's tag
            problems.append(
                f"{tags[0]}.port: {port} is given to {' and '.join(tags)}: each instrument needs "
                "its own port"
            )
    return problems
