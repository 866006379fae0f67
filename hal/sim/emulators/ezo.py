"""Atlas Scientific EZO circuit emulators (pH, RTD, PMP) speaking the UART protocol on a pty.

They act as the hardware in front of a SimulatedUnit, with realistic timing through the Clock and
misbehaviour on command. Never block the event loop; never read time except through the Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from dataclasses import dataclass
from typing import ClassVar

import structlog

from hal.clock import Clock
from hal.mock.devices import RTD_OPEN_CIRCUIT_C
from hal.mock.unit import SimulatedUnit
from hal.sim.emulators.pty_port import PortUnplugged, PtyPort

log = structlog.get_logger(__name__)

READ_S = 0.9  # a reading (R, RT)
CAL_S = 1.2  # a calibration point
COMMAND_S = 0.3  # anything else
CONTINUOUS_PERIOD_S = 1.0
PUMP_MAX_ML_MIN = 105.0


class _Refuse(Exception):
    """The circuit answers *ER."""


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Refuse from None
    if not math.isfinite(value):
        raise _Refuse
    return value


class EzoEmulator:
    """What every EZO circuit shares: framing, response codes, continuous mode, misbehaviour."""

    device: ClassVar[str] = "EZO"
    firmware: ClassVar[str] = "2.16"

    def __init__(self, *, port: PtyPort, unit: SimulatedUnit, clock: Clock, seed: int = 0) -> None:
        self.port = port
        self.unit = unit
        self.clock = clock
        self.commands: list[str] = []  # every command received, oldest first (for tests)
        self.continuous = True  # left on by a previous user, as found in the field
        self.codes = True
        self.restart_reason = "P"
        self.voltage = 5.05
        self._rng = random.Random(seed)
        self.pending_garbage = 0  # junk bytes still to send instead of replies
        self._silent = False
        self.pending_errors = 0  # next commands still to answer with *ER
        self._boot = 0
        self._task: asyncio.Task[None] | None = None

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

    def brownout(self, *, announce: bool = True) -> None:
        """Supply dip: the circuit reboots, forgetting C,0 and compensation; Status says B."""
        self._boot += 1
        self.continuous = True
        self.codes = True
        self.restart_reason = "B"
        self._reset()
        log.info("emu.brownout", path=self.port.path)
        if announce:
            self.port.write(b"*RS\r*RE\r")

    # --- protocol ---------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            raw = await self.port.read_until(b"\r")
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
                    raise _Refuse
                lines, ok = await self._handle(text), True
            except _Refuse:
                await self.clock.sleep(COMMAND_S)
                lines, ok = [], False
            if boot == self._boot and not self._silent:  # a reboot meanwhile loses the reply
                self._reply(lines, ok=ok)

    def _reply(self, lines: list[str], *, ok: bool) -> None:
        if self.pending_garbage > 0:
            self.port.write(self._junk())
            return
        out = list(lines)
        if self.codes:
            out.append("*OK" if ok else "*ER")
        self.port.write(b"".join(line.encode("ascii") + b"\r" for line in out))

    def _junk(self) -> bytes:
        n = min(self.pending_garbage, self._rng.randint(4, 16))
        self.pending_garbage -= n
        if self._rng.random() < 0.5:  # baud-rate mismatch: high-bit bytes
            body = bytes(self._rng.randint(0x80, 0xFE) for _ in range(n))
        else:  # a broken line: printable but not a reply
            body = bytes(self._rng.choice(b"#%&'()+-./:;<=>@[]^_`{|}~7.") for _ in range(n))
        return body + b"\r"

    async def _stream(self) -> None:
        while True:
            await self.clock.sleep(CONTINUOUS_PERIOD_S)
            self._tick()
            if self.continuous and not self._silent:
                line = self._continuous_line()
                if line is not None:
                    self.port.write(line.encode("ascii") + b"\r")

    async def _handle(self, text: str) -> list[str]:
        head, *args = text.split(",")
        head = head.upper()
        flags = {"C": "continuous", "*OK": "codes"}
        if head in flags and len(args) == 1:
            await self.clock.sleep(COMMAND_S)
            if args[0] == "?":
                return [f"?{head},{int(getattr(self, flags[head]))}"]
            if args[0] not in ("0", "1"):
                raise _Refuse
            setattr(self, flags[head], args[0] == "1")
            return []
        if head in ("STATUS", "I") and not args:
            await self.clock.sleep(COMMAND_S)
            if head == "I":
                return [f"?i,{self.device},{self.firmware}"]
            return [f"?Status,{self.restart_reason},{self.voltage:.2f}"]
        return await self._device_command(head, args)

    # --- device hooks -----------------------------------------------------------------------

    async def _device_command(self, head: str, args: list[str]) -> list[str]:
        raise _Refuse

    def _reading(self) -> str:
        raise _Refuse

    def _continuous_line(self) -> str | None:
        with contextlib.suppress(_Refuse):
            return self._reading()
        return None

    def _tick(self) -> None:
        """Housekeeping once per continuous period (pump runs ending)."""

    def _reset(self) -> None:
        """Forget volatile state on reboot."""


@dataclass(frozen=True, slots=True)
class ProbeHealth:
    """What the pH electrode really is: the slopes and offset a calibration will find."""

    acid_pct: float = 99.6
    base_pct: float = 100.4
    offset_mv: float = 3.2


class EzoPhEmulator(EzoEmulator):
    """EZO-pH on the unit's pH probe."""

    device = "pH"

    def __init__(self, *, port: PtyPort, unit: SimulatedUnit, clock: Clock, seed: int = 0) -> None:
        super().__init__(port=port, unit=unit, clock=clock, seed=seed)
        self.compensation_c = 25.0
        self.cal_points: list[str] = []
        self.probe = ProbeHealth()  # tests may degrade it

    def _reading(self) -> str:
        latest = self.unit.ph.latest()
        if self.unit.ph.error or latest.value is None:
            raise _Refuse
        return f"{latest.value:.3f}"

    def _reset(self) -> None:
        self.compensation_c = 25.0

    def _slope(self) -> tuple[float, float, float]:
        if not self.cal_points:
            return 100.0, 100.0, 0.0
        acid = self.probe.acid_pct if "low" in self.cal_points else 100.0
        base = self.probe.base_pct if "high" in self.cal_points else 100.0
        return acid, base, self.probe.offset_mv

    async def _device_command(self, head: str, args: list[str]) -> list[str]:
        if (head, len(args)) in (("R", 0), ("RT", 1)):
            if args:  # RT: compensate, then read
                self.compensation_c = _number(args[0])
            await self.clock.sleep(READ_S)
            return [self._reading()]
        if head == "T" and len(args) == 1:
            await self.clock.sleep(COMMAND_S)
            if args[0] == "?":
                return [f"?T,{self.compensation_c:.1f}"]
            self.compensation_c = _number(args[0])
            return []
        if head == "SLOPE" and args == ["?"]:
            await self.clock.sleep(COMMAND_S)
            acid, base, offset = self._slope()
            return [f"?Slope,{acid:.1f},{base:.1f},{offset:.2f}"]
        if head == "CAL":
            return await self._calibrate(args)
        raise _Refuse

    async def _calibrate(self, args: list[str]) -> list[str]:
        if [a.lower() for a in args] in (["?"], ["clear"]):
            await self.clock.sleep(COMMAND_S)
            if args == ["?"]:
                return [f"?CAL,{len(self.cal_points)}"]
            self.cal_points.clear()
            return []
        if len(args) != 2 or args[0].lower() not in ("mid", "low", "high"):
            raise _Refuse
        point = args[0].lower()
        _number(args[1])
        await self.clock.sleep(CAL_S)
        if point == "mid":  # as the real EZO: a mid point clears the others
            self.cal_points = ["mid"]
        elif point not in self.cal_points:
            self.cal_points.append(point)
        return []


class EzoRtdEmulator(EzoEmulator):
    """EZO-RTD on the unit's temperature probe (°C)."""

    device = "RTD"

    def _reading(self) -> str:
        if self.unit.rtd.open_circuit:
            return f"{RTD_OPEN_CIRCUIT_C:.3f}"
        latest = self.unit.rtd.latest()
        if self.unit.rtd.error or latest.value is None:
            raise _Refuse
        return f"{latest.value:.3f}"

    async def _device_command(self, head: str, args: list[str]) -> list[str]:
        if head == "R" and not args:
            await self.clock.sleep(READ_S)
            return [self._reading()]
        raise _Refuse


class EzoPmpEmulator(EzoEmulator):
    """EZO-PMP driving one of the unit's dosing pumps; counts what it was told to dispense."""

    device = "PMP"
    firmware = "1.07"

    def __init__(
        self, *, port: PtyPort, unit: SimulatedUnit, clock: Clock, tag: str, seed: int = 0
    ) -> None:
        super().__init__(port=port, unit=unit, clock=clock, seed=seed)
        self.pump = unit.pumps[tag]
        self.tag = tag
        self.cal_ml: float | None = None
        self._rate = 0.0
        self._start = 0.0
        self._until = 0.0
        self._done_ml = 0.0  # finished runs
        self._last_run_ml = 0.0

    def _run_ml(self, now: float) -> float:
        return self._rate * max(0.0, min(now, self._until) - self._start) / 60.0

    def dispensing(self) -> bool:
        """True while a run is in progress."""
        return self._rate > 0 and self.clock.monotonic() < self._until

    def total_ml(self) -> float:
        """Everything dispensed since power-up, including the run in progress."""
        return self._done_ml + self._run_ml(self.clock.monotonic())

    def _finish(self) -> float:
        now = self.clock.monotonic()
        volume = self._run_ml(now)
        self._done_ml += volume
        self._last_run_ml = volume
        self._rate = 0.0
        self._start = self._until = now
        return volume

    def _begin(self, ml_min: float, seconds: float) -> None:
        if ml_min <= 0 or seconds <= 0:
            raise _Refuse
        self._finish()
        rate = min(ml_min, PUMP_MAX_ML_MIN)
        now = self.clock.monotonic()
        self._rate, self._start, self._until = rate, now, now + seconds
        self.pump.run(rate, for_s=seconds)

    def _tick(self) -> None:
        if self._rate > 0 and self.clock.monotonic() >= self._until:
            volume = self._finish()
            if self.codes and not self._silent:
                self.port.write(f"*DONE,{volume:.2f}\r".encode("ascii"))

    def _continuous_line(self) -> str | None:
        return f"{self._run_ml(self.clock.monotonic()):.2f}"

    def _reset(self) -> None:
        self._finish()
        self.pump.run(0.0)

    async def _device_command(self, head: str, args: list[str]) -> list[str]:
        await self.clock.sleep(COMMAND_S)
        if head == "D" and args == ["?"]:
            now = self.clock.monotonic()
            volume = self._run_ml(now) if self._rate > 0 else self._last_run_ml
            return [f"?D,{volume:.2f},{int(self.dispensing())}"]
        if head == "X" and not args:
            volume = self._finish()
            self.pump.run(0.0)
            return [f"*DONE,{volume:.2f}"]
        if head in ("TV", "ATV") and args == ["?"]:
            return [f"?{head},{self.total_ml():.2f}"]
        if head == "CAL" and args == ["?"]:
            return [f"?Cal,{int(self.cal_ml is not None)}"]
        if head == "D" and args == ["*"]:  # open-ended: a driver must never use it
            self._begin(PUMP_MAX_ML_MIN, math.inf)
        elif head == "D" and len(args) == 1:  # a volume at full speed
            self._begin(PUMP_MAX_ML_MIN, _number(args[0]) / PUMP_MAX_ML_MIN * 60.0)
        elif head == "D" and len(args) == 2:  # a volume over minutes
            ml, minutes = _number(args[0]), _number(args[1])
            self._begin(ml / minutes if minutes > 0 else 0.0, minutes * 60.0)
        elif head == "DC" and len(args) == 2:  # a rate for minutes
            self._begin(_number(args[0]), _number(args[1]) * 60.0)
        elif head == "CAL" and [a.lower() for a in args] == ["clear"]:
            self.cal_ml = None
        elif head == "CAL" and len(args) == 1:
            self.cal_ml = _number(args[0])
        else:
            raise _Refuse
        return []
