"""`unit-console`: the field technician's line-oriented console (also a login shell), or a script.

Talks to the daemon only through its control socket, so nothing here can touch control; never
blocks the event loop on the terminal (terminal.py reads it on a thread), never echoes a PIN, and
never leaves a login session because the controller restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, TextIO

from unit_controller import __version__
from unit_controller.console.announce import Announcer
from unit_controller.console.calibrate import PhCalibration
from unit_controller.console.client import (
    ConnectionLost,
    ConsoleError,
    ControlClient,
    Response,
    Unreachable,
)
from unit_controller.console.lines import (
    CalPhGuided,
    Help,
    LineError,
    LogShow,
    Parsed,
    PhPoint,
    Pin,
    Quit,
    Remote,
    Request,
    Watch,
    parse_line,
)
from unit_controller.console.link import Link
from unit_controller.console.render import (
    render_help,
    render_result,
)
from unit_controller.console.render_log import render_entry
from unit_controller.console.screen import Screen
from unit_controller.console.terminal import (
    Interrupt,
    TerminalInput,
    ctrl_c_calls,
    ignore_ctrl_z,
    on_sigterm,
    tty_fd,
)
from unit_controller.console.text import Style, clean, wrap
from unit_controller.console.watch import watch

SOCKET_FILE: Final = "control.sock"
DEFAULT_SOCKET: Final = Path("/run/unit-controller") / SOCKET_FILE
EXIT_OK: Final = 0
EXIT_UNREACHABLE: Final = 1  # cannot connect, or lost the connection
EXIT_REFUSED: Final = 2  # piped: a line was malformed or a command refused
EXIT_INTERRUPTED: Final = 130


def default_socket(env: Mapping[str, str] | None = None) -> Path:
    """`$RUNTIME_DIRECTORY/control.sock` when systemd set it (first entry), else /run/...

    When /run/... is not there but a daemon run by hand left its socket in
    `$XDG_RUNTIME_DIR/unit-controller/` (the daemon's own fallback), that one.
    """
    env = os.environ if env is None else env
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / SOCKET_FILE
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and not DEFAULT_SOCKET.exists():
        by_hand = Path(xdg) / "unit-controller" / SOCKET_FILE
        if by_hand.exists():
            return by_hand
    return DEFAULT_SOCKET


class _Console:
    """One session: reads lines, sends requests, prints answers; remembers any refusal.

    The connection is the link's (link.py): interactive, it is kept across a restart of the
    controller; a script ends on a lost link instead.
    """

    def __init__(
        self, *, link: Link, input_: TerminalInput, screen: Screen, interactive: bool
    ) -> None:
        self._link = link
        self._input = input_
        self._screen = screen
        self._style = screen.style
        self._interactive = interactive
        self._failed = False
        self._command: asyncio.Task[None] | None = None
        self._log: list[dict[str, Any]] = []  # the last `log` listing, oldest first
        self.announcer: Announcer | None = None

    @property
    def _client(self) -> ControlClient:
        return self._link.client

    # --- output -------------------------------------------------------------------------------
    def say(self, *lines: str) -> None:
        """Print whole lines (above the prompt and what is typed, when there is one)."""
        self._screen.say(*lines)

    def _error(self, text: str) -> None:
        self._failed = True
        self.say(*wrap(f"error: {clean(text)}", indent=len("error: ")))

    async def run(self) -> int:
        """Read and carry out lines until quit or the end of input; the exit code."""
        while True:
            if self._interactive:
                self._screen.show_prompt(self._link.prompt)
            item = await self._input.get()
            if item is None:
                if self._interactive:
                    self._screen.break_line()
                break
            if item is Interrupt.CTRL_C:
                self._screen.break_line()
                continue
            assert isinstance(item, str)
            self._screen.entered(item)
            try:
                parsed = parse_line(item)
            except LineError as exc:
                self._failed = True
                self.say(*wrap(str(exc), indent=2))
                continue
            if parsed is None:
                continue
            if isinstance(parsed, Quit):
                break
            await self._carry_out(parsed)
            if self._input.ended:
                break
        await self._say_what_the_end_stops()
        return EXIT_REFUSED if self._failed and not self._interactive else EXIT_OK

    async def _say_what_the_end_stops(self) -> None:
        """Leaving ends the manual mode this session turned on, and stops what it still runs
        (a script's jog a line before its end): say so rather than cut it short unsaid."""
        if not (self._link.manual_here and self._client.connected):
            return
        try:
            response = await self._client.request("status", {}, timeout_s=END_CHECK_TIMEOUT_S)
        except ConnectionLost:
            return  # the daemon is gone: its manual mode with it, nothing to tell
        except ConsoleError:
            self._error(
                "could not ask the controller what ending the session stops: its manual mode "
                "ends with it, and any jog or heater run it still has"
            )
            return
        running = (response.result or {}).get("manual_running") if response.ok else None
        if not running or not isinstance(running, list):
            return
        stopped = "; ".join(clean(str(line)) for line in running)
        if self._interactive:
            # The tech chose to leave: told what that stops, not scolded with an error.
            self.say(*wrap(f"leaving ends manual mode, which stops {stopped}", indent=2))
            return
        self._error(
            f"the session ends here and its manual mode with it, which stops {stopped}; "
            "to let it finish, wait before the end (watch <seconds>)"
        )

    async def _carry_out(self, parsed: Parsed) -> None:
        if self._interactive and _needs_link(parsed) and not self._client.connected:
            self._error("not connected to the controller (reconnecting): try again once it is back")
            return
        self._command = asyncio.create_task(self._do(parsed))
        try:
            await self._command
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            self.say(_interrupted(parsed))
        except ConnectionLost:
            if not self._interactive:
                raise  # the script is over: run_console says so
            self._error(_lost(parsed))
        except ConsoleError as exc:  # a refused watch, a request without an answer
            self._error(str(exc))
        finally:
            self._command = None

    def on_interrupt(self) -> None:
        """Ctrl-C: cancel the command being carried out, or give a new prompt."""
        command = self._command
        if command is not None and not command.done():
            command.cancel()
        else:
            self._input.interrupt()

    def on_terminate(self) -> None:
        """SIGTERM: stop what runs and leave as at the end of input (the terminal put back)."""
        self._input.end()
        self.on_interrupt()

    async def _do(self, parsed: Parsed) -> None:
        if isinstance(parsed, Help):
            self.say(*render_help(parsed.topic, self._style))
        elif isinstance(parsed, Pin):
            await self._unlock()
        elif isinstance(parsed, Watch):
            await self._watch(parsed.seconds)
        elif isinstance(parsed, LogShow):
            self._log_show(parsed)
        elif isinstance(parsed, CalPhGuided):
            await self._calibrate(None)
        elif isinstance(parsed, Remote) and parsed.command == "reset":
            await self._reset()
        elif isinstance(parsed, Remote) and parsed.command == "cal ph" and self._interactive:
            args = parsed.requests[0].args
            value, temperature = args.get("value"), args.get("temperature_c")
            assert isinstance(value, float)
            assert temperature is None or isinstance(temperature, float)
            point = PhPoint(point=str(args["point"]), value=value, temperature_c=temperature)
            await self._calibrate(point)
        elif isinstance(parsed, Remote):
            await self._remote(parsed)

    # --- remote commands ----------------------------------------------------------------------
    async def _remote(self, command: Remote) -> None:
        outcomes: list[tuple[Response, list[str]]] = []
        for request in command.requests:
            response = await self._ask(request, guarded=command.guarded)
            outcomes.append((response, self._outcome(request.op, response)))
        self._tell(outcomes)

    def _tell(self, outcomes: Sequence[tuple[Response, list[str]]]) -> None:
        if len(outcomes) > 1 and all(r.ok and len(lines) == 1 for r, lines in outcomes):
            self.say(*wrap("; ".join(lines[0] for _, lines in outcomes), indent=2))
            return
        for response, lines in outcomes:
            if response.ok:
                self.say(*lines)
            else:
                self._error(lines[0])

    async def _ask(self, request: Request, *, guarded: bool) -> Response:
        args = request.args
        shown = self.announcer.last_prompt if self.announcer is not None else None
        if request.op == "confirm" and shown is not None:
            # What the tech was shown: a confirm typed twice must not answer the next prompt
            # before it is on the screen.
            args = {**args, "prompt": shown}
        response = await self._client.request(request.op, args)
        retry = response.code == "pin_required" and guarded and self._interactive
        if retry:
            if await self._unlock():
                response = await self._client.request(request.op, args)
            else:
                # The PIN's own refusal is said already: not "enter it with pin first" again.
                response = replace(response, error=f"{request.op} not carried out: no PIN accepted")
        if request.op in ("manual", "unitmode") and response.ok:
            self._link.manual_here = bool((response.result or {}).get("manual"))
        if request.op == "log" and response.ok:
            entries = (response.result or {}).get("entries")
            listed = entries if isinstance(entries, list) else []
            self._log = [entry for entry in listed if isinstance(entry, dict)]
        return response

    async def _unlock(self) -> bool:
        if self._interactive and await self._pin_locked_out():
            return False
        if self._interactive:
            async with self._input.no_echo():
                self._screen.show_prompt("PIN: ", secret=True)
                item = await self._input.get()
            self._screen.break_line()  # without echo, the Enter did not end the line
        else:
            item = await self._input.get()  # a script gives the PIN on the next line
        if not isinstance(item, str) or not item.strip():
            self._error("no PIN given")
            return False
        response = await self._client.request("unlock", {"pin": item.strip()})
        if not response.ok:
            self._error(response.error or "the PIN was not accepted")
            return False
        self._link.unlocked = True
        self.say("unlocked: manual and calibration commands allowed in this session")
        return True

    async def _pin_locked_out(self) -> bool:
        """Say so, and True, while the PIN is locked out: a prompt then would only take a PIN
        that no PIN can answer."""
        status = await self._client.request("status")
        locked = (status.result or {}).get("pin_locked_s") if status.ok else None
        if not isinstance(locked, int | float) or locked <= 0:
            return False
        self._error(
            f"the PIN is locked out for {math.ceil(locked)} s after too many wrong PINs in a row"
        )
        return True

    def _outcome(self, op: str, response: Response) -> list[str]:
        """What to print for one response: its error, or its result in words."""
        if not response.ok:
            return [response.error or f"{op} refused ({response.code or 'no reason given'})"]
        return render_result(op, response.result or {}, self._style)

    async def _reset(self) -> None:
        """Latched alarms first, then PackML reset where PackML has one (STOPPED, COMPLETE);
        from ABORTED, what to do instead (clear first: the tech checks the reactor)."""
        alarms = await self._ask(Request("reset_alarms", {"alarm": None}), guarded=False)
        if not alarms.ok:
            self._tell([(alarms, self._outcome("reset_alarms", alarms))])
            return
        # The count, then what stays held by an unreadable input (never dropped: a reset
        # that leaves a high-high latched must say so).
        said, *held = self._outcome("reset_alarms", alarms)
        status = await self._client.request("status")
        state = (status.result or {}).get("state") if status.ok else None
        if not isinstance(state, str) or state in RESETTABLE:
            reset = await self._ask(Request("reset"), guarded=False)
            self._tell([(alarms, [said, *held]), (reset, self._outcome("reset", reset))])
        elif state == "IDLE":
            self.say(f"{said}; the unit is already IDLE", *held)
        else:
            self._failed = True  # a script that wanted IDLE did not get it
            hint = _NOT_RESETTABLE.get(state, "PackML reset is for STOPPED or COMPLETE")
            self.say(*wrap(f"{said}; the unit is {state}: {hint}", indent=2), *held)

    # --- local ----------------------------------------------------------------------------------
    def _log_show(self, which: LogShow) -> None:
        entries = self._log
        if not entries:
            self._error("no log listing yet: list it first (log, or log 50)")
            return
        count = len(entries)
        if which.ref is not None:
            found = [i for i, e in enumerate(entries) if clean(e.get("ref", "")) == which.ref]
            if not found:
                self._error(f"no entry {which.ref} in the last listing of {count}")
                return
            number = count - found[-1]
        else:
            assert which.number is not None
            number = which.number
            if number > count:
                self._error(f"the last listing has {count} entries: log {number} lists more")
                return
        self.say(*render_entry(entries[count - number], number, self._style))

    # --- calibration --------------------------------------------------------------------------
    async def _calibrate(self, point: PhPoint | None) -> None:
        if not self._interactive:
            self._error("cal ph alone guides you at a terminal; in a script: cal ph mid 7.00")
            return
        if self._link.pin_required and not self._link.unlocked and not await self._unlock():
            return
        flow = PhCalibration(
            client=self._client,
            screen=self._screen,
            input_=self._input,
            ask=lambda request: self._ask(request, guarded=True),
        )
        if point is None:
            await flow.run()
        else:
            await flow.one(point)
        self._failed = self._failed or flow.failed

    # --- watch --------------------------------------------------------------------------------
    async def _watch(self, seconds: float | None) -> None:
        if self.announcer is not None:
            self.announcer.paused = True  # the watch prints the same events itself
        try:
            await watch(
                self._client,
                screen=self._screen,
                input_=self._input if self._interactive else None,
                seconds=seconds,
            )
        finally:
            if self.announcer is not None:
                self.announcer.paused = False


RESETTABLE: Final = frozenset({"STOPPED", "COMPLETE"})  # PackML reset's sources
# The last look as a session ends: a daemon that does not answer by then is said to.
END_CHECK_TIMEOUT_S = 2.0
_NOT_RESETTABLE: Final = {
    "ABORTED": "reset works from STOPPED or COMPLETE. Once the reactor is checked: "
    "ack all, clear (ABORTED -> STOPPED), then reset (-> IDLE)",
    "HELD": "unhold carries on, stop ends the batch (PackML reset is for STOPPED or COMPLETE)",
    "SUSPENDED": "unsuspend carries on, stop ends the batch (PackML reset is for STOPPED or "
    "COMPLETE)",
}


def _interrupted(parsed: Parsed) -> str:
    """What to say when Ctrl-C stopped `parsed`."""
    guided = isinstance(parsed, CalPhGuided) or (
        isinstance(parsed, Remote) and parsed.command == "cal ph"
    )
    if guided:
        return "calibration stopped: the point being read was not taken (cal ph status)"
    return "interrupted"


def _needs_link(parsed: Parsed) -> bool:
    return not isinstance(parsed, Help | LogShow | Quit)


def _lost(parsed: Parsed) -> str:
    """What to say when the controller went while `parsed` was being carried out."""
    if isinstance(parsed, Watch):
        return "watch ended: the controller went"
    if isinstance(parsed, CalPhGuided) or (
        isinstance(parsed, Remote) and parsed.command == "cal ph"
    ):
        return "calibration stopped: the controller went (cal ph status once it is back)"
    what = parsed.command if isinstance(parsed, Remote) else "pin"
    return f"{what}: the controller went before its answer; check with status once it is back"


# --- entry points -----------------------------------------------------------------------------
async def run_console(
    *,
    socket_path: Path,
    stdin: TextIO,
    stdout: TextIO,
    interactive: bool | None = None,
    stderr: TextIO | None = None,
) -> int:
    """One console session on these streams; the exit code (0, 1 unreachable, 2 refused piped).

    Interactive, an unreachable or lost controller is waited for (the console may be someone's
    login shell): only quit or the end of input leaves.
    """
    errors = stdout if stderr is None else stderr
    if interactive is None:
        interactive = tty_fd(stdin) is not None
    style = Style.detect(stdout)
    client = ControlClient()
    hello: dict[str, Any] | None = None
    try:
        hello = await client.connect(socket_path)
    except ConsoleError as exc:
        if not interactive or (isinstance(exc, Unreachable) and not exc.retry):
            errors.write(style.out(str(exc)) + "\n")
            errors.flush()
            return EXIT_UNREACHABLE
        stdout.write(style.out(f"{exc}\nretrying every few seconds; quit or Ctrl-D leaves") + "\n")
    loop = asyncio.get_running_loop()
    screen = Screen(stdout, style, live=interactive and tty_fd(stdout) is not None)
    input_ = TerminalInput(stdin, loop=loop, screen=screen)
    link = Link(path=socket_path, screen=screen, interactive=interactive, client=client)
    console = _Console(link=link, input_=input_, screen=screen, interactive=interactive)
    input_.on_interrupt = console.on_interrupt
    tasks: list[asyncio.Task[None]] = []
    try:
        with (
            ctrl_c_calls(console.on_interrupt, loop=loop, enabled=interactive),
            on_sigterm(console.on_terminate, loop=loop, enabled=interactive),
        ):
            if hello is not None:
                await link.greet(client, hello)
            if interactive:
                tasks.append(asyncio.create_task(link.keep()))
                tasks.append(asyncio.create_task(link.keep_alive()))
                console.announcer = Announcer(path=socket_path, screen=screen)
                tasks.append(asyncio.create_task(console.announcer.run()))
                await console.announcer.ready.wait()  # announcements from the first prompt on
            input_.start()
            return await console.run()
    except ConnectionLost as exc:
        errors.write(style.out(str(exc)) + "\n")
        errors.flush()
        return EXIT_UNREACHABLE
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await input_.restore()
        await link.close()


def build_parser() -> argparse.ArgumentParser:
    """`unit-console [--socket PATH] [-c COMMANDS]`."""
    parser = argparse.ArgumentParser(
        prog="unit-console",
        description="Field-tech console of the unit controller (commands: type help).",
    )
    parser.add_argument(
        "--socket",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"the controller's control socket (default $RUNTIME_DIRECTORY/control.sock, "
        f"else {DEFAULT_SOCKET})",
    )
    parser.add_argument(
        "-c",
        dest="commands",
        default=None,
        metavar="COMMANDS",
        help="run these commands (separated by newlines or ';') as a script and leave, "
        "as a login shell is asked to by `ssh tech@unit status`",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (also a login shell); returns the exit code."""
    login_shell = argv is None and sys.argv[0].startswith("-")
    args, unknown = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if unknown:
        print(f"unit-console: ignoring {' '.join(unknown)}", file=sys.stderr)
    if login_shell:
        ignore_ctrl_z()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a terminal that cannot show a character
    script = None if args.commands is None else args.commands.replace(";", "\n") + "\n"
    stdin: TextIO = sys.stdin if script is None else io.StringIO(script)
    interactive = None if args.commands is None else False
    try:
        return asyncio.run(
            run_console(
                socket_path=args.socket or default_socket(),
                stdin=stdin,
                stdout=sys.stdout,
                interactive=interactive,
                stderr=sys.stderr,
            )
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output left (`unit-console | head`): leave quietly.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
