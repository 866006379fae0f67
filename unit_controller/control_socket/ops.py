"""What each control-socket request does: validation, permission, the controller call, the journal.

Same command model as MQTT, plus what only someone at the unit may do (manual mode, jog,
calibration, confirmations); never raises to the server: every request gets a Response.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from hal.log import get_logger
from hal.schema import ValidationError
from unit_controller.calibration import Calibrations, PhCalibrationRefused
from unit_controller.config import UnitConfig
from unit_controller.controller import UnitController
from unit_controller.errors import CommandRefused, RecipeError
from unit_controller.journal.store import Journal, JournalError
from unit_controller.machine import State, UnitMode
from unit_controller.manual import MANUAL_IS_ON
from unit_controller.mqtt.payloads import EpochClock, alarms_payload
from unit_controller.recipes.loader import list_recipes, load_recipe
from unit_controller.storage_watch import storage_failing
from unit_controller.tomlfile import location

from .args import (
    AlarmArgs,
    AuthorityArgs,
    BatchArgs,
    CalPhArgs,
    CalPumpArgs,
    ConfirmArgs,
    DrainArgs,
    HeaterArgs,
    IdentifyArgs,
    JogArgs,
    LogArgs,
    ManualArgs,
    NoArgs,
    OpArgs,
    ProbeOutArgs,
    StartArgs,
    StatsArgs,
    UnitModeArgs,
    UnlockArgs,
    WatchArgs,
)
from .pin_desk import PinDesk
from .protocol import ErrorCode, OpError, Request, Response
from .status import status_dict

log = get_logger(__name__)

# A PackML command's acting state (RESETTING, HOLDING…) ends within a scan or two.
SETTLE_S = 5.0


class Kind(Enum):
    """Who may send a request."""

    READ = "read"  # anyone on the socket
    COMMAND = "command"  # anyone on the socket; journaled with its source
    CONSOLE = "console"  # the field-tech console only (someone at the unit)
    PROTECTED = "protected"  # the console, with the PIN when one is configured


@dataclass(slots=True)
class Session:
    """One connection: who is on the other end, and whether they gave the PIN."""

    user: str
    client: str = "socket"
    unlocked: bool = False
    owns_manual: bool = False  # this session turned manual mode on

    @property
    def source(self) -> str:
        """How commands from this session are recorded, e.g. `console:tech`."""
        return f"{self.client}:{self.user}"


Handler = Callable[[Session, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One op: its arguments, who may send it, and what it does."""

    args: type[OpArgs]
    kind: Kind
    handler: Handler | None  # None: the server handles it (watch, unwatch)


PACKML_OPS = (
    "reset", "start", "stop", "hold", "unhold", "suspend", "unsuspend", "abort", "clear", "complete"
)  # fmt: skip


def problems_of(exc: ValidationError) -> str:
    """Validation errors as `args.field: message`, joined."""
    parts = []
    for err in exc.errors(include_url=False):
        where = location(["args", *err["loc"]])
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class Operations:
    """Carries out control-socket requests on the controller and records commands."""

    def __init__(
        self,
        *,
        config: UnitConfig,
        controller: UnitController,
        calibrations: Calibrations,
        journal: Journal | None,
        epoch: EpochClock,
        recipes_dir: Path,
        batch_id: Callable[[], int | None],
        ph_calibration_due: Callable[[], bool],
        on_calibrated: Callable[[], None],
        clock_synchronized: Callable[[], bool | None] = lambda: None,
        commission: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        stats: Callable[[float | None], dict[str, Any]] | None = None,
        ended_batch: Callable[[], Mapping[str, Any] | None] = lambda: None,
    ) -> None:
        """`stats`: the scan loop's timing and the process's figures over the last `window_s`
        (None: no scan loop here to report on)."""
        self.config = config
        self.controller = controller
        self.calibrations = calibrations
        self.journal = journal
        self.epoch = epoch
        self.recipes_dir = recipes_dir
        self._batch_id = batch_id
        self._ended_batch = ended_batch
        self._ph_due = ph_calibration_due
        self._on_calibrated = on_calibrated
        self._clock_synchronized = clock_synchronized
        self._commission = commission  # None: no instruments to survey (the mock backend)
        self._stats = stats
        # The session that turned manual mode on: only it runs and ends manual actions.
        self._manual_session: Session | None = None
        self._probe_session: Session | None = None  # the guided calibration's, while out
        self._scanned = asyncio.Event()
        controller.watch(lambda _: self._scanned.set())
        self.pins = PinDesk(config=config, controller=controller)
        self.specs: dict[str, OpSpec] = {
            "identify": OpSpec(IdentifyArgs, Kind.READ, self._identify),
            "status": OpSpec(NoArgs, Kind.READ, self._status),
            "stats": OpSpec(StatsArgs, Kind.READ, self._stats_op),
            "alarms": OpSpec(NoArgs, Kind.READ, self._alarms),
            "recipes": OpSpec(NoArgs, Kind.READ, self._recipes),
            "log": OpSpec(LogArgs, Kind.READ, self._log),
            "batch": OpSpec(BatchArgs, Kind.READ, self._batch),
            "cal_ph_status": OpSpec(NoArgs, Kind.READ, self._cal_ph_status),
            "commission": OpSpec(NoArgs, Kind.READ, self._commission_report),
            "unlock": OpSpec(UnlockArgs, Kind.READ, self._unlock),
            "watch": OpSpec(WatchArgs, Kind.READ, None),
            "unwatch": OpSpec(NoArgs, Kind.READ, None),
            "ack": OpSpec(AlarmArgs, Kind.COMMAND, self._ack),
            "reset_alarms": OpSpec(AlarmArgs, Kind.COMMAND, self._reset_alarms),
            **{
                op: OpSpec(StartArgs if op == "start" else NoArgs, Kind.COMMAND, self._packml(op))
                for op in PACKML_OPS
            },
            "confirm": OpSpec(ConfirmArgs, Kind.CONSOLE, self._confirm),
            "manual": OpSpec(ManualArgs, Kind.PROTECTED, self._manual),
            "unitmode": OpSpec(UnitModeArgs, Kind.COMMAND, self._unit_mode),
            "authority": OpSpec(AuthorityArgs, Kind.CONSOLE, self._authority),
            "jog_pump": OpSpec(JogArgs, Kind.PROTECTED, self._jog_pump),
            "heater": OpSpec(HeaterArgs, Kind.PROTECTED, self._heater),
            "drain": OpSpec(DrainArgs, Kind.PROTECTED, self._drain),
            "cal_ph": OpSpec(CalPhArgs, Kind.PROTECTED, self._cal_ph),
            "cal_ph_clear": OpSpec(NoArgs, Kind.PROTECTED, self._cal_ph_clear),
            "cal_ph_probe_out": OpSpec(ProbeOutArgs, Kind.PROTECTED, self._cal_ph_probe_out),
            "cal_pump": OpSpec(CalPumpArgs, Kind.PROTECTED, self._cal_pump),
        }

    @property
    def pin_required(self) -> bool:
        """True when manual mode and calibration need the PIN."""
        return self.config.console.pin_required

    def parse(self, request: Request) -> tuple[OpSpec, OpArgs]:
        """The op's spec and validated arguments; OpError when unknown or malformed."""
        spec = self.specs.get(request.op)
        if spec is None:
            raise OpError(
                ErrorCode.UNKNOWN_OP,
                f"unknown op {request.op[:40]!r}; ops are {', '.join(sorted(self.specs))}",
            )
        try:
            return spec, spec.args.model_validate(request.args)
        except ValidationError as exc:
            raise OpError(ErrorCode.BAD_REQUEST, f"{request.op}: {problems_of(exc)}") from None

    async def handle(self, session: Session, request: Request) -> Response:
        """Validate, check permission, carry out and journal one request; never raises."""
        try:
            spec, args = self.parse(request)
            # Turning manual mode off is the safe direction: any local user may, PIN or not.
            if not (isinstance(args, ManualArgs) and not args.on):
                self._permit(session, request.op, spec)
            assert spec.handler is not None, f"{request.op} is handled by the server"
            result = await spec.handler(session, args)
        except OpError as exc:
            response = Response(id=request.id, ok=False, error=exc.message, code=exc.code)
        except CommandRefused as exc:
            response = Response(id=request.id, ok=False, error=str(exc), code=ErrorCode.REFUSED)
        except JournalError as exc:
            # A full or failing disk: the request was sound, the journal cannot answer it now.
            response = Response(id=request.id, ok=False, error=str(exc), code=ErrorCode.REFUSED)
        except Exception as exc:
            log.exception("control.op_failed", op=request.op, source=session.source)
            response = Response(
                id=request.id,
                ok=False,
                error=f"internal error: {type(exc).__name__}: {exc}",
                code=ErrorCode.INTERNAL,
            )
        else:
            response = Response(id=request.id, ok=True, result=result)
        self._journal(session, request, response)
        return response

    def _permit(self, session: Session, op: str, spec: OpSpec) -> None:
        if spec.kind in (Kind.CONSOLE, Kind.PROTECTED) and session.client != "console":
            raise OpError(
                ErrorCode.REFUSED,
                f"{op} is for the field-tech console only (someone at the unit): use unit-console",
            )
        if spec.kind is Kind.PROTECTED and self.pin_required and not session.unlocked:
            locked_s = self.pins.locked_for_s()
            if locked_s > 0.0:
                # Not "give the PIN": a console would ask for one no PIN can answer now, and
                # take the tech's next line for it.
                raise OpError(
                    ErrorCode.REFUSED,
                    f"{op} needs the PIN, and the PIN is locked out for {math.ceil(locked_s)} s "
                    "after too many wrong PINs in a row",
                )
            raise OpError(ErrorCode.PIN_REQUIRED, f"{op} needs the PIN: enter it with `pin` first")

    def _journal(self, session: Session, request: Request, response: Response) -> None:
        spec = self.specs.get(request.op)
        if self.journal is None or spec is None or spec.kind is Kind.READ:
            return
        self.journal.record_command(
            ts_ms=self.epoch.ms(self.controller.clock.monotonic()),
            source=session.source,
            command=request.op,
            args=request.args,
            ok=response.ok,
            error=response.error,
            result=response.result,
        )
        if not response.ok:
            log.warning(
                "control.refused", op=request.op, source=session.source, error=response.error
            )

    # --- reads -----------------------------------------------------------------------------
    async def _identify(self, session: Session, args: IdentifyArgs) -> dict[str, Any]:
        users = self.config.console.users
        if args.client == "console" and users and session.user not in users:
            raise OpError(
                ErrorCode.REFUSED,
                f"user {session.user!r} may not use the console here ([console] users: "
                f"{', '.join(users)})",
            )
        session.client = args.client
        if args.user and session.user == "unknown":
            session.user = args.user
        return {"source": session.source, "pin_required": self.pin_required}

    def status(self) -> dict[str, Any]:
        """The status dict (also what `watch` streams)."""
        controller = self.controller
        unit = self.config.unit
        alarms = controller.alarms.active()
        return status_dict(
            controller.snapshot,
            unit=unit.id,
            site=unit.site,
            manual=controller.manual,
            unit_mode=controller.unit_mode,
            manual_running=controller.manual_running(),
            manual_last_stop=controller.manual_last_stop() if controller.manual else None,
            batch_id=self._batch_id(),
            alarms_active=len(alarms),
            reagents_ml=controller.reagents_ml,
            ph_calibration_due=self._ph_due(),
            clock_synchronized=self._clock_synchronized(),
            storage_failing=storage_failing(alarms),
            authority=controller.authority.value,
            ts=None if controller.snapshot is None else self.epoch.ms(controller.snapshot.at),
            reactor_charged=controller.reactor_charged,
            pin_locked_s=self.pins.locked_for_s(),
        )

    async def _status(self, session: Session, args: NoArgs) -> dict[str, Any]:
        return self.status()

    async def _stats_op(self, session: Session, args: StatsArgs) -> dict[str, Any]:
        if self._stats is None:
            raise OpError(ErrorCode.REFUSED, "this controller keeps no scan statistics")
        return self._stats(args.window_s)

    async def _alarms(self, session: Session, args: NoArgs) -> dict[str, Any]:
        payload = alarms_payload(self.controller.alarms.active(), ts=0, epoch=self.epoch)
        return {"alarms": payload["alarms"]}

    async def _commission_report(self, session: Session, args: NoArgs) -> dict[str, Any]:
        if self._commission is None:
            raise CommandRefused(
                "commission: this unit runs on the simulator (mock backend), with no instruments "
                "to find; `unit-controller emulate` makes a bench of emulated ones"
            )
        return {"report": await self._commission()}

    async def _recipes(self, session: Session, args: NoArgs) -> dict[str, Any]:
        def read() -> list[dict[str, Any]]:
            out = []
            for name in list_recipes(self.recipes_dir):
                try:
                    loaded = load_recipe(name, config=self.config, recipes_dir=self.recipes_dir)
                except RecipeError as exc:
                    # Each problem whole (the console wraps them): the name says which file.
                    out.append(
                        {
                            "name": name,
                            "description": f"(cannot run here: {'; '.join(exc.problems)})",
                            "problems": exc.problems,
                        }
                    )
                    continue
                out.append({"name": name, "description": loaded.recipe.description})
            return out

        return {"recipes": await asyncio.to_thread(read)}

    async def _log(self, session: Session, args: LogArgs) -> dict[str, Any]:
        return {"entries": await self._needs_journal().recent(args.n)}

    async def _batch(self, session: Session, args: BatchArgs) -> dict[str, Any]:
        batch = await self._needs_journal().batch(args.id)
        if batch is None and args.id is not None:
            raise OpError(ErrorCode.REFUSED, f"no batch {args.id} in the journal")
        if batch is not None:
            batch.pop("trend_meta", None)
            running = batch["id"] == self._batch_id() and batch["final_state"] is None
            live = self.controller.batch
            batch["running"] = running
            if running and live is not None:
                # The journal's copy is as of the last phase, alarm or minute: the live one is
                # as of this scan (reagents dosed so far, alarms raised so far).
                batch["record"] = live.summary(phase_stats=True)
                batch["last_ts"] = self.epoch.ms(self.controller.clock.monotonic())
            ended = self._ended_batch()
            unsaved = ended is not None and ended["id"] == batch["id"]
            if not running and batch["final_state"] is None and ended is not None and unsaved:
                # Ended by this run, and the journal not written yet (a full disk): say how it
                # ended, not that a later start will find it interrupted.
                batch.update(ended)
                batch["unsaved"] = True
        return {"batch": batch}

    def _needs_journal(self) -> Journal:
        if self.journal is None:
            raise OpError(ErrorCode.REFUSED, "this controller keeps no journal")
        return self.journal

    async def _cal_ph_status(self, session: Session, args: NoArgs) -> dict[str, Any]:
        return await self.calibrations.ph_status()

    async def _unlock(self, session: Session, args: UnlockArgs) -> dict[str, Any]:
        await self.pins.unlock(session.source, args.pin)
        session.unlocked = True
        return {"unlocked": True}

    # --- commands --------------------------------------------------------------------------
    async def _ack(self, session: Session, args: AlarmArgs) -> dict[str, Any]:
        count = await self.controller.acknowledge(args.alarm_id, source=session.source)
        return {"count": count}

    async def _reset_alarms(self, session: Session, args: AlarmArgs) -> dict[str, Any]:
        count = await self.controller.reset_alarms(args.alarm_id, source=session.source)
        # Reset "all" with one held by its unreadable input: said, not left to be missed.
        return {
            "count": count,
            "held": self.controller.held_latched(args.alarm_id),
            "left": self.controller.reset_leaves(args.alarm_id),
        }

    def _packml(self, op: str) -> Handler:
        async def run(session: Session, args: Any) -> dict[str, Any]:
            recipe = args.recipe if isinstance(args, StartArgs) else None
            try:
                await self.controller.command(op, source=session.source, recipe=recipe)
            except CommandRefused as exc:
                owner = self._manual_owner()
                if str(exc) == MANUAL_IS_ON and owner is not None and owner is not session:
                    # Not "turn it off first": this session may not (another console owns it).
                    raise CommandRefused(
                        f"manual mode is on at another console session ({owner.source}): that "
                        "session turns it off (manual off), or stop or abort ends it from here"
                    ) from None
                raise
            await self._settled()
            return {"state": self.controller.machine.state.value}

        return run

    async def _settled(self) -> State:
        """The state once the acting state a command started (RESETTING…) is done, bounded.

        A tech's (or a script's) next line then meets IDLE, not RESETTING.
        """
        machine = self.controller.machine
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_S
        while machine.is_acting:
            self._scanned.clear()
            try:
                await asyncio.wait_for(self._scanned.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                break
        return machine.state

    async def _confirm(self, session: Session, args: ConfirmArgs) -> dict[str, Any]:
        prompt = await self.controller.confirm(source=session.source, answers=args.prompt)
        return {"prompt": prompt}

    def _manual_owner(self) -> Session | None:
        if not self.controller.manual:  # ended some other way (a stop, a trip's abort)
            self._manual_session = None
        return self._manual_session

    def _refuse_other_session(self, session: Session, what: str) -> None:
        """Manual mode is one tech's: another console may neither take it over, end it, nor
        run what the first is running (stop and abort still end everything from anywhere)."""
        owner = self._manual_owner()
        if owner is not None and owner is not session:
            raise CommandRefused(
                f"cannot {what}: manual mode is on at another console session ({owner.source}); "
                "only that session runs or ends it (stop or abort ends it from anywhere)"
            )

    def _owned(self, session: Session, on: bool) -> None:
        self._manual_session = session if on and self.controller.manual else None
        session.owns_manual = self._manual_session is session

    async def _manual(self, session: Session, args: ManualArgs) -> dict[str, Any]:
        self._refuse_other_session(session, f"turn manual {'on' if args.on else 'off'}")
        stopped = await self.controller.set_manual(args.on, source=session.source)
        self._owned(session, args.on)
        # `stopped` only when leaving ended something: what was running, said where asked.
        return {"manual": self.controller.manual} | ({"stopped": stopped} if stopped else {})

    async def _unit_mode(self, session: Session, args: UnitModeArgs) -> dict[str, Any]:
        manual = UnitMode(args.mode) is UnitMode.MANUAL
        if manual:
            # Manual is the console's jogs and heater runs: the same permission as `manual on`.
            self._permit(session, "unitmode manual", self.specs["manual"])
        self._refuse_other_session(session, f"set the unit mode to {args.mode}")
        mode = await self.controller.set_unit_mode(args.mode, source=session.source)
        self._owned(session, manual)
        stopped = self.controller.mode_change_stopped
        return {"unit_mode": mode.value, "manual": self.controller.manual} | (
            {"stopped": stopped} if stopped else {}
        )

    async def _authority(self, session: Session, args: AuthorityArgs) -> dict[str, Any]:
        mode = await self.controller.set_authority(args.mode, source=session.source)
        return {"authority": mode.value}

    async def _cal_ph_probe_out(self, session: Session, args: ProbeOutArgs) -> dict[str, Any]:
        owner = self._probe_session
        if args.on and owner is not None and owner is not session:
            raise CommandRefused(
                f"the pH probe is already out for a guided calibration ({owner.source})"
            )
        if not args.on and owner is not session:
            return {"probe_out": self.controller.probe_out is not None}
        await self.controller.take_probe_out(session.source if args.on else None)
        self._probe_session = session if args.on else None
        return {"probe_out": args.on}

    async def session_closed(self, session: Session) -> None:
        """A session ended: manual mode it turned on ends with it (a dropped serial line must
        not leave the unit in manual, where no one remote can take it out); so does a guided
        calibration's hold on starts."""
        if self._probe_session is session:
            self._probe_session = None
            await self.controller.take_probe_out(None)
        if self._manual_owner() is not session:
            return
        self._manual_session = None
        try:
            await self.controller.set_manual(False, source=f"{session.source} (session ended)")
        except CommandRefused as exc:
            log.error("control.manual_not_released", source=session.source, error=str(exc))

    async def _jog_pump(self, session: Session, args: JogArgs) -> dict[str, Any]:
        self._refuse_other_session(session, "jog")
        return dict(
            await self.controller.jog_pump(
                args.pump, args.ml, source=session.source, cylinder=args.cylinder
            )
        )

    async def _heater(self, session: Session, args: HeaterArgs) -> dict[str, Any]:
        self._refuse_other_session(session, "heat")
        return dict(
            await self.controller.manual_heater(args.percent, args.seconds, source=session.source)
        )

    async def _drain(self, session: Session, args: DrainArgs) -> dict[str, Any]:
        self._refuse_other_session(session, "drain")
        return dict(await self.controller.manual_drain(args.seconds, source=session.source))

    async def _cal_ph(self, session: Session, args: CalPhArgs) -> dict[str, Any]:
        try:
            result = await self.calibrations.ph(
                args.point, args.value, temperature_c=args.temperature_c, source=session.source
            )
        except PhCalibrationRefused as refused:
            # Its calibration cleared: the journal says so, and the probe is due again.
            self._calibrated(
                session,
                kind="ph",
                device=self.config.wiring.ph_tag,
                action="clear",
                data={"refused": refused.point, "value": refused.value},
            )
            raise
        self._calibrated(
            session, kind="ph", device=self.config.wiring.ph_tag, action=args.point, data=result
        )
        return result

    async def _cal_ph_clear(self, session: Session, args: NoArgs) -> dict[str, Any]:
        result = await self.calibrations.ph_clear(source=session.source)
        self._calibrated(
            session, kind="ph", device=self.config.wiring.ph_tag, action="clear", data=result
        )
        return result

    async def _cal_pump(self, session: Session, args: CalPumpArgs) -> dict[str, Any]:
        result = await self.calibrations.pump(args.pump, args.measured_ml, source=session.source)
        self._calibrated(session, kind="pump", device=args.pump, action="cal", data=result)
        return result

    def _calibrated(
        self, session: Session, *, kind: str, device: str, action: str, data: dict[str, Any]
    ) -> None:
        if self.journal is not None:
            self.journal.record_calibration(
                ts_ms=self.epoch.ms(self.controller.clock.monotonic()),
                device=device,
                kind=kind,
                action=action,
                # Who did it stays with the calibration (kept longer than the command log).
                data={**data, "by": session.source},
            )
        self._on_calibrated()
