"""The cause-and-effect table (DESIGN §5): every interlock and permissive, one row each.

This is the page a safety reviewer signs. Each row says what is watched, when it holds, the
alarm and its priority, what the PackML machine must do, whether the alarm latches, which
outputs are forced and to what (`effects.py`), and whether hardware backs it independently of
this software. `interlocks.py` evaluates the rows; `render.py` prints them for people
(docs/cause-and-effect.md); the tests check each row against what the mock devices hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from unit_controller.interlocks.trip import Force, Priority, Trip, TripAction

_ALL = frozenset({Force.ALL})
_HEATER = frozenset({Force.HEATER})
_HEATER_HARD = frozenset({Force.HEATER, Force.CONTACTOR})
_TOO_HOT = frozenset({Force.HEATER, Force.CONTACTOR, Force.COOL})
_LOW_LOW = frozenset({Force.HEATER, Force.AGITATOR})
_INFLOWS = frozenset({Force.INFLOWS})
_DOSING = frozenset({Force.DOSING})
_STILL = frozenset({Force.HEATER, Force.DOSING})
_NOTHING: frozenset[Force] = frozenset()

ALWAYS = "always"
SOFTWARE_ONLY = "no: software only"


@dataclass(frozen=True, slots=True)
class Cause:
    """One row: a cause, its condition and its effect."""

    name: str  # the row's key, unique in the table
    alarm_id: str  # the alarm it raises (several rows may share one, e.g. reading_bad)
    device: str  # what is watched, for people
    condition: str  # when the row holds, for people
    priority: Priority
    action: TripAction
    forces: frozenset[Force]
    latch: bool
    alarms: str = ALWAYS  # when it alarms; otherwise it only forces (a permissive)
    hardware: str = SOFTWARE_ONLY
    # It judges what goes into the reactor's liquor as the pH probe sees it: a manual jog into
    # a measuring cylinder (pump calibration) doses despite it. Never a level or E-stop row.
    cylinder_exempt: bool = False
    # Judged on no reading of its device (a count the controller keeps): a lost device does
    # not leave it unknown.
    reads_its_device: bool = True

    def trip(
        self, tag: str, message: str, *, alarm: bool = True, also_reads: tuple[str, ...] = ()
    ) -> Trip:
        """This row holding now on device `tag`; a trip that does not alarm only forces.
        `also_reads`: the other devices whose readings it is judged on (TT-101 for a weld)."""
        own = (tag,) if self.reads_its_device else ()
        return Trip(
            alarm_id=self.alarm_id,
            tag=tag,
            priority=self.priority,
            action=self.action if alarm else TripAction.NONE,
            forces=self.forces,
            latch=self.latch,
            message=message,
            alarm=alarm,
            cause=self.name,
            inputs=None if not also_reads and self.reads_its_device else own + also_reads,
        )


# --- the E-stop ------------------------------------------------------------------------------
ESTOP_PRESSED = Cause(
    "estop_pressed",
    "estop",
    "HS-100 E-stop",
    "the E-stop input reads pressed",
    Priority.CRITICAL,
    TripAction.ABORT,
    _ALL,
    latch=True,
    hardware="yes: HS-100 is wired into the K-101 loop; heater power drops without software",
)
ESTOP_UNREADABLE = Cause(
    "estop_unreadable",
    "reading_bad",
    "HS-100 E-stop",
    "the E-stop input is bad or stale: acted on as pressed",
    Priority.CRITICAL,
    TripAction.ABORT,
    _ALL,
    latch=False,
    # The driver's first answer is due within the input's stale limit of its start: a boot is
    # not a fault (acted on as pressed meanwhile, but no critical alarm to acknowledge).
    alarms="once its first reading is overdue",
    hardware="yes: the K-101 loop does not depend on the input being read",
)
# --- temperature and the heater --------------------------------------------------------------
TEMPERATURE_HIGH_HIGH = Cause(
    "temperature_high_high",
    "temperature_high_high",
    "TT-101 temperature",
    "temperature at or above [interlocks] temperature_high_high_c",
    Priority.CRITICAL,
    TripAction.ABORT,
    _TOO_HOT,
    latch=True,
    hardware="yes: the thermal cutout on the heater element",
)
HEATER_STUCK_ON = Cause(
    "heater_stuck_on",
    "heater_stuck_on",
    "E-101 heater (SSR)",
    "temperature rises with the heater commanded off, beyond what dosing or a charge explains; "
    "or, with the jacket cooling, heat out that nothing put in (welded SSR)",
    Priority.CRITICAL,
    TripAction.ABORT,
    _HEATER_HARD,
    latch=True,
    hardware="partly: the thermal cutout on the element ends a runaway",
)
HEATER_NOT_HEATING = Cause(
    "heater_not_heating",
    "heater_not_heating",
    "E-101 heater",
    "driven but the temperature does not follow (verify_heater: gain within check time, "
    "cumulative error)",
    Priority.HIGH,
    TripAction.ABORT,
    _HEATER,
    latch=True,
)
COOLING_NOT_COOLING = Cause(
    "cooling_not_cooling",
    "cooling_not_cooling",
    "XV-103 jacket cooling",
    "the jacket is open and the temperature above setpoint does not fall within "
    "[interlocks] cooling_check_s",
    Priority.HIGH,
    TripAction.HOLD,
    _DOSING,  # no more reaction heat while the jacket cannot take it away
    latch=True,
)
TEMPERATURE_UNREADABLE = Cause(
    "temperature_unreadable",
    "reading_bad",
    "TT-101 temperature",
    "the temperature is bad, stale or out of the RTD's range",
    Priority.HIGH,
    TripAction.HOLD,
    _HEATER,
    latch=False,
    alarms="while a batch runs or heat is wanted, once its first reading is overdue",
)
# --- the level switches ----------------------------------------------------------------------
LOW_LOW_UNREADABLE = Cause(
    "low_low_unreadable",
    "reading_bad",
    "LSLL-101 level switch",
    "the low-low switch is bad or stale",
    Priority.HIGH,
    TripAction.HOLD,
    _LOW_LOW,
    latch=False,
    alarms="while a batch runs or heat is wanted, once its first reading is overdue",
)
LOW_LOW_SUSPECT = Cause(
    "low_low_suspect",
    "reading_bad",
    "LSLL-101 level switch",
    "the low-low switch reads dry while the low switch reads wet",
    Priority.HIGH,
    TripAction.HOLD,
    _LOW_LOW,
    latch=False,
    alarms="while a batch runs or heat is wanted",
)
LEVEL_LOW_LOW = Cause(
    "level_low_low",
    "level_low_low",
    "LSLL-101 level switch",
    "the low-low switch reads dry (or suspect: dry is the safe reading)",
    Priority.HIGH,
    TripAction.HOLD,
    _LOW_LOW,
    latch=False,
    alarms="while heat is wanted (filling and draining are not alarms)",
    hardware="yes: LSLL is wired into the K-101 coil (the heater; the agitator is software)",
)
HIGH_HIGH_UNREADABLE = Cause(
    "high_high_unreadable",
    "reading_bad",
    "LSHH-101 level switch",
    "the high-high switch is bad or stale",
    Priority.HIGH,
    TripAction.HOLD,
    _INFLOWS,
    latch=False,
    alarms="while a batch runs, once its first reading is overdue",
)
LEVEL_HIGH_HIGH = Cause(
    "level_high_high",
    "level_high_high",
    "LSHH-101 level switch",
    "the high-high switch reads wet",
    Priority.HIGH,
    TripAction.HOLD,
    _INFLOWS,
    latch=True,
)
# --- pH and dosing ---------------------------------------------------------------------------
PH_UNREADABLE = Cause(
    "ph_unreadable",
    "reading_bad",
    "AT-101 pH",
    "the pH is bad, stale or out of the probe's range",
    Priority.HIGH,
    TripAction.HOLD,
    _DOSING,
    latch=False,
    alarms="while a batch runs or pH is controlled, once its first reading is overdue",
    cylinder_exempt=True,
)
DOSING_NOT_PERMITTED = Cause(
    "dosing_not_permitted",
    "dosing_not_permitted",
    "P-201…P-205 into the reactor",
    "a recipe wants a reagent into the reactor (or a pump still runs) while the low switch is "
    "not known wet, or the agitator is not wanted or is forced off",
    Priority.HIGH,
    TripAction.HOLD,
    _DOSING,
    latch=False,
    alarms="while a recipe wants to dose; manual jogs are judged one by one by manual mode "
    "(refused, or ended in the scan the permissive fails)",
    cylinder_exempt=True,
)
REAGENT_CAP = Cause(
    "reagent_cap",
    "reagent_cap",
    "each dosing pump",
    "the volume dosed in this phase reached the phase's cap",
    Priority.MEDIUM,
    TripAction.HOLD,
    _DOSING,
    latch=True,
    reads_its_device=False,
)
PH_NOT_RESPONDING = Cause(
    "ph_not_responding",
    "ph_not_responding",
    "AT-101 pH",
    "[interlocks] ph_not_responding_ml dosed (or half the phase cap) without the pH moving "
    "toward setpoint (coated or failed probe), and still none once dosing has stopped for "
    "90 s (ph_response_wait)",
    Priority.HIGH,
    TripAction.HOLD,
    _DOSING,
    latch=True,
    cylinder_exempt=True,
)
PH_RESPONSE_WAIT = Cause(
    "ph_response_wait",
    "ph_response_wait",
    "AT-101 pH",
    "[interlocks] ph_not_responding_ml dosed (or half the phase cap) without the pH moving "
    "toward setpoint: no more goes in while the last of it shows through the mixing and the "
    "probe (90 s); a response lifts it, none trips ph_not_responding",
    Priority.HIGH,
    TripAction.NONE,
    _DOSING,
    latch=False,
    alarms="never: it only stops dosing at the limit; ph_not_responding alarms after it",
    cylinder_exempt=True,
)
PH_OVERSHOOT_HOLDS = Cause(
    "ph_overshoot_holds",
    "ph_overshoot",
    "AT-101 pH",
    "the pH went past the band with no counter-reagent; the recipe says on_overshoot = hold",
    Priority.MEDIUM,
    TripAction.HOLD,
    _NOTHING,
    latch=False,
)
PH_OVERSHOOT_GOES_ON = Cause(
    "ph_overshoot_goes_on",
    "ph_overshoot",
    "AT-101 pH",
    "the pH went past the band with no counter-reagent; the recipe says on_overshoot = wait "
    "or next_phase",
    Priority.MEDIUM,
    TripAction.NONE,
    _NOTHING,
    latch=False,
)
# --- the product off-spec: an alarm for people, the batch goes on ---------------------------------
PH_DEVIATION = Cause(
    "ph_deviation",
    "ph_deviation",
    "AT-101 pH",
    "the pH reached its band, then stayed out of it, either way, for minutes (smoothed, judged "
    "on the phase's tolerance, at least ±0.05): the product goes off-spec",
    Priority.MEDIUM,
    TripAction.NONE,
    _NOTHING,
    latch=False,
)
TEMPERATURE_DEVIATION = Cause(
    "temperature_deviation",
    "temperature_deviation",
    "TT-101 temperature",
    "the temperature reached its band, then stayed out of it for minutes",
    Priority.MEDIUM,
    TripAction.NONE,
    _NOTHING,
    latch=False,
)
# --- outputs that do not obey ---------------------------------------------------------------
_DISOBEYS = "the board refused or failed the write, or the relay reads back otherwise than written"
CONTACTOR_FAULT = Cause(
    "contactor_fault",
    "output_fault",
    "K-101 contactor coil",
    _DISOBEYS,
    Priority.CRITICAL,
    TripAction.ABORT,
    _HEATER,  # the SSR off: without a contactor that obeys, a weld could not be cut
    latch=True,
    hardware="partly: the E-stop loop and LSLL drop K-101 without the board",
)
HEATER_OUTPUT_FAULT = Cause(
    "heater_output_fault",
    "output_fault",
    "E-101 heater's relay channel (the SSR's drive)",
    _DISOBEYS + ": the heater may be on while commanded off",
    Priority.CRITICAL,
    TripAction.ABORT,
    _HEATER_HARD,  # K-101 open: the element has no power whatever its drive holds
    latch=True,
    hardware="partly: the thermal cutout on the element ends a runaway",
)
AGITATOR_OUTPUT_FAULT = Cause(
    "agitator_output_fault",
    "output_fault",
    "M-101 agitator coil",
    _DISOBEYS + ": the reactor may be still",
    Priority.HIGH,
    TripAction.HOLD,
    # Heat into still liquor makes a hot layer at the element that TT-101 does not see, and a
    # dose would not mix: both wait for a stirrer that obeys (a hold alone keeps heating).
    _STILL,
    latch=True,
)
OUTPUT_FAULT = Cause(
    "output_fault",
    "output_fault",
    "every other relay coil (fill, drain, purge, cooling)",
    _DISOBEYS + " (an on-coil the board will not renew drops out when its lease ends)",
    Priority.HIGH,
    TripAction.HOLD,
    _NOTHING,
    latch=True,
)
PUMP_FAULT = Cause(
    "pump_fault",
    "pump_fault",
    "every EZO-PMP dosing pump",
    "its circuit refuses the run: faster than its calibrated maximum (*TOOFAST), its motor "
    "supply low (*UV,PUMPPWR), or *ER to a run or to a stop (it may still be dosing)",
    Priority.HIGH,
    TripAction.HOLD,
    _DOSING,
    latch=True,
)
# --- devices that stop answering -------------------------------------------------------------
_LOST = "no answer for longer than its stale limit"
ESTOP_LOST = Cause(
    "estop_lost",
    "device_lost",
    "HS-100 E-stop (relay board)",
    _LOST,
    Priority.CRITICAL,
    TripAction.ABORT,
    _ALL,
    latch=False,
    hardware="yes: the K-101 loop",
)
TEMPERATURE_LOST = Cause(
    "temperature_lost",
    "device_lost",
    "TT-101 EZO-RTD",
    _LOST,
    Priority.HIGH,
    TripAction.HOLD,
    _HEATER,
    latch=False,
)
PH_LOST = Cause(
    "ph_lost",
    "device_lost",
    "AT-101 EZO-pH",
    _LOST,
    Priority.HIGH,
    TripAction.HOLD,
    _DOSING,
    False,
    cylinder_exempt=True,
)
LOW_LOW_LOST = Cause(
    "low_low_lost",
    "device_lost",
    "LSLL-101 (relay board)",
    _LOST,
    Priority.HIGH,
    TripAction.HOLD,
    _LOW_LOW,
    latch=False,
    hardware="yes: LSLL is wired into the K-101 coil",
)
HIGH_HIGH_LOST = Cause(
    "high_high_lost",
    "device_lost",
    "LSHH-101 (relay board)",
    _LOST,
    Priority.HIGH,
    TripAction.HOLD,
    _INFLOWS,
    latch=False,
)
LEVEL_LOST = Cause(
    "level_lost",
    "device_lost",
    "LSL-101, LSH-101 (relay board)",
    _LOST,
    Priority.HIGH,
    TripAction.HOLD,
    _NOTHING,
    latch=False,
)
PUMP_LOST = Cause(
    "pump_lost",
    "device_lost",
    "each EZO-PMP dosing pump",
    _LOST + " (a silent circuit takes no stop: its bounded run ends by itself within its "
    "run_bound_min)",
    Priority.HIGH,
    TripAction.HOLD,
    _DOSING,
    latch=False,
)

TABLE: tuple[Cause, ...] = (
    ESTOP_PRESSED,
    ESTOP_UNREADABLE,
    TEMPERATURE_HIGH_HIGH,
    HEATER_STUCK_ON,
    HEATER_NOT_HEATING,
    COOLING_NOT_COOLING,
    TEMPERATURE_UNREADABLE,
    LOW_LOW_UNREADABLE,
    LOW_LOW_SUSPECT,
    LEVEL_LOW_LOW,
    HIGH_HIGH_UNREADABLE,
    LEVEL_HIGH_HIGH,
    PH_UNREADABLE,
    DOSING_NOT_PERMITTED,
    REAGENT_CAP,
    PH_RESPONSE_WAIT,
    PH_NOT_RESPONDING,
    PH_OVERSHOOT_HOLDS,
    PH_OVERSHOOT_GOES_ON,
    PH_DEVIATION,
    TEMPERATURE_DEVIATION,
    CONTACTOR_FAULT,
    HEATER_OUTPUT_FAULT,
    AGITATOR_OUTPUT_FAULT,
    OUTPUT_FAULT,
    PUMP_FAULT,
    ESTOP_LOST,
    TEMPERATURE_LOST,
    PH_LOST,
    LOW_LOW_LOST,
    HIGH_HIGH_LOST,
    LEVEL_LOST,
    PUMP_LOST,
)

BY_NAME: Mapping[str, Cause] = MappingProxyType({cause.name: cause for cause in TABLE})
CYLINDER_EXEMPT: frozenset[str] = frozenset(c.name for c in TABLE if c.cylinder_exempt)
"""The rows a manual jog into a measuring cylinder doses despite (see `Cause.cylinder_exempt`)."""
