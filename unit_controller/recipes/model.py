"""The recipe schema: phases with targets, feeds, doses and `until` conditions (hal.schema, frozen).

Structural checks only; whether a recipe fits a given unit is `check_recipe_for_unit`'s job.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from hal.schema import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from hal.wiring import TAG_PATTERN, LevelPoint, Reagent
from unit_controller.recipes.phase_checks import Problem, phase_problems, raise_problems

MAX_TIMEOUT_MIN = 24 * 60.0

# +1 raises pH, -1 lowers it; reagents absent here must never be used for pH control
# (H2O2 is an oxidant, metal sulfate is the product feed).
PH_EFFECT: dict[Reagent, int] = {Reagent.H2SO4: -1, Reagent.NAOH: +1, Reagent.NH4OH: +1}


class StartsWith(StrEnum):
    """What the reactor must hold when the recipe starts (the simulator preloads it)."""

    EMPTY = "empty"
    WATER = "water"
    LEACH_LIQUOR = "leach_liquor"
    PURIFIED_LIQUOR = "purified_liquor"


class _Model(BaseModel):
    # strict numbers and booleans: a quoted "30" in a recipe is a mistake, not a number
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


def _pump() -> Any:
    return Field(pattern=TAG_PATTERN, description="dosing pump tag, e.g. P-203")


class FeedForward(_Model):
    """Feed whose rate drives pH feed-forward: `equivalents` mol of reagent per mol of feed."""

    pump: str = _pump()
    equivalents: float = Field(strict=True, gt=0, le=10)


class Overshoot(StrEnum):
    """What a phase does when pH overshoots and no counter-reagent can bring it back."""

    HOLD = "hold"  # alarm and hold: a person decides (unhold to go on, or abort)
    NEXT_PHASE = "next_phase"  # alarm and go on: the next phase's load brings the pH back
    WAIT = "wait"  # alarm and keep going: this phase's own feed consumes the excess


class PhControl(_Model):
    """pH held at `setpoint` by dosing through `pump` (its reagent decides the direction)."""

    setpoint: float = Field(strict=True, ge=-2, le=16)
    pump: str = _pump()
    counter_pump: str | None = Field(
        default=None,
        pattern=TAG_PATTERN,
        description="a pump whose reagent pushes the other way: two-sided control",
    )
    on_overshoot: Overshoot = Field(
        default=Overshoot.HOLD,
        description="past the setpoint by more than the tolerance with no counter-reagent",
    )
    tolerance: float = Field(default=0.05, strict=True, ge=0.01, le=1)
    cap_ml: float | None = Field(
        default=None, strict=True, gt=0, description="most mL this phase may dose through `pump`"
    )
    feed_forward: FeedForward | None = None
    # The process gain differs by orders of magnitude between a buffered liquor and a weak one;
    # a phase may retune the loop (unset = the unit's [control.ph] tuning).
    kp_ml: float | None = Field(default=None, strict=True, gt=0, le=10_000)
    ki_ml: float | None = Field(default=None, strict=True, ge=0, le=1000)
    interval_s: float | None = Field(default=None, strict=True, ge=1, le=600)
    max_dose_ml: float | None = Field(default=None, strict=True, gt=0, le=2000)

    def tuning_overrides(self) -> dict[str, float]:
        """The [control.ph] settings this phase overrides."""
        names = ("kp_ml", "ki_ml", "interval_s", "max_dose_ml")
        return {n: v for n in names if (v := getattr(self, n)) is not None}

    def in_band(self, ph: float) -> bool:
        """Whether `ph` counts as at setpoint."""
        return abs(ph - self.setpoint) <= self.tolerance


class Feed(_Model):
    """A continuous feed for the whole phase."""

    pump: str = _pump()
    ml_min: float = Field(strict=True, gt=0)


class Dose(_Model):
    """A bounded dose: `ml` delivered evenly over `over_min`, from `after_min` into the phase."""

    pump: str = _pump()
    ml: float = Field(strict=True, gt=0)
    over_min: float = Field(strict=True, gt=0)
    after_min: float = Field(default=0.0, strict=True, ge=0)

    @property
    def rate_ml_min(self) -> float:
        """Pump rate while the dose runs."""
        return self.ml / self.over_min

    @property
    def ends_after_min(self) -> float:
        """Minutes into the phase at which the dose is complete."""
        return self.after_min + self.over_min

    def ml_due(self, elapsed_min: float) -> float:
        """mL that should have been delivered `elapsed_min` into the phase."""
        fraction = (elapsed_min - self.after_min) / self.over_min
        return self.ml * min(1.0, max(0.0, fraction))


# C0 and C1 controls, and the bidirectional-text controls (a right-to-left override shows a
# safety prompt's words in another order than they are stored).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _printable(text: str) -> str:
    # Prompts and descriptions reach terminals, logs and the report: an ESC in them would
    # drive a field tech's terminal. Line breaks and tabs may stay in a description.
    found = _CONTROL.search(text)
    if found is not None:
        raise ValueError(
            f"holds a control character (U+{ord(found.group()):04X}) at position {found.start()}"
        )
    return text


def _one_line(text: str) -> str:
    if "\n" in text or "\t" in text:
        raise ValueError("must be one line (it is shown as a prompt)")
    return _printable(text)


def _prompt(text: str) -> str:
    # Checked here, not with min_length: on a validated string that says "1 item".
    if not text.strip():
        raise ValueError("must say what to confirm, not be empty")
    if len(text) > _PROMPT_CHARS:
        raise ValueError(f"must be at most {_PROMPT_CHARS} characters, not {len(text)}")
    return _one_line(text)


_PROMPT_CHARS = 200
Printable = Annotated[str, AfterValidator(_printable)]
Prompt = Annotated[str, AfterValidator(_prompt)]


class Until(_Model):
    """Conditions that end a phase; all that are set must hold together."""

    level: LevelPoint | None = Field(default=None, description="this switch is wet")
    level_below: LevelPoint | None = Field(default=None, description="this switch is dry")
    temperature_reached: bool = Field(default=False, strict=True)
    temperature_below_c: float | None = Field(default=None, strict=True, ge=-20, le=150)
    at_setpoint_min: float | None = Field(default=None, strict=True, gt=0)
    duration_min: float | None = Field(default=None, strict=True, gt=0)
    confirm: Prompt | None = None
    doses_done: bool = Field(default=False, strict=True)

    @property
    def is_empty(self) -> bool:
        """True when no condition is set (such a phase could never end)."""
        return not self.describe()

    def describe(self) -> list[str]:
        """Each set condition in words, for the console and the event log."""
        out: list[str] = []
        if self.level is not None:
            out.append(f"level {self.level} reached")
        if self.level_below is not None:
            out.append(f"level below {self.level_below}")
        if self.temperature_reached:
            out.append("temperature reached")
        if self.temperature_below_c is not None:
            out.append(f"temperature below {self.temperature_below_c:g} °C")
        if self.at_setpoint_min is not None:
            out.append(f"{self.at_setpoint_min:g} min at setpoint")
        if self.duration_min is not None:
            out.append(f"{self.duration_min:g} min elapsed")
        if self.confirm is not None:
            out.append(f"operator confirms '{self.confirm}'")
        if self.doses_done:
            out.append("doses delivered")
        return out


class Charge(_Model):
    """Solids a person tips in through the charge port when the phase's prompt is confirmed."""

    material: Literal["black_mass"] = "black_mass"
    kg: float = Field(strict=True, gt=0, le=500)


class Phase(_Model):
    """One step of a recipe: targets, outputs, feeds and doses until its conditions hold."""

    name: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    timeout_min: float = Field(strict=True, gt=0, le=MAX_TIMEOUT_MIN)
    temperature_c: float | None = Field(default=None, strict=True, ge=-20, le=150)
    max_heater_duty: float = Field(default=1.0, strict=True, gt=0, le=1)
    tolerance_c: float = Field(default=1.0, strict=True, ge=0.1, le=10)
    agitator: bool = Field(default=False, strict=True)
    purge: bool = Field(default=False, strict=True)
    fill: bool = Field(default=False, strict=True)
    drain: bool = Field(default=False, strict=True)
    cooling: bool = Field(
        default=False,
        strict=True,
        description="the jacket's cooling valve (XV-103) may take heat out to hold temperature_c",
    )
    ph: PhControl | None = None
    charge: Charge | None = None
    feeds: tuple[Feed, ...] = ()
    doses: tuple[Dose, ...] = ()
    until: Until

    @property
    def controls_temperature(self) -> bool:
        """Whether the heater holds a setpoint in this phase (else it is off)."""
        return self.temperature_c is not None

    @property
    def controls_ph(self) -> bool:
        """Whether pH is dosed to a setpoint in this phase."""
        return self.ph is not None

    @property
    def pumps(self) -> frozenset[str]:
        """Every dosing pump this phase runs (pH, feeds, doses)."""
        tags = {f.pump for f in self.feeds} | {d.pump for d in self.doses}
        if self.ph is not None:
            tags.add(self.ph.pump)
        return frozenset(tags)

    def dose_ml(self, pump: str) -> float:
        """Total mL the phase's doses deliver through `pump`."""
        return sum(d.ml for d in self.doses if d.pump == pump)

    def temperature_in_band(self, temperature_c: float) -> bool:
        """Whether a measured temperature counts as at setpoint (False when not controlled)."""
        return (
            self.temperature_c is not None
            and abs(temperature_c - self.temperature_c) <= self.tolerance_c
        )

    @model_validator(mode="after")
    def _consistent(self) -> Phase:
        raise_problems("Phase", phase_problems(self))
        return self


MAX_PHASES = 100


class Recipe(_Model):
    """A whole recipe: what the reactor starts with and its phases in order."""

    name: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    description: Printable = Field(default="", max_length=2000)
    starts_with: StartsWith = StartsWith.EMPTY
    # not min_length: validation would also report "no phases" whenever any phase is invalid.
    # A batch has a handful; the cap keeps a generated file from taking the daemon's memory.
    phases: tuple[Phase, ...] = Field(max_length=MAX_PHASES)

    @property
    def phase_names(self) -> list[str]:
        """Phase names in order."""
        return [p.name for p in self.phases]

    @property
    def pumps(self) -> frozenset[str]:
        """Every dosing pump any phase runs."""
        return frozenset().union(*(p.pumps for p in self.phases))

    @property
    def max_duration_min(self) -> float:
        """Upper bound on the run time: every phase at its timeout."""
        return sum(p.timeout_min for p in self.phases)

    def phase(self, name: str) -> Phase:
        """The phase called `name` (KeyError when there is none)."""
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(name)

    def index_of(self, name: str) -> int:
        """Position of phase `name` (KeyError when there is none)."""
        try:
            return self.phase_names.index(name)
        except ValueError:
            raise KeyError(name) from None

    @model_validator(mode="after")
    def _unique_names(self) -> Recipe:
        first: dict[str, int] = {}
        problems: list[Problem] = []
        if not self.phases:
            problems.append((("phases",), "needs at least one phase", []))
        for i, p in enumerate(self.phases):
            if p.name in first:
                problems.append(
                    (
                        ("phases", i, "name"),
                        f"duplicate phase name (first at phases[{first[p.name]}])",
                        p.name,
                    )
                )
            first.setdefault(p.name, i)
        for i, p in enumerate(self.phases):
            if p.ph is None or p.ph.counter_pump is not None:
                continue
            if p.ph.on_overshoot is not Overshoot.NEXT_PHASE:
                continue
            after = self.phases[i + 1] if i + 1 < len(self.phases) else None
            # The batch would go on (or end COMPLETE) with the pH past its setpoint, nothing
            # dosing it back.
            if after is None:
                why = "the last phase has no next phase to bring the pH back: use 'hold'"
            elif after.ph is None and not after.pumps:
                # One that doses or feeds is judged with the unit's pumps (what each reagent
                # does: a metal feed takes a base's excess up).
                why = (
                    f"the next phase ('{after.name}') doses nothing to bring it back: use "
                    "'hold', or give that phase a ph (or a feed or dose that brings it back)"
                )
            else:
                continue
            problems.append((("phases", i, "ph", "on_overshoot"), why, str(p.ph.on_overshoot)))
        charged = next((i for i, p in enumerate(self.phases) if p.charge is not None), None)
        if charged is not None:
            # Aluminium in black mass makes H2 with the acid (DESIGN §1: N2 purge on during
            # leach), and goes on until the reactor is drained.
            for i, p in enumerate(self.phases[charged:], start=charged):
                if not p.purge:
                    problems.append(
                        (
                            ("phases", i, "purge"),
                            f"black mass is charged in phase '{self.phases[charged].name}' "
                            "(aluminium in it gives H2 with the acid): every phase from there "
                            "on needs purge = true",
                            p.purge,
                        )
                    )
        raise_problems("Recipe", problems)
        return self
