"""One Atlas EZO circuit on one UART: command/response framing, checks, start-up and reconnect.

One command at a time on the wire; every reply checked. Never blocks the event loop and never
reads time except through the Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hal.clock import Clock
from hal.log import Repeats, get_logger
from hal.serial.reconnect import (
    Backoff,
    PortReopener,
    SerialStreams,
    open_serial,
    within,
)

log = get_logger(__name__)

COMMAND_S = 0.3  # what the datasheet gives for most commands
READ_S = 0.9  # a reading
CAL_S = 1.2  # a calibration point
# Lines the circuit sends on its own; never a reply to a command. A circuit that restarted
# (reset, power-up, wake from sleep) forgets continuous mode off and response codes on.
UNSOLICITED = frozenset({"*RS", "*RE", "*WA", "*SL"})
FAILURE_CODES = frozenset({"*ER", "*OV", "*UV"})
RESTART_CODES = frozenset({"*RS", "*RE", "*WA"})
# A dose that ended, sent by the EZO-PMP on its own (`*DONE,<ml>`), also as the answer to `X`.
DONE = "*DONE"
# The heads of the circuits' query replies (`?Status,P,5.038`), lower case: a reply with one
# of them names its query. Each is its command's own but the EZO-PMP's `DC,?` (`?MAXRATE,`).
_QUERY_HEADS = frozenset(
    {
        "*ok", "atv", "baud", "c", "cal", "d", "dstart", "export", "i", "l", "m", "maxrate",
        "name", "p", "phext", "plock", "pv", "s", "slope", "status", "t", "tv",
    }
)  # fmt: skip
_REPLY_HEAD = {"dc": "maxrate"}


class EzoLinkError(Exception):
    """Base of everything a command on an EZO link can fail with."""

    def __init__(self, message: str, *, tag: str, command: str) -> None:
        super().__init__(f"{tag}: {command!r}: {message}")
        self.tag = tag
        self.command = command


class EzoError(EzoLinkError):
    """The circuit refused the command: `code` is *ER, *OV (over-voltage) or *UV (under-voltage);
    `reasons` the code lines that came before it (`*TOOFAST`, `*UV,PUMPPWR,0.00`)."""

    def __init__(self, code: str, *, tag: str, command: str, reasons: tuple[str, ...] = ()) -> None:
        said = " ".join((*reasons, code))
        super().__init__(f"circuit answered {said}", tag=tag, command=command)
        self.code = code
        self.reasons = reasons


class EzoTimeout(EzoLinkError):
    """No complete reply within the time allowed."""


class EzoGarbage(EzoLinkError):
    """A reply line that is not ASCII, not printable, too long or not what the command returns."""


class EzoPortLost(EzoLinkError):
    """The port went away (unplugged adapter, EIO); the link reopens it with backoff."""


@dataclass(frozen=True, slots=True)
class Firmware:
    """What `i` answers: the circuit's kind (pH, RTD, PMP) and its firmware version."""

    device: str
    text: str  # as the circuit writes it: 2.16

    @property
    def version(self) -> tuple[int, ...]:
        """The version's numbers (2.16 -> (2, 16)), for comparing."""
        return tuple(int(part) for part in self.text.split("."))

    def at_least(self, *version: int) -> bool:
        """True when the firmware is `version` or newer."""
        return self.version >= version


@dataclass(frozen=True, slots=True)
class EzoStatus:
    """`Status` reply: restart reason (P power-on, S software, B brown-out, W watchdog, U unknown)
    and supply voltage."""

    restart_reason: str
    voltage: float


class _Garbled:
    """Queue marker: an undecodable or over-long line arrived."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


class _Lost:
    """Queue marker: the port closed under the reader."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


_Item = str | _Garbled | _Lost
_P = TypeVar("_P")


class EzoLink:
    """One EZO circuit on one serial port by stable path; reopens it when it comes back."""

    def __init__(
        self,
        *,
        tag: str,
        path: str,
        clock: Clock,
        baudrate: int = 9600,
        timeout_s: float = 1.0,
        backoff: Backoff | None = None,
        quiet_s: float = 0.4,
    ) -> None:
        self.tag = tag
        self.timeout_s = timeout_s  # reply margin for the start-up sequence and Status
        self.path = path
        self._clock = clock
        # The link's and its circuit's complaints, one line every few minutes while they repeat.
        self.repeats = Repeats()
        self._baudrate = baudrate
        self._quiet_s = quiet_s
        self._reopener: PortReopener[SerialStreams] = PortReopener(
            path=path,
            opener=lambda: open_serial(path, baudrate=baudrate),
            clock=clock,
            log_prefix="ezo",
            tag=tag,
            backoff=backoff,
        )
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._lines: asyncio.Queue[_Item] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._needs_init = True
        self._restart_reason: str | None = None
        self.firmware: Firmware | None = None  # read at start-up (`i`)
        self.voltage: float | None = None  # supply voltage at the last Status
        self.restart_reason: str | None = None  # as Status gave it at the last start-up
        self._on_done: list[Callable[[str], None]] = []
        self._starting = False
        # Bumped on every (re)initialisation: devices re-send state the circuit has forgotten.
        self.generation = 0

    @property
    def needs_init(self) -> bool:
        """True when the circuit has (or may have) rebooted since its start-up sequence."""
        return self._needs_init

    def require_init(self) -> None:
        """Run the start-up sequence again before the next command (the circuit is in doubt)."""
        self._needs_init = True

    @property
    def port_problem(self) -> str | None:
        """Why the port is away (e.g. "[Errno 2] could not open port …"), or None."""
        return self._reopener.lost_reason

    @property
    def connected(self) -> bool:
        """True while the port is open and its reader alive."""
        return self._reader_task is not None and not self._reader_task.done()

    async def connect(self) -> None:
        """Open the port (retrying with backoff until it is there) and initialise the circuit."""
        if not self.connected:
            await self._close_streams()
            reader, self._writer = await self._reopener.open()
            self._lines = asyncio.Queue()
            self._reader_task = asyncio.get_running_loop().create_task(
                self._read_lines(reader), name=f"ezo-reader:{self.tag}"
            )
            self._needs_init = True
        if self._needs_init:
            await self.initialise()

    async def initialise(self) -> None:
        """Start-up sequence: continuous mode off, response codes on, read the firmware (`i`) and
        note the restart reason and supply voltage (`Status`)."""
        async with self._lock:
            self._needs_init = False  # a restart code seen during the sequence sets it again
            self._starting = True  # readings streamed before C,0 lands say nothing
            try:
                # With response codes off (*OK,0) C,0 is not acknowledged: no fault here.
                with contextlib.suppress(EzoTimeout):
                    await self._exchange("C,0", wait_s=COMMAND_S, timeout_s=self.timeout_s)
                await self._exchange("*OK,1", wait_s=COMMAND_S, timeout_s=self.timeout_s)
                lines = await self._exchange("i", wait_s=COMMAND_S, timeout_s=self.timeout_s)
                firmware = await self._parsed(parse_firmware, lines)
                lines = await self._exchange("Status", wait_s=COMMAND_S, timeout_s=self.timeout_s)
                status = await self._parsed(_parse_status, lines)
            except BaseException:
                self._needs_init = True
                raise
            finally:
                self._starting = False
            self._restart_reason = self.restart_reason = status.restart_reason
            self.voltage = status.voltage
            self.firmware = firmware
            self.generation += 1
        log.info(
            "ezo.initialised",
            tag=self.tag,
            device=firmware.device,
            firmware=firmware.text,
            restart_reason=status.restart_reason,
            voltage=status.voltage,
            generation=self.generation,
        )

    def on_done(self, listener: Callable[[str], None]) -> None:
        """Call `listener` with every `*DONE,<ml>` line (a dose ended), whenever it comes."""
        self._on_done.append(listener)

    async def close(self) -> None:
        """Close the port; the next `connect` reopens it."""
        await self._close_streams()

    async def command(
        self, text: str, *, wait_s: float, timeout_s: float, done_ends: bool = False
    ) -> list[str]:
        """Send `text`; return the data lines before *OK. The reply may take `wait_s` (the
        circuit's processing time) plus `timeout_s`. With `done_ends`, a `*DONE` line answers
        too (`X`: the datasheet does not fix its order with *OK). Call `initialise` first when
        `needs_init`."""
        async with self._lock:
            return await self._exchange(
                text, wait_s=wait_s, timeout_s=timeout_s, done_ends=done_ends
            )

    async def status(self) -> EzoStatus:
        """Ask `Status`; a restart reason other than at start-up means the circuit rebooted."""
        lines = await self.command("Status", wait_s=COMMAND_S, timeout_s=self.timeout_s)
        try:
            status = _parse_status(lines, self.tag)
        except EzoGarbage:
            await self.resync()
            raise
        self.voltage = status.voltage
        if self._restart_reason is not None and status.restart_reason != self._restart_reason:
            log.warning("ezo.restarted", tag=self.tag, restart_reason=status.restart_reason)
            self._needs_init = True
        return status

    async def resync(self) -> None:
        """A reply did not fit its command (a late one, taken for the next): wait for the line to
        go quiet so the next command gets its own."""
        async with self._lock:
            await self._resync(quiet_s=self.timeout_s)

    # --- internals --------------------------------------------------------------------------

    async def _parsed(self, parse: Callable[[list[str], str], _P], lines: list[str]) -> _P:
        try:
            return parse(lines, self.tag)
        except EzoGarbage:
            await self._resync(quiet_s=self.timeout_s)
            raise

    async def _exchange(
        self, text: str, *, wait_s: float, timeout_s: float, done_ends: bool = False
    ) -> list[str]:
        writer = self._writer
        if writer is None or not self.connected:
            raise EzoPortLost("port not open", tag=self.tag, command=text)
        self._discard_pending()
        try:
            writer.write(text.encode("ascii") + b"\r")
            await writer.drain()
        except (OSError, RuntimeError) as exc:
            self._port_lost(str(exc))
            raise EzoPortLost(f"write failed: {exc}", tag=self.tag, command=text) from exc
        data: list[str] = []
        reasons: list[str] = []  # *TOOFAST, *UV,PUMPPWR,...: what a following *ER is about
        deadline = self._clock.monotonic() + wait_s + timeout_s
        done_seen = False
        # A query's reply names its query (`?Status,...` to `Status`): one naming another is
        # a late reply to an earlier command, and the response code after it is that one's too.
        verb = command_verb(text).lower()
        own_head = _REPLY_HEAD.get(verb, verb)
        foreign_code = False
        try:
            while True:
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    raise TimeoutError
                item = await within(self._clock, left, self._lines.get())
                if isinstance(item, _Lost):
                    raise EzoPortLost(item.reason, tag=self.tag, command=text)
                if isinstance(item, _Garbled):
                    raise EzoGarbage(f"undecodable reply {item.raw!r}", tag=self.tag, command=text)
                if foreign_code and (item == "*OK" or item in FAILURE_CODES):
                    foreign_code = False
                    continue
                head = item[1:].split(",", 1)[0].lower() if item.startswith("?") else ""
                if head in _QUERY_HEADS and head != own_head:
                    foreign_code = True
                    log.debug("ezo.late_reply", tag=self.tag, command=text, line=item)
                    continue
                if item == "*OK":
                    if self.repeats:
                        self.repeats.forget(subject=command_verb(text))
                    return data
                if item in FAILURE_CODES:
                    raise EzoError(item, tag=self.tag, command=text, reasons=tuple(reasons))
                if item.upper().startswith(DONE):
                    self._done(item)
                    if done_ends and not done_seen:
                        # A *OK may follow; wait a little for it so it is not taken as the
                        # answer to the next command, then the *DONE is answer enough.
                        done_seen = True
                        deadline = min(deadline, self._clock.monotonic() + self._quiet_s)
                        data.append(item)
                elif item in RESTART_CODES:
                    self._brownout(item)
                elif item.startswith("*") and item not in UNSOLICITED:
                    reasons.append(item)
                elif item and item not in UNSOLICITED:
                    data.append(item)
        except TimeoutError:
            if done_seen:
                return data
            # A reply this late may still come: long enough a quiet that it is not taken for
            # the next command's (a few late replies in a row left the link a reply behind).
            await self._resync(quiet_s=timeout_s)
            now = self._clock.monotonic()
            if data:  # something came, but no response code: a broken reply, not silence
                if (more := self.repeats.due("ezo.garbage", command_verb(text), now)) is not None:
                    log.warning("ezo.garbage", tag=self.tag, command=text, lines=data, **more)
                raise EzoGarbage(
                    f"reply {data!r} without a response code", tag=self.tag, command=text
                ) from None
            if (more := self.repeats.due("ezo.timeout", command_verb(text), now)) is not None:
                log.warning(
                    "ezo.timeout", tag=self.tag, command=text, after_s=wait_s + timeout_s, **more
                )
            raise EzoTimeout(
                f"no reply within {wait_s + timeout_s:g} s", tag=self.tag, command=text
            ) from None
        except EzoGarbage:
            if (
                more := self.repeats.due("ezo.garbage", command_verb(text), self._clock.monotonic())
            ) is not None:
                log.warning("ezo.garbage", tag=self.tag, command=text, **more)
            await self._resync()
            raise

    def _done(self, line: str) -> None:
        for listener in self._on_done:
            listener(line)

    def _brownout(self, code: str) -> None:
        if not self._needs_init:
            log.warning("ezo.restarted", tag=self.tag, code=code)
        self._needs_init = True

    def _discard_pending(self) -> None:
        # Anything queued now is a stale continuous reading, a late reply or an event.
        while not self._lines.empty():
            item = self._lines.get_nowait()
            if isinstance(item, _Lost):
                self._lines.put_nowait(item)  # keep: the next read must see the loss
                return
            if isinstance(item, str) and item in RESTART_CODES:
                self._brownout(item)
            elif isinstance(item, str) and item.upper().startswith(DONE):
                self._done(item)
            elif isinstance(item, str) and _is_number(item) and not self._starting:
                # A reading nobody asked for: continuous mode is on again, so the circuit
                # restarted without a word (a power cycle whose *RS/*RE was lost).
                self._brownout("unrequested reading")

    async def _resync(self, *, quiet_s: float = 0.0) -> None:
        """After a timeout or junk, wait for a quiet line (at least `quiet_s`) so a late reply is
        not taken as the answer to the next command."""
        quiet = max(self._quiet_s, quiet_s)
        for _ in range(10):
            try:
                item = await within(self._clock, quiet, self._lines.get())
            except TimeoutError:
                return
            if isinstance(item, _Lost):
                self._lines.put_nowait(item)
                return
            if isinstance(item, str) and item in RESTART_CODES:
                self._brownout(item)
            elif isinstance(item, str) and item.upper().startswith(DONE):
                self._done(item)

    async def _read_lines(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await reader.readuntil(b"\r")
            except asyncio.LimitOverrunError as exc:
                # No terminator in sight: drop what is buffered and report it as junk.
                self._lines.put_nowait(_Garbled(await reader.read(exc.consumed)))
                continue
            except asyncio.IncompleteReadError:
                self._port_lost("end of file")
                return
            except Exception as exc:  # pyserial raises SerialException on EIO/hang-up
                self._port_lost(f"{type(exc).__name__}: {exc}")
                return
            self._lines.put_nowait(_decode(raw[:-1]))

    def _port_lost(self, reason: str) -> None:
        self._reopener.lost(reason)
        self._lines.put_nowait(_Lost(reason))

    async def _close_streams(self) -> None:
        task, self._reader_task = self._reader_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        writer, self._writer = self._writer, None
        if writer is not None:
            transport = writer.transport
            # A transport that closed itself on a read error has its connection_lost on the
            # way; aborting it again would run that twice, on a protocol already gone.
            if not (transport.is_closing() and transport.get_write_buffer_size() == 0):
                # abort, not close: a dead port must not be flushed (that could wait forever)
                transport.abort()


def command_verb(command: str) -> str:
    """The command without its arguments (`RT` for `RT,25.0`)."""
    # What a complaint is about: `RT` for every `RT,<temperature>`, so a silent circuit's
    # complaints stay one key however its arguments change.
    return command.split(",", 1)[0]


def _decode(raw: bytes) -> _Item:
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return _Garbled(raw)
    if not text.isprintable():
        return _Garbled(raw)
    return text


# A number as an EZO circuit writes one: an optional minus, digits, an optional fraction.
# Python's float() takes far more (`1_0`, ` 3e1`, `nan`, `inf`): none of it is a reading.
_EZO_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def ezo_number(text: str) -> float:
    """`text` as the number an EZO circuit wrote; ValueError for anything else."""
    if not _EZO_NUMBER.fullmatch(text):
        raise ValueError(f"not a number as an EZO circuit writes one: {text[:40]!r}")
    return float(text)


def _is_number(text: str) -> bool:
    return _EZO_NUMBER.fullmatch(text) is not None


def parse_firmware(lines: list[str], tag: str) -> Firmware:
    """`?i,pH,2.16` (or `?I,PMP,1.06`, as that firmware writes it) as a Firmware."""
    for line in reversed(lines):
        parts = line.split(",")
        if parts[0].upper() == "?I" and len(parts) == 3:
            firmware = Firmware(device=parts[1], text=parts[2])
            try:
                firmware.version  # noqa: B018 - checks that it reads as numbers
            except ValueError:
                break
            return firmware
    raise EzoGarbage(f"malformed i reply {lines!r}", tag=tag, command="i")


def _parse_status(lines: list[str], tag: str) -> EzoStatus:
    for line in reversed(lines):
        parts = line.split(",")
        if parts[0].upper() == "?STATUS" and len(parts) == 3 and parts[1] in tuple("PSBWU"):
            try:
                return EzoStatus(restart_reason=parts[1], voltage=float(parts[2]))
            except ValueError:
                break
    raise EzoGarbage(f"malformed Status reply {lines!r}", tag=tag, command="Status")
