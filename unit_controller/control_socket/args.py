"""The arguments of each control-socket request, checked strictly (hal.schema): a bad argument
is refused by name and changes nothing."""

from __future__ import annotations

from typing import Annotated, Literal

from hal.schema import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

Number = Annotated[float, Field(strict=False, allow_inf_nan=False)]
_TAG = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"


class OpArgs(BaseModel):
    """Every request's arguments: nothing unknown, nothing changed after checking."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class NoArgs(OpArgs):
    """A request without arguments."""


class IdentifyArgs(OpArgs):
    """Who is calling: the console or another local program."""

    client: Literal["console", "cli"]
    user: StrictStr | None = Field(default=None, max_length=32)


class StartArgs(OpArgs):
    """A recipe by name."""

    recipe: StrictStr = Field(pattern=r"^[a-z0-9_-]{1,40}$")


class AlarmArgs(OpArgs):
    """One alarm id, or every alarm (null or "all")."""

    alarm: StrictStr | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

    @property
    def alarm_id(self) -> str | None:
        """None for every alarm."""
        return None if self.alarm in (None, "all") else self.alarm


class ManualArgs(OpArgs):
    """Manual mode on or off."""

    on: StrictBool


class ProbeOutArgs(OpArgs):
    """The pH probe out in a buffer for a guided calibration (on), or back (off)."""

    on: StrictBool


class UnitModeArgs(OpArgs):
    """The PackML unit mode to go to."""

    mode: Literal["production", "maintenance", "manual"]


class AuthorityArgs(OpArgs):
    """Local (only someone at the unit operates it) or remote (the fleet may too)."""

    mode: Literal["local", "remote"]


class JogArgs(OpArgs):
    """A bounded dose from one pump."""

    pump: StrictStr = Field(pattern=_TAG)
    ml: Number
    cylinder: StrictBool = False  # out of the reactor into a measuring cylinder (calibration)


class HeaterArgs(OpArgs):
    """The heater at a duty for a while."""

    percent: Number
    seconds: Number


class ConfirmArgs(OpArgs):
    """The confirmation a phase waits for; `prompt`: the one the operator was shown."""

    prompt: StrictStr | None = Field(default=None, max_length=400)


class DrainArgs(OpArgs):
    """The drain valve open for a while (0 closes it)."""

    seconds: Number


class CalPhArgs(OpArgs):
    """One pH calibration point."""

    point: Literal["mid", "low", "high"]
    value: Number
    temperature_c: Number | None = Field(default=None, ge=0, le=60)


class CalPumpArgs(OpArgs):
    """The volume measured after a pump's calibration dose."""

    pump: StrictStr = Field(pattern=_TAG)
    measured_ml: Number


class LogArgs(OpArgs):
    """How many journal entries."""

    n: StrictInt = Field(default=20, ge=1, le=500)


class BatchArgs(OpArgs):
    """A batch id, or the latest."""

    id: StrictInt | None = Field(default=None, ge=1, le=2**62)


class UnlockArgs(OpArgs):
    """The PIN."""

    pin: StrictStr = Field(max_length=64)


class WatchArgs(OpArgs):
    """How often to stream the status (seconds), and whether to: `status: false` streams the
    controller's events only (the console's announcements of prompts and alarms)."""

    every_s: Number = Field(default=1.0, ge=0.2, le=60)
    status: StrictBool = True


class StatsArgs(OpArgs):
    """Over how many recent seconds the scan-timing percentiles go (default: all kept)."""

    window_s: Number | None = Field(default=None, gt=0, le=3600)
