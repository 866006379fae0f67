"""A stand-in for the daemon's control socket: the protocol with canned answers, for console tests.

Records every request it receives; never runs a controller, and serves only while a test holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

UNIT: Final = "sim-unit-01"
PIN: Final = "1234"
GUARDED: Final = frozenset(
    {"manual", "jog_pump", "heater", "cal_ph", "cal_ph_clear", "cal_ph_probe_out", "cal_pump"}
)
STATE_NO: Final = {
    "STOPPED": 2, "RESETTING": 15, "IDLE": 4, "STARTING": 3, "EXECUTE": 6, "COMPLETING": 16,
    "COMPLETE": 17, "HOLDING": 10, "HELD": 11, "UNHOLDING": 12, "STOPPING": 7, "ABORTING": 8,
    "ABORTED": 9, "CLEARING": 1,
}  # fmt: skip


def _ms() -> int:
    return int(time.time() * 1000)


def status(state: str, *, phase: str | None = None, **changes: Any) -> dict[str, Any]:
    """A full status dict as the daemon sends it, in `state`."""
    executing = state == "EXECUTE"
    base: dict[str, Any] = {
        "ts": _ms(),
        "unit": UNIT,
        "site": "lab",
        "state": state,
        "state_no": STATE_NO.get(state),
        "phase": phase,
        "phase_no": 2 if phase else None,
        "phase_count": 3 if phase else None,
        "phase_elapsed_s": 754.0 if phase else None,
        "phase_remaining_s": 2870.0 if phase else None,
        "phase_waits_on_event": False if phase else None,
        "recipe": "coprecipitation" if phase else None,
        "batch_id": 7 if phase else None,
        "awaiting_confirmation": None,
        "manual": False,
        "manual_running": [],
        "temperature_c": 58.21 if executing else 21.5,
        "temperature_sp_c": 60.0 if executing else None,
        "ph": 10.987,
        "ph_sp": 11.0 if executing else None,
        "levels": {"low_low": True, "low": True, "high": False, "high_high": False},
        "estop_pressed": False,
        "heater_duty": 0.35 if executing else 0.0,
        "outputs": {
            "heater_on": executing,
            "contactor": executing,
            "agitator": executing,
            "fill_pump": False,
            "drain_valve": False,
            "purge_valve": executing,
        },
        "pumps_ml_min": {"P-203": 1.25 if executing else 0.0, "P-205": 3.0 if executing else 0.0},
        "reagents_ml": {"P-203": 120.5},
        "alarms_active": 1,
        "bad": {},
        "ph_calibration_due": False,
        "clock_synchronized": True,
    }
    return base | changes


ALARMS: Final = [
    {
        "id": "level_high_high",
        "tag": "LSHH-101",
        "priority": "high",
        "state": "unack_active",
        "message": "high-high level switch wet: inflows stopped",
        "first_out": True,
        "latched": True,
        "raised_ts": 1_700_000_000_000,
        "acked_ts": None,
    }
]

RECIPES: Final = [
    {"name": "leach", "description": "Leach black mass in sulfuric acid with H2O2"},
    {"name": "coprecipitation", "description": "pCAM hydroxide at pH 11.00"},
]

BATCH: Final = {
    "id": 7,
    "recipe": "coprecipitation",
    "recipe_sha256": "ab" * 32,
    "start_ts": 1_700_000_000_000,
    "end_ts": 1_700_003_600_000,
    "final_state": "COMPLETE",
    "record": {
        "phases": [
            {"name": "heat", "start_s": 0.0, "end_s": 600.0, "t_min": 21.0, "t_max": 60.2,
             "t_mean": 45.1, "ph_min": 10.8, "ph_max": 11.02, "ph_mean": 10.95},
            {"name": "coprecipitate", "start_s": 600.0, "end_s": 3600.0, "t_min": 59.6,
             "t_max": 60.4, "t_mean": 60.0, "ph_min": 10.96, "ph_max": 11.04, "ph_mean": 11.0},
        ],
        "reagents_ml": {"P-203": 812.4, "P-204": 95.0},
        "alarms": [],
    },
}  # fmt: skip


def watch_script() -> list[tuple[str, dict[str, Any]]]:
    """What a watch streams: a batch from EXECUTE to COMPLETE, then COMPLETE status lines."""
    return [
        ("status", status("EXECUTE", phase="heat")),
        ("event", {"ts": _ms(), "kind": "phase", "text": "phase coprecipitate"}),
        ("status", status("EXECUTE", phase="coprecipitate")),
        ("event", {"ts": _ms(), "kind": "state", "text": "EXECUTE -> COMPLETING (finish)",
                   "old": "EXECUTE", "new": "COMPLETING"}),
        ("event", {"ts": _ms(), "kind": "state", "text": "COMPLETING -> COMPLETE (done)",
                   "old": "COMPLETING", "new": "COMPLETE"}),
        ("status", status("COMPLETE", phase=None)),
    ]  # fmt: skip


LOG: Final = [
    {"ref": "e1", "ts": 1_700_000_000_000, "kind": "state",
     "text": "STOPPED -> RESETTING (reset: console:tech)",
     "data": {"old": "STOPPED", "new": "RESETTING", "cause": "reset: console:tech"}},
    {"ref": "c1", "ts": 1_700_000_001_000, "kind": "command", "text": "reset by console:tech ok",
     "source": "console:tech", "command": "reset", "args": {}, "ok": True, "error": None,
     "result": {"state": "IDLE"}, "detail": "reset by console:tech"},
    {"ref": "c2", "ts": 1_700_000_002_000, "kind": "command",
     "text": "start by mqtt:alice refused", "source": "mqtt:alice", "command": "start",
     "args": {"recipe": "leach"}, "ok": False,
     "error": "start refused: the unit is in local mode: a tech at the unit sets remote "
              "(mode remote) once the reactor has been checked after the E-stop",
     "result": None},
    {"ref": "e2", "ts": 1_700_000_003_000, "kind": "alarm",
     "text": "level_high_high (LSHH-101) raised: high-high level switch wet: inflows stopped",
     "data": {"alarm_id": "level_high_high", "tag": "LSHH-101", "transition": "raised",
              "priority": "high", "state": "unack_active", "first_out": True,
              "message": "high-high level switch wet: inflows stopped"}},
]  # fmt: skip


@dataclass(eq=False)
class _Session:
    writer: asyncio.StreamWriter
    unlocked: bool = False
    client: str = "socket"
    watch: asyncio.Task[None] | None = None
    watch_id: Any = None
    events_only: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class StubDaemon:
    """Serves the control-socket protocol on `path` with canned state; `requests` records all."""

    def __init__(
        self,
        *,
        path: Path,
        pin: str | None = None,
        state: str = "STOPPED",
        drop_on: str | None = None,
        ignore_on: str | None = None,
        stream_every_s: float = 0.05,
        pushed: bool = False,
    ) -> None:
        """`pushed`: a status watch streams only the status lines `push` gives (the script of
        a batch otherwise)."""
        self.path = path
        self.pushed = pushed
        self._pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.status_watched = asyncio.Event()  # set when a session starts a status watch
        self.pin = pin
        self.pin_locked_s = 0.0  # a test sets it: the PIN locked out for this long
        self.state = state
        self.drop_on = drop_on
        self.ignore_on = ignore_on  # an op it never answers (a stuck controller)
        self.stream_every_s = stream_every_s
        self.requests: list[dict[str, Any]] = []
        self.manual_running: list[str] = []  # jogs the stub pretends still run
        self.held: list[str] = []  # latches a reset leaves, their input unreadable ("id (tag)")
        self.status_changes: dict[str, Any] = {}  # a test's own figures in every status
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self.announcing = asyncio.Event()  # set once a session watches events only

    @property
    def ops(self) -> list[str]:
        """The ops received, in order."""
        return [str(r.get("op")) for r in self.requests]

    def announce(self, event: dict[str, Any]) -> None:
        """Send a controller event to every session that watches events only."""
        for session in self._sessions:
            if session.events_only and session.watch is not None:
                self._send(session, {"id": session.watch_id, "stream": "event", "data": event})

    def args_of(self, op: str) -> list[dict[str, Any]]:
        """The args of every request for `op`."""
        return [r.get("args", {}) for r in self.requests if r.get("op") == op]

    async def __aenter__(self) -> StubDaemon:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            for task in (session.watch, *session.tasks):
                if task is not None:
                    task.cancel()
            session.writer.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._server.wait_closed()
        self.path.unlink(missing_ok=True)

    # --- one connection -----------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer=writer)
        self._sessions.add(session)
        hello = {
            "unit": UNIT,
            "site": "lab",
            "version": "0.1.0",
            "state": self.state,
            "pin_required": self.pin is not None,
        }
        try:
            self._send(session, {"hello": hello})
            while line := await reader.readline():
                request = json.loads(line)
                self.requests.append(request)
                if request.get("op") == self.drop_on:
                    return
                if request.get("op") == self.ignore_on:
                    continue
                self._send(session, self._answer(session, request))
        except (OSError, ValueError):
            pass
        finally:
            if session.watch is not None:
                session.watch.cancel()
            self._sessions.discard(session)
            writer.close()

    def _send(self, session: _Session, message: dict[str, Any]) -> None:
        if not session.writer.is_closing():
            session.writer.write(json.dumps(message).encode() + b"\n")

    def _answer(self, session: _Session, request: dict[str, Any]) -> dict[str, Any]:
        rid, op, args = request.get("id"), request.get("op"), request.get("args") or {}
        try:
            result = self._result(session, rid, str(op), args)
        except _Refused as exc:
            return {"id": rid, "ok": False, "error": exc.text, "code": exc.code, "result": None}
        return {"id": rid, "ok": True, "error": None, "code": None, "result": result}

    def _result(self, session: _Session, rid: Any, op: str, args: dict[str, Any]) -> Any:
        if op in GUARDED and self.pin is not None and not session.unlocked:
            raise _Refused(f"{op} needs the PIN: enter it with `pin` first", "pin_required")
        if op in GUARDED and self.state == "EXECUTE":
            raise _Refused(f"{op} is refused while a batch is executing", "refused")
        match op:
            case "identify":
                session.client = args.get("client", "socket")
                return {"source": f"{session.client}:{args.get('user')}"}
            case "status":
                phase = "heat" if self.state == "EXECUTE" else None
                running = list(self.manual_running)
                return status(
                    self.state,
                    phase=phase,
                    manual_running=running,
                    pin_locked_s=self.pin_locked_s,
                    **self.status_changes,
                )
            case "alarms":
                return {"alarms": ALARMS}
            case "ack":
                return {"count": 1 if args.get("alarm") in (None, "level_high_high") else 0}
            case "reset_alarms":
                count = 1 if args.get("alarm") in (None, "level_high_high") else 0
                return {"count": count, "held": list(self.held)}
            case "reset" | "start" | "hold" | "unhold" | "stop" | "abort" | "clear":
                return {"state": self._packml(op, args)}
            case "confirm":
                return {"prompt": "Black mass charged"}
            case "recipes":
                return {"recipes": RECIPES}
            case "manual":
                if not args.get("on"):
                    self.manual_running.clear()
                return {"manual": bool(args.get("on"))}
            case "jog_pump":
                self.manual_running.append(f"jog {args['pump']} at 0.0 of {args['ml']:g} mL")
                return {"pump": args["pump"], "ml": args["ml"], "ml_min": 20.0, "seconds": 15.0}
            case "heater":
                return {"percent": args["percent"], "seconds": args["seconds"]}
            case "cal_ph":
                return {
                    "probe": "AT-101", "points": 1, "calibrated": True, "acid_slope_pct": 100.0,
                    "base_slope_pct": 100.0, "offset_mv": 0.59, "verdict": "ok", "problems": [],
                    "summary": "1 point(s), slopes not measured (mid point only), offset "
                    "+0.6 mV: ok", "point": args.get("point"), "value": args.get("value"),
                    "temperature_c": args.get("temperature_c") or 21.5,
                    "calibrated_points": [args.get("point")],
                }  # fmt: skip
            case "cal_ph_status":
                return {"probe": "AT-101", "points": 0, "calibrated": False, "verdict": "ok"}
            case "cal_ph_clear":
                return {"probe": "AT-101", "points": 0, "cleared": True}
            case "cal_ph_probe_out":
                return {"probe_out": bool(args.get("on"))}
            case "cal_pump":
                return {
                    "pump": args["pump"],
                    "measured_ml": args["measured_ml"],
                    "calibrated": True,
                }
            case "unlock":
                if args.get("pin") != self.pin:
                    raise _Refused("wrong PIN", "refused")
                session.unlocked = True
                return {"unlocked": True}
            case "log":
                n = int(args.get("n", 20))
                return {"entries": LOG[-n:]}
            case "batch":
                return {"batch": BATCH if args.get("id") in (None, 7) else None}
            case "watch":
                if session.watch is not None:
                    session.watch.cancel()
                session.watch_id = rid
                session.events_only = args.get("status") is False
                if session.events_only:
                    self.announcing.set()
                stream = self._quiet if session.events_only else self._stream
                if not session.events_only:
                    self.status_watched.set()
                    stream = self._pushed if self.pushed else stream
                session.watch = asyncio.create_task(stream(session, rid))
                return {"watching": True}
            case "unwatch":
                if session.watch is not None:
                    session.watch.cancel()
                    session.watch = None
                return {"watching": False}
        raise _Refused(f"unknown op {op!r}", "unknown_op")

    def _packml(self, op: str, args: dict[str, Any]) -> str:
        allowed = {
            "reset": ({"STOPPED", "COMPLETE"}, "IDLE"),
            "start": ({"IDLE"}, "EXECUTE"),
            "hold": ({"EXECUTE"}, "HELD"),
            "unhold": ({"HELD"}, "EXECUTE"),
            "stop": ({"IDLE", "EXECUTE", "HELD", "COMPLETE"}, "STOPPED"),
            "abort": ({"IDLE", "EXECUTE", "HELD", "COMPLETE", "STOPPED"}, "ABORTED"),
            "clear": ({"ABORTED"}, "STOPPED"),
        }
        sources, target = allowed[op]
        if self.state not in sources:
            raise _Refused(
                f"cannot {op} in {self.state}: {op} is allowed from {', '.join(sorted(sources))}",
                "refused",
            )
        if op == "start" and args.get("recipe") not in ("leach", "coprecipitation"):
            raise _Refused(f"recipe refused: no recipe named {args.get('recipe')!r}", "refused")
        self.state = target
        acting = {"IDLE": "RESETTING", "EXECUTE": "STARTING", "HELD": "HOLDING"}
        return acting.get(target, target) if op in ("reset", "start", "hold") else target

    def push(self, **changes: Any) -> None:
        """One status line (the stub's status with `changes`) to a pushed status watch."""
        self._pushes.put_nowait(status(self.state, **changes))

    async def _pushed(self, session: _Session, rid: Any) -> None:
        while True:
            self._send(session, {"id": rid, "stream": "status", "data": await self._pushes.get()})

    async def _quiet(self, session: _Session, rid: Any) -> None:
        """An events-only watch: events come from `announce`."""
        await asyncio.Event().wait()

    async def _stream(self, session: _Session, rid: Any) -> None:
        script = watch_script()
        for kind, data in script:
            await asyncio.sleep(self.stream_every_s)
            self._send(session, {"id": rid, "stream": kind, "data": data})
        while True:  # the batch is over: status lines until unwatch
            await asyncio.sleep(self.stream_every_s)
            self._send(session, {"id": rid, "stream": "status", "data": script[-1][1]})


class _Refused(Exception):
    def __init__(self, text: str, code: str) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
