"""Remote (MQTT) commands, the checking: each message on `<root>/<unit>/cmd/<name>` is validated
(name, retain flag, payload, expiry, replay) before dispatch.py may carry it out.

Never acts on the controller; a message that fails any check gets a refusal CommandResult.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

from hal.log import get_logger
from hal.schema import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    CustomError,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from unit_controller.json_limits import JsonRefused, parse_json
from unit_controller.mqtt.replay import ReplayStore
from unit_controller.mqtt.signing import Operators, SignatureRefused

log = get_logger(__name__)

PACKML_COMMANDS: Final[frozenset[str]] = frozenset(
    {
        "start",
        "hold",
        "unhold",
        "stop",
        "abort",
        "reset",
        "clear",
        "suspend",
        "unsuspend",
        "complete",
    }
)
"""Remote commands that go to the PackML machine through `UnitController.command`."""

REMOTE_COMMANDS: Final[frozenset[str]] = PACKML_COMMANDS | {
    "ack",
    "reset_alarms",
    "rebirth",
    "unitmode",
}
"""Every command a remote (MQTT) source may give."""

CONSOLE_ONLY: Final[frozenset[str]] = frozenset(
    {"jog", "calibrate", "calibrate_ph", "calibrate_pump", "output", "force", "manual", "confirm"}
)
"""Commands that need someone at the unit; refused when they arrive over MQTT.

`confirm` answers a prompt about the plant itself ("Black mass charged"): only someone there
can say so."""

MAX_PAYLOAD_BYTES: Final = 4096
# A topic level can be 64 KiB; results and log lines only need enough to recognise it.
_MAX_NAME_SHOWN: Final = 64
_RETAINED: Final = "ignored: a retained command message (publish commands with retain=false)"
_RECIPE_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PLAIN_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALARM_ID: Final = r"^[A-Za-z0-9_.:-]{1,64}$"


def _printable(value: str) -> str:
    # Ids and names end up in logs, events and the journal: no control characters, no blanks.
    if not value.isprintable():
        raise CustomError("printable", "must contain only printable characters")
    if not value.strip():
        raise CustomError("blank", "must not be only whitespace")
    return value


CommandId = Annotated[StrictStr, Field(min_length=1, max_length=128), AfterValidator(_printable)]
Sender = Annotated[StrictStr, Field(min_length=1, max_length=64), AfterValidator(_printable)]
_ID: Final[TypeAdapter[str]] = TypeAdapter(CommandId)


class _Envelope(BaseModel):
    """The JSON payload of one command message, before its args are checked per command."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)

    id: CommandId
    ts: StrictInt = Field(gt=0)
    exp: StrictInt = Field(gt=0)
    by: Sender
    args: dict[str, Any] = Field(default_factory=dict)
    sig: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None


class _Args(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)


class NoArgs(_Args):
    """Args of a command that takes none: `{}`."""


def _recipe_name(value: str) -> str:
    # Checked here (not by a Field pattern) so the message says why: a name, never a path.
    if _RECIPE_NAME.fullmatch(value) is None:
        raise CustomError(
            "recipe_name",
            "must be a recipe name (1-64 letters, digits, '_' or '-'), never a path",
        )
    return value


class StartArgs(_Args):
    """Args of `start`: the name of a recipe in the unit's recipe directory."""

    recipe: Annotated[StrictStr, AfterValidator(_recipe_name)]


class AlarmArgs(_Args):
    """Args of `ack` and `reset_alarms`: one alarm id, or all when omitted, null or "all"."""

    alarm: Annotated[StrictStr, Field(pattern=_ALARM_ID)] | None = None

    @property
    def alarm_id(self) -> str | None:
        """The alarm id to pass to the controller; None means every alarm."""
        return None if self.alarm in (None, "all") else self.alarm


class UnitModeArgs(_Args):
    """Args of `unitmode`: the PackML unit mode to go to (manual only at the console)."""

    mode: Literal["production", "maintenance", "manual"]


CommandArgs = NoArgs | StartArgs | AlarmArgs | UnitModeArgs
_SPECIAL_ARGS: Final[dict[str, type[CommandArgs]]] = {
    "start": StartArgs,
    "ack": AlarmArgs,
    "reset_alarms": AlarmArgs,
    "unitmode": UnitModeArgs,
}
_ARGS: Final[dict[str, type[CommandArgs]]] = {
    name: _SPECIAL_ARGS.get(name, NoArgs) for name in REMOTE_COMMANDS
}


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to one command (published on cmd_result)."""

    id: str | None
    ok: bool
    error: str | None
    ts: int
    command: str
    state: str | None = None
    # ack and reset_alarms: how many alarms it acknowledged or reset (0: it changed nothing).
    count: int | None = None
    # reset_alarms: the latched alarms it left because their input cannot be read ("id (tag)")
    held: tuple[str, ...] = ()
    # For the journal, never published: who the message says sent it, and its args as sent.
    by: str | None = field(default=None, compare=False)
    args: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> bytes:
        """Compact JSON with the keys id, ok, error, ts, command, state (and count, held)."""
        body: dict[str, Any] = {
            "id": self.id,
            "ok": self.ok,
            "error": self.error,
            "ts": self.ts,
            "command": self.command,
            "state": self.state,
        }
        if self.count is not None:
            body["count"] = self.count
        if self.held:
            body["held"] = list(self.held)
        # ASCII escapes: a name or id with odd characters can never make the encoding fail.
        return json.dumps(body, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True, slots=True)
class RemoteCommand:
    """A command that passed validation."""

    name: str
    id: str
    by: str
    ts: int
    exp: int
    args: CommandArgs
    authenticated: bool = False  # `by` is the operator whose key signed it


class _Refused(Exception):
    """A check failed: `error` says which and why (internal to the gate)."""

    def __init__(self, error: str, *, by: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.by = by  # the sender, once a signature proved it (else only claimed)


def shown_name(name: str) -> str:
    """A command's name (from the topic, anything at all) as logs, events and results show it:
    cut short, every character that is not printable (bidi overrides, separators) a '?'."""
    cut = name if len(name) <= _MAX_NAME_SHOWN else name[:_MAX_NAME_SHOWN] + "…"
    return "".join(c if c.isprintable() else "?" for c in cut)


def _seconds(ms: int, *, decimals: int | None = None) -> str:
    """`ms` as seconds for a message: '900', '600.5' or, with decimals=1, '75.0'."""
    if ms >= 10**15:
        return "more than 10^12"
    if decimals is not None:
        return f"{ms / 1000:.{decimals}f}"
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".")


def now_ms(wall: Callable[[], float]) -> int:
    return int(wall() * 1000)


def _problems(exc: ValidationError, *, prefix: str = "") -> str:
    """Each validation error as 'location: message (got value)', joined with '; '."""
    problems = []
    for err in exc.errors(include_url=False):
        where = prefix + ".".join(_key(part) for part in err["loc"])
        message = err["msg"]
        if err["type"] not in ("missing", "extra_forbidden") and "input" in err:
            shown = repr(err["input"])
            if len(shown) <= 40 and not isinstance(err["input"], dict | list):
                message += f" (got {shown})"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def _key(part: str | int) -> str:
    # A sender's odd key (blank, spaces, control characters) is quoted so it can be seen.
    if isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
        return part
    return shown_name(repr(part))


def _decode(payload: bytes) -> object:
    """The JSON value in `payload`; raises _Refused saying why it is not usable."""
    try:
        return parse_json(payload, max_bytes=MAX_PAYLOAD_BYTES)
    except JsonRefused as exc:
        raise _Refused(str(exc)) from None


def _usable_id(value: object) -> str | None:
    """The payload's `id` if it is a valid command id, so a refusal can still be matched."""
    if not isinstance(value, dict):
        return None
    try:
        return _ID.validate_python(value.get("id"))
    except ValidationError:
        return None


def _claimed(value: object) -> tuple[str | None, Mapping[str, Any]]:
    """Who a refused message says sent it and its args, as far as they can be read."""
    if not isinstance(value, dict):
        return None, {}
    by, args = value.get("by"), value.get("args")
    # Unvalidated, yet it goes into events and the journal: no control characters there.
    shown = "".join(c if c.isprintable() else "?" for c in by[:64]) if isinstance(by, str) else ""
    return (
        f"{shown} (unauthenticated)" if isinstance(by, str) else None,
        args if isinstance(args, dict) else {},
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


class CommandGate:
    """Checks one command message: name, retain flag, JSON payload, expiry and replay."""

    def __init__(
        self,
        *,
        replay: ReplayStore,
        max_lifetime_s: float = 600.0,
        clock_skew_s: float = 60.0,
        wall: Callable[[], float] = time.time,
        unit: str = "",
        operators: Operators | None = None,
        allow_unsigned: bool = True,
    ) -> None:
        """`operators`: the keys that may sign; unsigned commands act only if `allow_unsigned`."""
        if max_lifetime_s <= 0 or clock_skew_s < 0:
            raise ValueError("max_lifetime_s must be > 0 and clock_skew_s >= 0")
        self._replay = replay
        self._max_lifetime_s = max_lifetime_s
        self._clock_skew_s = clock_skew_s
        self._wall = wall
        self._unit = unit
        self._operators = operators or Operators(())
        self._allow_unsigned = allow_unsigned

    async def check(
        self, name: str, payload: bytes, *, retained: bool
    ) -> RemoteCommand | CommandResult:
        """The validated command, or a refusal (ok=False) that names the problem."""
        try:
            value: object = _decode(payload)
            decode_error = None
        except _Refused as exc:
            value, decode_error = None, exc.error
        command_id = _usable_id(value)
        try:
            self._check_name(name)
            if retained:
                raise _Refused(_RETAINED)
            if decode_error is not None:
                raise _Refused(decode_error)
            command = self._validate(name, value)
            forgot = self._replay.forgot_before_ms
            if forgot is not None and command.ts < forgot:
                # Issued before the ids seen were lost with a damaged outbox: it may be a
                # replay of one carried out then, which nothing here could tell.
                raise _Refused(
                    f"issued before this unit lost its record of the commands it received "
                    f"(its outbox was set aside at ts {forgot}): send it again, with a new id "
                    "and ts",
                    by=command.by,
                )
            if not await self._replay.remember_command(command.id, command.exp):
                raise _Refused(
                    f"replayed: command id {command.id!r} was already received", by=command.by
                )
        except _Refused as exc:
            log.warning("command.refused", name=shown_name(name), id=command_id, error=exc.error)
            by, args = _claimed(value)
            by = exc.by or by
            return CommandResult(
                id=command_id,
                ok=False,
                error=exc.error,
                ts=now_ms(self._wall),
                command=shown_name(name),
                by=by,
                args=args,
            )
        log.info("command.received", name=name, id=command.id, by=command.by)
        return command

    @staticmethod
    def claims(payload: bytes) -> tuple[str | None, str | None, Mapping[str, Any]]:
        """The id, sender and args a payload claims, as far as they can be read (for a refusal
        the fleet must be able to match), never raising."""
        try:
            value: object = _decode(payload) if payload else None
        except _Refused:
            value = None
        by, args = _claimed(value)
        return _usable_id(value), by, args

    @staticmethod
    def _check_name(name: str) -> None:
        if name in REMOTE_COMMANDS:
            return
        if name in CONSOLE_ONLY:
            raise _Refused(
                f"{name!r} is a console-only command "
                "(manual mode, jog, calibration and confirmations need someone at the unit)"
            )
        raise _Refused(
            f"unknown command {shown_name(name)!r}; "
            f"remote commands are: {', '.join(sorted(REMOTE_COMMANDS))}"
        )

    def _validate(self, name: str, value: object) -> RemoteCommand:
        if not isinstance(value, dict):
            raise _Refused(f"payload must be a JSON object, got {_json_type(value)}")
        try:
            envelope = _Envelope.model_validate(value)
        except ValidationError as exc:
            raise _Refused(_problems(exc)) from None
        self._check_times(ts=envelope.ts, exp=envelope.exp)
        try:
            args = _ARGS[name].model_validate(envelope.args)
        except ValidationError as exc:
            raise _Refused(_problems(exc, prefix="args.")) from None
        by, authenticated = self._sender(name, value, signed=envelope.sig is not None)
        return RemoteCommand(
            name=name,
            id=envelope.id,
            by=by,
            ts=envelope.ts,
            exp=envelope.exp,
            args=args,
            authenticated=authenticated,
        )

    def _sender(self, name: str, document: dict[str, Any], *, signed: bool) -> tuple[str, bool]:
        """Who sent it: the verified operator, or (when allowed) the unproven `by`."""
        if signed:
            try:
                return self._operators.verify(unit=self._unit, name=name, document=document), True
            except SignatureRefused as exc:
                raise _Refused(str(exc), by=exc.verified) from None
        if not self._allow_unsigned:
            raise _Refused(
                "unsigned: this unit takes only commands signed by an operator key "
                "(unit-controller sign / send)"
            )
        return f"{document['by']} (unauthenticated)", False

    def _check_times(self, *, ts: int, exp: int) -> None:
        # Compared in integer milliseconds: a 4 kB payload can hold numbers too big for a float.
        if exp <= ts:
            raise _Refused(f"exp ({shown_name(str(exp))}) must be after ts ({shown_name(str(ts))})")
        if exp - ts > self._max_lifetime_s * 1000:
            raise _Refused(
                f"exp is {_seconds(exp - ts)} s after ts; "
                f"at most {self._max_lifetime_s:g} s allowed"
            )
        now = now_ms(self._wall)
        if ts - now > self._clock_skew_s * 1000:
            raise _Refused(
                f"ts is {_seconds(ts - now, decimals=1)} s in the future; at most "
                f"{self._clock_skew_s:g} s of clock difference allowed (check the sender's clock)"
            )
        if now > exp:
            raise _Refused(f"expired {_seconds(now - exp, decimals=1)} s ago")
