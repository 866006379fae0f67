"""`unit-console`: the field technician's line-oriented console (also a login shell), or a script.

Talks to the daemon only through its control socket, so nothing here can touch control; never
blocks the event loop on the terminal (terminal.py reads it on a thread) and never echoes a PIN.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from unit_controller import __version__
from unit_controller.console.client import (
    ConnectionLost,
    ConsoleError,
    ControlClient,
    Response,
)
from unit_controller.console.lines import (
    Help,
    LineError,
    Parsed,
    Pin,
    Quit,
    Remote,
    Request,
    Watch,
    parse_line,
)
from unit_controller.console.render import (
    END_STATES,
    render_event,
    render_help,
    render_result,
    render_status_line,
)
from unit_controller.console.terminal import (
    Interrupt,
    Item,
    TerminalInput,
    ctrl_c_calls,
    ignore_ctrl_z,
    tty_fd,
)
from unit_controller.console.text import Style, clean, fit, wrap

SOCKET_FILE: Final = "control.sock"
DEFAULT_SOCKET: Final = Path("/run/unit-controller") / SOCKET_FILE
EXIT_OK: Final = 0
EXIT_UNREACHABLE: Final = 1  # cannot connect, or lost the connection
EXIT_REFUSED: Final = 2  # piped: a line was malformed or a command refused
EXIT_INTERRUPTED: Final = 130
WATCH_EVERY_S: Final = 2.0  # a status line this often while watching: calm on a serial line
UNWATCH_TIMEOUT_S: Final = 5.0


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
    """One session: reads lines, sends requests, prints answers; remembers any refusal."""

    def __init__(
        self,
        *,
        client: ControlClient,
        input_: TerminalInput,
        stdout: TextIO,
        interactive: bool,
        style: Style,
    ) -> None:
        self._client = client
        self._input = input_
        self._stdout = stdout
        self._interactive = interactive
        self._style = style
        self._failed = False
        self._command: asyncio.Task[None] | None = None
        self.prompt = "> "

    # --- output -------------------------------------------------------------------------------
    def say(self, *lines: str) -> None:
        """Write whole lines and flush (a serial terminal shows them at once)."""
        text = "".join(self._style.out(line) + "\n" for line in lines)
        try:
            self._stdout.write(text)
        except UnicodeEncodeError:
            self._stdout.write(text.encode("ascii", "replace").decode("ascii"))
        self._stdout.flush()

    def _error(self, text: str) -> None:
        self._failed = True
        self.say(*wrap(f"error: {clean(text)}", indent=len("error: ")))

    def _write_prompt(self, text: str) -> None:
        self._stdout.write(self._style.out(text))
        self._stdout.flush()

    # --- session ------------------------------------------------------------------------------
    async def greet(self, hello: Mapping[str, Any]) -> None:
        """Say who we are to the controller, and in a tty session who the controller is."""
        unit = clean(hello.get("unit") or "unit")
        self.prompt = f"{unit}> "
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name anywhere (a uid without a passwd entry)
            user = f"uid{os.getuid()}"
        identity = {"client": "console", "user": user[:32]}  # the protocol's limit
        response = await self._client.request("identify", identity)
        if not response.ok:
            text = f"warning: the controller did not take this console: {response.error}"
            self.say(*wrap(clean(text), indent=len("warning: ")))
        if self._interactive:
            pin = "; PIN for manual and calibration" if hello.get("pin_required") else ""
            self.say(
                fit(
                    f"{unit} at {clean(hello.get('site') or '?')}, controller "
                    f"{clean(hello.get('version') or '?')}, {clean(hello.get('state') or '?')}{pin}"
                ),
                "type help for the commands, quit to leave",
            )

    async def run(self) -> int:
        """Read and carry out lines until quit or the end of input; the exit code."""
        while True:
            if self._interactive:
                self._write_prompt(self.prompt)
            item = await self._input.get()
            if item is None:
                if self._interactive:
                    self.say("")
                break
            if item is Interrupt.CTRL_C:
                self.say("")
                continue
            assert isinstance(item, str)
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
        return EXIT_REFUSED if self._failed and not self._interactive else EXIT_OK

    async def _carry_out(self, parsed: Parsed) -> None:
        self._command = asyncio.create_task(self._do(parsed))
        try:
            await self._command
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            self.say("interrupted")
        except ConnectionLost:
            raise  # the session is over: run_console says so
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

    async def _do(self, parsed: Parsed) -> None:
        if isinstance(parsed, Help):
            self.say(*render_help(parsed.topic, self._style))
        elif isinstance(parsed, Pin):
            await self._unlock()
        elif isinstance(parsed, Watch):
            await self._watch(parsed.seconds)
        elif isinstance(parsed, Remote):
            await self._remote(parsed)

    # --- remote commands ----------------------------------------------------------------------
    async def _remote(self, command: Remote) -> None:
        outcomes: list[tuple[Response, list[str]]] = []
        for request in command.requests:
            response = await self._ask(request, guarded=command.guarded)
            outcomes.append((response, self._outcome(request.op, response)))
        if len(outcomes) > 1 and all(r.ok and len(lines) == 1 for r, lines in outcomes):
            self.say(*wrap("; ".join(lines[0] for _, lines in outcomes), indent=2))
            return
        for response, lines in outcomes:
            if response.ok:
                self.say(*lines)
            else:
                self._error(lines[0])

    async def _ask(self, request: Request, *, guarded: bool) -> Response:
        response = await self._client.request(request.op, request.args)
        retry = response.code == "pin_required" and guarded and self._interactive
        if retry and await self._unlock():
            response = await self._client.request(request.op, request.args)
        return response

    async def _unlock(self) -> bool:
        if self._interactive:
            async with self._input.no_echo():
                self._write_prompt("PIN: ")
                item = await self._input.get()
            self.say("")
        else:
            item = await self._input.get()  # a script gives the PIN on the next line
        if not isinstance(item, str) or not item.strip():
            self._error("no PIN given")
            return False
        response = await self._client.request("unlock", {"pin": item.strip()})
        if not response.ok:
            self._error(response.error or "the PIN was not accepted")
            return False
        self.say("unlocked: manual and calibration commands allowed in this session")
        return True

    def _outcome(self, op: str, response: Response) -> list[str]:
        """What to print for one response: its error, or its result in words."""
        if not response.ok:
            return [response.error or f"{op} refused ({response.code or 'no reason given'})"]
        return render_result(op, response.result or {}, self._style)

    # --- watch --------------------------------------------------------------------------------
    async def _watch(self, seconds: float | None) -> None:
        follow = asyncio.create_task(self._follow(seconds))
        waits: set[asyncio.Task[Any]] = {follow}
        enter: asyncio.Task[Item] | None = None
        if self._interactive:
            enter = asyncio.create_task(self._input.get())
            waits.add(enter)
            self.say("watching; press Enter to stop")
        try:
            done, _ = await asyncio.wait(waits, timeout=seconds, return_when="FIRST_COMPLETED")
            if follow in done:
                follow.result()  # a refusal or a lost connection is raised here
            elif enter is None or enter not in done:
                self.say(f"watched {seconds:g} s")
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            if self._client.connected:
                with contextlib.suppress(ConsoleError, TimeoutError):
                    async with asyncio.timeout(UNWATCH_TIMEOUT_S):
                        await self._client.unwatch()

    async def _follow(self, seconds: float | None) -> None:
        """Print the stream until the batch reaches an end state (see help watch)."""
        first: str | None = None
        moved = False
        async for message in self._client.watch(WATCH_EVERY_S):
            state: object = None
            if message.stream == "status":
                self.say(render_status_line(message.data, self._style))
                state = message.data.get("state")
            elif message.stream == "event":
                self.say(render_event(message.data, self._style))
                if message.data.get("kind") == "state":
                    state = message.data.get("new") or message.data.get("state")
            if not isinstance(state, str):
                continue
            if first is None:
                first = state
                if state in END_STATES and seconds is None:
                    self.say(f"the unit is {state}: nothing running to follow (watch <seconds>)")
                    return
            moved = moved or state != first
            if state in END_STATES and moved:
                self.say(f"the unit is {state}")
                return


# --- entry points -----------------------------------------------------------------------------
async def run_console(
    *,
    socket_path: Path,
    stdin: TextIO,
    stdout: TextIO,
    interactive: bool | None = None,
    stderr: TextIO | None = None,
) -> int:
    """One console session on these streams; the exit code (0, 1 unreachable, 2 refused piped)."""
    errors = stdout if stderr is None else stderr
    if interactive is None:
        interactive = tty_fd(stdin) is not None
    style = Style.detect(stdout)
    client = ControlClient()
    try:
        hello = await client.connect(socket_path)
    except ConsoleError as exc:
        errors.write(style.out(str(exc)) + "\n")
        errors.flush()
        return EXIT_UNREACHABLE
    loop = asyncio.get_running_loop()
    input_ = TerminalInput(stdin, loop=loop)
    console = _Console(
        client=client, input_=input_, stdout=stdout, interactive=interactive, style=style
    )
    keepalive = asyncio.create_task(_keep_alive(client, hello)) if interactive else None
    try:
        with ctrl_c_calls(console.on_interrupt, loop=loop, enabled=interactive):
            await console.greet(hello)
            input_.start()
            return await console.run()
    except ConnectionLost as exc:
        errors.write(style.out(str(exc)) + "\n")
        errors.flush()
        return EXIT_UNREACHABLE
    finally:
        if keepalive is not None:
            keepalive.cancel()
        await client.close()


async def _keep_alive(client: ControlClient, hello: Mapping[str, Any]) -> None:
    """Ask for the status now and then, so the controller never closes an open console as idle."""
    idle = hello.get("idle_timeout_s")
    every = float(idle) / 3.0 if isinstance(idle, int | float) and idle > 0 else 300.0
    while client.connected:
        await asyncio.sleep(every)
        with contextlib.suppress(ConsoleError):
            await client.request("status")


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
