"""What every Atlas Scientific EZO circuit shares on its UART: framing, response codes, the
common commands, start-up, sleep and misbehaviour on command.

The behaviours follow the EZO datasheets' UART sections ("UART mode", "Response codes",
"Command quick reference"); each handler names the command it plays. A circuit's firmware is
selectable so old and new behaviour can both be tested. Never blocks the event loop; never reads
time except through the Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from hal.clock import Clock
from hal.log import get_logger
from hal.mock.unit import SimulatedUnit
from hal.sim.emulators.pty_port import PortUnplugged, PtyPort

log = get_logger(__name__)

READ_S = 0.9  # a pH reading (R, RT): ~900 ms
RTD_READ_S = 0.6  # an RTD reading: ~600 ms
CAL_S = 1.2  # a calibration point
COMMAND_S = 0.3  # anything else
CONTINUOUS_PERIOD_S = 1.0  # C,1: one reading a second
MAX_CONTINUOUS_S = 99  # C,n: n in 1..99 s (firmware that has it)
# "Baud,n": the rates the UART section lists.
BAUD_RATES = (300, 1200, 2400, 9600, 19200, 38400, 57600, 115200)
MAX_NAME = 16  # Name,x: up to 16 characters, no spaces
MAX_COMMAND = 40  # longer lines are not commands: *ER


class Refuse(Exception):
    """The circuit answers *ER, after any `reasons` code lines (`*TOOFAST`)."""

    def __init__(self, *reasons: str) -> None:
        super().__init__(*reasons)
        self.reasons = reasons


def number(text: str) -> float:
    """`text` as a finite number, or the circuit refuses."""
    try:
        value = float(text)
    except ValueError:
        raise Refuse from None
    if not math.isfinite(value):
        raise Refuse
    return value


def flag(args: list[str]) -> bool | None:
    """A `1`/`0` argument as True/False, `?` as None; anything else is refused."""
    if len(args) != 1 or args[0] not in ("0", "1", "?"):
        raise Refuse
    return None if args[0] == "?" else args[0] == "1"


@dataclass(frozen=True, slots=True)
class Firmware:
    """One firmware of a circuit: its version and the commands and reply forms it has."""

    version: str
    features: frozenset[str] = frozenset()
    upper_case: bool = False  # replies as `?STATUS,...` (seen on EZO-PMP 1.06), not `?Status`

    def has(self, feature: str) -> bool:
        """True when this firmware knows `feature` (a command or reply form)."""
        return feature in self.features


class EzoEmulator:
    """What every EZO circuit shares: framing, response codes, common commands, misbehaviour."""

    device: ClassVar[str] = "EZO"
    firmwares: ClassVar[dict[str, Firmware]] = {"2.16": Firmware("2.16")}
    default_firmware: ClassVar[str] = "2.16"

    def __init__(
        self,
        *,
        port: PtyPort,
        unit: SimulatedUnit,
        clock: Clock,
        seed: int = 0,
        firmware: str | None = None,
    ) -> None:
        version = firmware or self.default_firmware
        if version not in self.firmwares:
            known = ", ".join(sorted(self.firmwares))
            raise ValueError(f"EZO-{self.device} firmware {version!r} unknown (known: {known})")
        self.firmware = self.firmwares[version]
        self.port = port
        self.unit = unit
        self.clock = clock
        self.commands: list[str] = []  # every command received, oldest first (for tests)
        self.continuous_s = 1  # C,1 at power-up: found so in the field too
        self.codes = True
        self.restart_reason = "P"
        self.voltage = 5.038
        self.led = True
        self.name = ""
        self.plock = False
        self.baud = 9600
        self.asleep = False
        self.finding = False
        self._rng = random.Random(seed)
        self.pending_garbage = 0  # junk bytes still to send instead of replies
        self._silent = False
        self.pending_errors = 0  # next commands still to answer with *ER
        self.pending_delays = 0  # next replies still to send late
        self.delay_s = 0.0
        self._boot = 0
        self._then: Callable[[], None] | None = None  # what to do once the reply is out
        self.suppress_ok_once = False  # the next reply goes without its *OK
        self._task: asyncio.Task[None] | None = None
        self._init_device()

    @property
    def continuous(self) -> bool:
        """True while the circuit streams readings on its own."""
        return self.continuous_s > 0

    @continuous.setter
    def continuous(self, on: bool) -> None:
        self.continuous_s = 1 if on else 0

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run the circuit in a task on the running loop."""
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self.run(), name=f"emu:{self.port.path}")
        return self._task

    async def stop(self) -> None:
        """Stop the task started by `start`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, PortUnplugged):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Answer commands and stream continuous readings until cancelled or the port closes."""
        stream = asyncio.get_running_loop().create_task(self._stream())
        try:
            await self._serve()
        finally:
            stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream

    # --- misbehaviour on command ------------------------------------------------------------

    def garbage(self, n_bytes: int) -> None:
        """Answer the next commands with about `n_bytes` of junk instead of their replies."""
        self.pending_garbage = n_bytes

    def silent(self, on: bool) -> None:
        """Stop (or resume) answering anything."""
        self._silent = on

    def error_next(self, n: int) -> None:
        """Answer the next `n` commands with *ER."""
        self.pending_errors = n

    def delay_next(self, n: int, seconds: float) -> None:
        """Send the next `n` replies `seconds` late (a circuit busy or a slow adapter)."""
        self.pending_delays, self.delay_s = n, seconds

    def brownout(self, *, announce: bool = True) -> None:
        """Supply dip: the circuit reboots, forgetting C,0 and compensation; Status says B."""
        self._restart("B", announce=announce)
        log.info("emu.brownout", path=self.port.path)

    def power_cycle(self, *, announce: bool = True) -> None:
        """Power off and on: as a brown-out, but Status says P again, as before (only the
        start-up codes, or the readings streaming again, tell)."""
        self._restart("P", announce=announce)
        log.info("emu.power_cycle", path=self.port.path)

    def _restart(self, reason: str, *, announce: bool) -> None:
        self._boot += 1
        self.continuous_s = 1
        self.codes = True
        self.asleep = False
        self.finding = False
        self.restart_reason = reason
        self._reset()
        if announce:
            self.port.write(b"*RS\r*RE\r")  # "Response codes": reset, then boot-up complete

    # --- protocol ---------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            raw = await self.port.read_until(b"\r")
            if self.asleep:
                # "Sleep": any character wakes the circuit; the command itself is lost.
                self.asleep = False
                self.port.write(b"*WA\r")
                continue
            text = raw.decode("ascii", errors="replace").strip()
            if not text:
                continue
            self.commands.append(text)
            if self._silent:
                continue
            boot = self._boot
            try:
                if self.pending_errors > 0:
                    self.pending_errors -= 1
                    raise Refuse
                if len(text) > MAX_COMMAND or not text.isprintable():
                    raise Refuse
                lines, ok = await self._handle(text), True
                reasons: tuple[str, ...] = ()
            except Refuse as refused:
                await self.clock.sleep(COMMAND_S)
                lines, ok, reasons = [], False, refused.reasons
            if self.pending_delays > 0:
                self.pending_delays -= 1
                await self.clock.sleep(self.delay_s)
            if boot == self._boot and not self._silent:  # a reboot meanwhile loses the reply
                self._reply([*lines, *reasons], ok=ok)
                await self._after_reply()

    def _reply(self, lines: list[str], *, ok: bool) -> None:
        if self.pending_garbage > 0:
            self.port.write(self._junk())
            return
        out = list(lines)
        # "*OK,0" turns *OK off; the other codes "cannot be disabled" (Response codes).
        if not ok:
            out.append("*ER")
        elif self.codes and not self.suppress_ok_once:
            out.append("*OK")
        self.suppress_ok_once = False
        self.port.write(b"".join(line.encode("ascii") + b"\r" for line in out))

    async def _after_reply(self) -> None:
        """What a command does once answered (a reboot, going to sleep)."""
        action, self._then = self._then, None
        if action is not None:
            action()

    def _junk(self) -> bytes:
        n = min(self.pending_garbage, self._rng.randint(4, 16))
        self.pending_garbage -= n
        if self._rng.random() < 0.5:  # baud-rate mismatch: high-bit bytes
            body = bytes(self._rng.randint(0x80, 0xFE) for _ in range(n))
        else:  # a broken line: printable but not a reply
            body = bytes(self._rng.choice(b"#%&'()+-./:;<=>@[]^_`{|}~7.") for _ in range(n))
        return body + b"\r"

    async def _stream(self) -> None:
        waited = 0.0
        while True:
            await self.clock.sleep(CONTINUOUS_PERIOD_S)
            self._tick()
            waited += CONTINUOUS_PERIOD_S
            if self.continuous and waited >= self.continuous_s:
                waited = 0.0
                if not self._silent and not self.asleep:
                    line = self._continuous_line()
                    if line is not None:
                        self.port.write(line.encode("ascii") + b"\r")

    def _query(self, head: str, value: object) -> str:
        """A query's reply line, `?Head,value`, in the case this firmware writes."""
        text = f"?{head},{value}"
        return text.upper() if self.firmware.upper_case else text

    async def _handle(self, text: str) -> list[str]:
        head, *args = text.split(",")
        head = head.upper()  # commands are not case sensitive
        common = {
            "C": self._continuous_command,
            "*OK": self._codes_command,
            "I": self._info,
            "STATUS": self._status,
            "L": self._led,
            "FIND": self._find,
            "NAME": self._name,
            "PLOCK": self._plock,
            "BAUD": self._baud,
            "SLEEP": self._sleep,
            "FACTORY": self._factory,
        }
        if head in common:
            await self.clock.sleep(COMMAND_S)
            return common[head](args)
        self.finding = False  # "Find": any other command stops the blinking
        return await self._device_command(head, args)

    def _continuous_command(self, args: list[str]) -> list[str]:
        # "C,1" every second, "C,0" off, "C,?"; "C,n" (n seconds) only on firmware that has it.
        if args == ["?"]:
            return [self._query("C", self.continuous_s)]
        if len(args) != 1 or not args[0].isdigit():
            raise Refuse
        seconds = int(args[0])
        if (seconds > 1 and not self.firmware.has("C,n")) or seconds > MAX_CONTINUOUS_S:
            raise Refuse
        self.continuous_s = seconds
        return []

    def _codes_command(self, args: list[str]) -> list[str]:
        on = flag(args)
        if on is None:
            return [f"?*OK,{int(self.codes)}"]
        self.codes = on
        return []

    def _info(self, args: list[str]) -> list[str]:
        if args:
            raise Refuse
        return [self._query("i", f"{self.device},{self.firmware.version}")]

    def _status(self, args: list[str]) -> list[str]:
        # "?Status,P,5.038": restart reason P/S/B/W/U and the supply voltage, 3 decimals.
        if args:
            raise Refuse
        return [self._query("Status", f"{self.restart_reason},{self.voltage:.3f}")]

    def _led(self, args: list[str]) -> list[str]:
        on = flag(args)
        if on is None:
            return [self._query("L", int(self.led))]
        self.led = on
        return []

    def _find(self, args: list[str]) -> list[str]:
        if args or not self.firmware.has("Find"):
            raise Refuse
        self.finding = True  # the LED blinks white until another command
        return []

    def _name(self, args: list[str]) -> list[str]:
        if args == ["?"]:
            return [self._query("Name", self.name)]
        if len(args) > 1 or (args and (len(args[0]) > MAX_NAME or " " in args[0])):
            raise Refuse
        self.name = args[0] if args else ""  # "Name," clears it
        return []

    def _plock(self, args: list[str]) -> list[str]:
        on = flag(args)
        if on is None:
            return [self._query("Plock", int(self.plock))]
        self.plock = on
        return []

    def _baud(self, args: list[str]) -> list[str]:
        if args == ["?"]:
            return [self._query("Baud", self.baud)]
        if len(args) != 1 or not args[0].isdigit() or int(args[0]) not in BAUD_RATES:
            raise Refuse
        # The circuit answers, then restarts at the new rate (the pty has no rate to change).
        self.baud = int(args[0])
        self._then = lambda: self._restart("S", announce=True)
        return []

    def _sleep(self, args: list[str]) -> list[str]:
        if args:
            raise Refuse
        self._then = self._fall_asleep
        return []

    def _fall_asleep(self) -> None:
        self.asleep = True
        self.port.write(b"*SL\r")

    def _factory(self, args: list[str]) -> list[str]:
        if args:
            raise Refuse
        self._factory_reset()
        self._then = lambda: self._restart("S", announce=True)
        return []

    # --- device hooks -----------------------------------------------------------------------

    def _init_device(self) -> None:
        """Set up the circuit's own state (called at the end of construction)."""

    async def _device_command(self, head: str, args: list[str]) -> list[str]:
        raise Refuse

    def _reading(self) -> str:
        raise Refuse

    def _continuous_line(self) -> str | None:
        with contextlib.suppress(Refuse):
            return self._reading()
        return None

    def _tick(self) -> None:
        """Housekeeping once per continuous period (pump runs ending)."""

    def _reset(self) -> None:
        """Forget volatile state on reboot."""

    def _factory_reset(self) -> None:
        """Forget calibration and settings ("Factory")."""
        self.name = ""
        self.led = True
        self.plock = False
