"""A phase's cross-field checks: what each field allows given the others (model validators, after).

Kept beside the schema rather than in it so the schema reads as a list of fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.schema import CustomError, InitErrorDetails, ValidationError
from hal.wiring import LevelPoint

if TYPE_CHECKING:
    from unit_controller.recipes.model import Phase

LEVEL_ORDER = (LevelPoint.LOW_LOW, LevelPoint.LOW, LevelPoint.HIGH, LevelPoint.HIGH_HIGH)

Problem = tuple[tuple[str | int, ...], str, Any]


def raise_problems(title: str, problems: list[Problem]) -> None:
    """Raise the problems as one ValidationError, each at its location (under the model's)."""
    if not problems:
        return
    raise ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=CustomError("recipe", "{message}", {"message": message}),
                loc=loc,
                input=value,
            )
            for loc, message, value in problems
        ],
    )


def phase_problems(p: Phase) -> list[Problem]:
    """Every contradiction between this phase's fields, each at its location."""
    u = p.until
    out: list[Problem] = []
    if p.fill and p.drain:
        out.append((("drain",), "fill and drain cannot both be on in one phase", p.drain))
    if u.is_empty:
        out.append((("until",), "needs at least one condition, or the phase could never end", {}))
    if u.temperature_reached and not p.controls_temperature:
        out.append((("until", "temperature_reached"), "needs temperature_c in this phase", True))
    if (
        u.temperature_below_c is not None
        and p.temperature_c is not None
        and p.temperature_c >= u.temperature_below_c
    ):
        out.append(
            (
                ("until", "temperature_below_c"),
                f"can never hold while the heater holds temperature_c {p.temperature_c:g} °C",
                u.temperature_below_c,
            )
        )
    if u.at_setpoint_min is not None and not (p.controls_temperature or p.controls_ph):
        out.append(
            (
                ("until", "at_setpoint_min"),
                "needs temperature_c or ph in this phase (nothing has a setpoint)",
                u.at_setpoint_min,
            )
        )
    for key in ("duration_min", "at_setpoint_min"):
        value = getattr(u, key)
        if value is not None and value >= p.timeout_min:
            out.append((("until", key), f"must be below timeout_min ({p.timeout_min:g})", value))
    if u.doses_done and not p.doses:
        out.append((("until", "doses_done"), "the phase has no doses", True))
    if p.pumps and not p.agitator:
        # The permissive of every dose (DESIGN §5): a reagent into a still reactor pools, reacts
        # locally and the probe never sees it.
        out.append(
            (
                ("agitator",),
                f"the phase doses ({', '.join(sorted(p.pumps))}): it needs agitator = true",
                False,
            )
        )
    if p.charge is not None and u.confirm is None:
        out.append(
            (
                ("charge",),
                "a charge is tipped in by a person: the phase needs until.confirm to wait for it",
                p.charge.kg,
            )
        )
    if p.cooling and not (p.controls_temperature or u.temperature_below_c is not None):
        out.append(
            (("cooling",), "needs temperature_c (or until.temperature_below_c) to cool to", True)
        )
    if (
        u.level is not None
        and u.level_below is not None
        and (LEVEL_ORDER.index(u.level) >= LEVEL_ORDER.index(u.level_below))
    ):
        out.append(
            (
                ("until", "level_below"),
                f"contradicts level = '{u.level}' (a higher switch cannot be wet while a "
                "lower one is dry)",
                str(u.level_below),
            )
        )
    if p.fill and u.level_below is not None:
        out.append(
            (("until", "level_below"), "a fill never makes a switch go dry", str(u.level_below))
        )
    if p.drain and u.level is not None:
        out.append((("until", "level"), "a drain never makes a switch go wet", str(u.level)))
    # A drain stops only where its phase ends: at a switch, unless another condition (a
    # duration, a confirm) keeps the phase, and the valve open, past it.
    drain_stops_above_low = u.level_below in (LevelPoint.LOW, LevelPoint.HIGH) and u.describe() == [
        f"level below {u.level_below}"
    ]
    drain_stops_above_lsl = drain_stops_above_low and u.level_below is LevelPoint.HIGH
    if p.drain and p.controls_temperature and not drain_stops_above_low:
        # Heat wanted with the low-low switch dry trips level_low_low: the batch would hold on
        # the very scan the drain is done.
        out.append(
            (
                ("temperature_c",),
                "a drain that can go on past the low-low switch cannot hold a temperature (the "
                "heater must stop on a dry element, and the batch holds); end the drain at "
                "until.level_below 'low' alone, or drain in a phase of its own",
                p.temperature_c,
            )
        )
    if p.drain and p.pumps and not drain_stops_above_lsl:
        # Dosing wants the low switch wet (a reagent into a near-empty reactor): a drain past it
        # holds the batch on dosing_not_permitted.
        out.append(
            (
                ("drain",),
                f"the phase doses ({', '.join(sorted(p.pumps))}) while a drain takes the "
                "liquor below the low switch, where no reagent may go in; dose in a phase of "
                "its own (or end the drain at until.level_below 'high' alone)",
                True,
            )
        )
    if u.level is LevelPoint.HIGH_HIGH:
        # The switch wet is the overflow interlock: the phase could only end tripped.
        out.append(
            (
                ("until", "level"),
                "high_high wet trips the overflow interlock (all inflows off, hold); use 'high'",
                str(u.level),
            )
        )
    if p.doses and not u.doses_done:
        # The conditions may hold before a dose ends; the phase then ends and cuts it short.
        earliest = u.duration_min or 0.0
        for i, dose in enumerate(p.doses):
            if earliest < dose.ends_after_min < p.timeout_min:  # (past the timeout: said above)
                out.append(
                    (
                        ("doses", i),
                        f"ends {dose.ends_after_min:g} min into the phase, but the phase may "
                        f"end at {earliest:g} min without it: add until.doses_done = true",
                        {},
                    )
                )
    for i, dose in enumerate(p.doses):
        # Equal is refused too: the phase would time out on the scan its last dose ends, as an
        # until.duration_min equal to the timeout would.
        if dose.ends_after_min >= p.timeout_min:
            out.append(
                (
                    ("doses", i),
                    f"ends {dose.ends_after_min:g} min into the phase (after_min + over_min), "
                    f"not before timeout_min {p.timeout_min:g}",
                    {},
                )
            )
    if (
        p.ph is not None
        and p.ph.counter_pump is None
        and str(p.ph.on_overshoot) == "wait"
        and not p.feeds
    ):
        out.append(
            (
                ("ph", "on_overshoot"),
                "'wait' needs a feed in this phase to consume the excess, and it has none: use "
                "'hold' (or 'next_phase')",
                "wait",
            )
        )
    out += pump_conflicts(p)
    return out


def pump_conflicts(p: Phase) -> list[Problem]:
    """A pump does one job at a time: pH control, one feed, or non-overlapping doses."""
    out: list[Problem] = []
    feed_pumps = [f.pump for f in p.feeds]
    for j, tag in enumerate(feed_pumps):
        if tag in feed_pumps[:j]:
            out.append((("feeds", j, "pump"), f"{tag} already feeds in this phase", tag))
    for i, dose in enumerate(p.doses):
        if dose.pump in feed_pumps:
            out.append(
                (("doses", i, "pump"), f"{dose.pump} is also a feed in this phase", dose.pump)
            )
        for other in p.doses[:i]:
            if other.pump == dose.pump and (
                dose.after_min < other.ends_after_min and other.after_min < dose.ends_after_min
            ):
                out.append(
                    (
                        ("doses", i, "after_min"),
                        f"overlaps an earlier dose through {dose.pump}",
                        dose.after_min,
                    )
                )
    if p.ph is not None:
        if p.ph.pump in feed_pumps or p.ph.pump in {d.pump for d in p.doses}:
            out.append(
                (("ph", "pump"), f"{p.ph.pump} is also a feed or dose in this phase", p.ph.pump)
            )
        counter = p.ph.counter_pump
        if counter is not None and (
            counter == p.ph.pump or counter in feed_pumps or counter in {d.pump for d in p.doses}
        ):
            out.append(
                (
                    ("ph", "counter_pump"),
                    f"{counter} is the pH pump, a feed or a dose in this phase",
                    counter,
                )
            )
        ff = p.ph.feed_forward
        if ff is not None and ff.pump not in feed_pumps:
            out.append(
                (
                    ("ph", "feed_forward", "pump"),
                    f"{ff.pump} is not one of this phase's feeds",
                    ff.pump,
                )
            )
    return out
