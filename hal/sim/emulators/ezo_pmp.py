"""EZO-PMP peristaltic dosing pump circuit on a pty, driving one of the unit's pumps.

From the EZO-PMP datasheet's UART section ("Dispensing", "Constant flow rate", "Pause",
"Stop", "Total volume", "Calibration", "Pump voltage") and replies captured from real 1.06
circuits: a dose answers *OK at once and *DONE,<ml> when it ends; `DC` faster than the
calibrated maximum answers *TOOFAST then *ER; `DC,?` answers ?MAXRATE,<ml/min>; a motor without
its supply answers *UV,PUMPPWR,<V> then *ER; a continuous run resets the circuit after 20 days.
"""

from __future__ import annotations

import math
from typing import ClassVar

from hal.clock import Clock
from hal.log import get_logger
from hal.mock.unit import SimulatedUnit
from hal.sim.emulators.ezo_circuit import COMMAND_S, EzoEmulator, Firmware, Refuse, number
from hal.sim.emulators.pty_port import PtyPort

log = get_logger(__name__)

NOMINAL_MAX_ML_MIN = 105.0  # "Flow rate 0.5 ml to 105 ml/min"
MIN_ML_MIN = 0.5
CONTINUOUS_RESET_S = 20 * 24 * 3600.0  # "After running in continuous mode for 20 days ... reset"
MOTOR_MIN_V = 10.8  # below this the motor does not run: *UV,PUMPPWR
# How `X` answers while a run is in progress: the datasheet does not fix the order of *DONE
# and *OK; each is selectable so a driver can be tested against all of them.
X_REPLY_ORDERS = ("done-ok", "ok-done", "done")


class EzoPmpEmulator(EzoEmulator):
    """EZO-PMP driving one of the unit's dosing pumps; counts what it was told to dispense."""

    device = "PMP"
    firmwares: ClassVar[dict[str, Firmware]] = {
        "1.02": Firmware("1.02"),
        # 1.06 answers in upper case (?I,PMP,1.06, ?MAXRATE,...) and has Find and Dstart.
        "1.06": Firmware("1.06", frozenset({"Find", "Dstart"}), upper_case=True),
    }
    default_firmware = "1.06"

    def __init__(
        self,
        *,
        port: PtyPort,
        unit: SimulatedUnit,
        clock: Clock,
        tag: str,
        seed: int = 0,
        firmware: str | None = None,
        max_ml_min: float = NOMINAL_MAX_ML_MIN,
        x_reply: str = "done-ok",
    ) -> None:
        super().__init__(port=port, unit=unit, clock=clock, seed=seed, firmware=firmware)
        if x_reply not in X_REPLY_ORDERS:
            raise ValueError(f"x_reply must be one of {X_REPLY_ORDERS}, not {x_reply!r}")
        self.pump = unit.pumps[tag]
        self.tag = tag
        self.x_reply = x_reply
        self.nominal_max_ml_min = max_ml_min
        self.max_ml_min = max_ml_min  # DC,?: changes with a volume/time calibration
        self.calibration = 0  # Cal,?: bit 0 fixed volume, bit 1 volume/time
        self.motor_v = 12.1  # PV,?: the motor's supply
        self._rate = 0.0  # mL/min, negative in reverse
        self._start = 0.0
        self._until = 0.0
        self._paused_at: float | None = None
        self._done_ml = 0.0  # finished runs since power-up (TV)
        self._absolute_ml = 0.0  # every mL moved either way (ATV)
        self._last_run_ml = 0.0
        self._last_kind = ""  # what the previous dispense was: "volume" or "timed"
        self._continuous_since: float | None = None

    # --- state --------------------------------------------------------------------------------

    def _run_ml(self, now: float) -> float:
        end = min(now, self._until) if self._paused_at is None else self._paused_at
        return self._rate * max(0.0, end - self._start) / 60.0

    def dispensing(self) -> bool:
        """True while a run is in progress (paused or not)."""
        return self._rate != 0 and self.clock.monotonic() < self._until

    def total_ml(self) -> float:
        """Everything dispensed since power-up, including the run in progress."""
        return self._done_ml + self._run_ml(self.clock.monotonic())

    def motor_supply(self, volts: float) -> None:
        """Set the motor's supply (0: unplugged); a run without it stops."""
        self.motor_v = volts
        if volts < MOTOR_MIN_V and self.dispensing():
            self._finish()

    def _motor_v(self) -> float:
        # The simulator's pump_motor_unpowered fault is the same lost supply.
        return 0.0 if self.pump.motor_unpowered else self.motor_v

    # --- runs ---------------------------------------------------------------------------------

    def _finish(self) -> float:
        now = self.clock.monotonic()
        volume = self._run_ml(now)
        self._done_ml += volume
        self._absolute_ml += abs(volume)
        self._last_run_ml = volume
        self._rate = 0.0
        self._start = self._until = now
        self._paused_at = None
        self._continuous_since = None
        self.pump.run(0.0)
        return volume

    def _begin(self, ml_min: float, seconds: float, *, kind: str) -> None:
        if ml_min == 0 or seconds <= 0:
            raise Refuse
        if self._motor_v() < MOTOR_MIN_V:
            raise Refuse(f"*UV,PUMPPWR,{self._motor_v():.2f}")
        self._finish()
        now = self.clock.monotonic()
        self._rate, self._start, self._until = ml_min, now, now + seconds
        self._last_kind = kind
        self._continuous_since = now if math.isinf(seconds) else None
        # Reverse moves liquid back up the line: nothing goes into the reactor.
        self.pump.run(max(ml_min, 0.0), for_s=seconds)

    def _check_rate(self, ml_min: float) -> None:
        if abs(ml_min) < MIN_ML_MIN:
            raise Refuse
        if abs(ml_min) > self.max_ml_min + 1e-9:
            raise Refuse("*TOOFAST")

    def _tick(self) -> None:
        now = self.clock.monotonic()
        if self._continuous_since is not None and now - self._continuous_since >= (
            CONTINUOUS_RESET_S
        ):
            log.warning("emu.pump_continuous_reset", tag=self.tag)
            self._restart("S", announce=True)
            return
        if self._rate != 0 and self._paused_at is None and now >= self._until:
            volume = self._finish()
            if not self._silent:
                # Sent on its own when a dose ends, whatever *OK,0 says.
                self.port.write(f"*DONE,{volume:.2f}\r".encode("ascii"))

    def _continuous_line(self) -> str | None:
        return f"{self._run_ml(self.clock.monotonic()):.2f}"

    def _reset(self) -> None:
        self._finish()
        self._done_ml = 0.0  # TV is lost at power-off
        self._last_kind = ""

    def _factory_reset(self) -> None:
        super()._factory_reset()
        self.calibration = 0
        self.max_ml_min = self.nominal_max_ml_min

    # --- commands -----------------------------------------------------------------------------

    async def _device_command(self, head: str, args: list[str]) -> list[str]:
        await self.clock.sleep(COMMAND_S)
        handler = {
            "D": self._dispense,
            "DC": self._constant_rate,
            "X": self._stop,
            "P": self._pause,
            "TV": self._totals,
            "ATV": self._totals,
            "CLEAR": self._clear,
            "CAL": self._calibrate,
            "PV": self._pump_voltage,
            "R": self._read,
            "DSTART": self._dispense_at_start,
        }.get(head)
        if handler is None:
            raise Refuse
        return handler(head, args)

    def _dispense(self, head: str, args: list[str]) -> list[str]:
        now = self.clock.monotonic()
        if args == ["?"]:
            volume = self._run_ml(now) if self._rate != 0 else self._last_run_ml
            return [self._query("D", f"{volume:.2f},{int(self.dispensing())}")]
        if args in (["*"], ["-*"]):  # until stopped, at full speed (reverse with -)
            sign = -1.0 if args[0].startswith("-") else 1.0
            self._begin(sign * self.max_ml_min, math.inf, kind="continuous")
        elif len(args) == 1:  # a volume at full speed
            ml = number(args[0])
            self._begin(
                math.copysign(self.max_ml_min, ml), abs(ml) / self.max_ml_min * 60.0, kind="volume"
            )
        elif len(args) == 2:  # a volume over minutes: its rate must be one the pump can do
            ml, minutes = number(args[0]), number(args[1])
            if minutes <= 0:
                raise Refuse
            self._check_rate(ml / minutes)
            self._begin(ml / minutes, minutes * 60.0, kind="timed")
        else:
            raise Refuse
        return []

    def _constant_rate(self, head: str, args: list[str]) -> list[str]:
        if args == ["?"]:
            return [self._query("MAXRATE", f"{self.max_ml_min:.2f}")]
        if len(args) != 2:
            raise Refuse
        rate = number(args[0])
        self._check_rate(rate)
        seconds = math.inf if args[1] == "*" else number(args[1]) * 60.0
        self._begin(rate, seconds, kind="timed")
        return []

    def _stop(self, head: str, args: list[str]) -> list[str]:
        if args:
            raise Refuse
        if not self.dispensing():
            return []  # nothing runs: a plain *OK
        volume = f"*DONE,{self._finish():.2f}"
        if self.x_reply == "done":
            self.suppress_ok_once = True
        if self.x_reply == "ok-done":
            self._then = lambda: self.port.write(volume.encode("ascii") + b"\r")
            return []
        return [volume]

    def _pause(self, head: str, args: list[str]) -> list[str]:
        now = self.clock.monotonic()
        if args == ["?"]:
            return [self._query("P", int(self._paused_at is not None))]
        if args or not self.dispensing():
            raise Refuse
        if self._paused_at is None:  # pause: the motor stops, the run keeps its place
            self._paused_at = now
            self.pump.run(0.0)
        else:  # "issue the command again to resume"
            left = self._until - self._paused_at
            self._start += now - self._paused_at
            self._until = now + left
            self._paused_at = None
            self.pump.run(max(self._rate, 0.0), for_s=left)
        return []

    def _totals(self, head: str, args: list[str]) -> list[str]:
        if args != ["?"]:
            raise Refuse
        if head == "TV":
            return [self._query("TV", f"{self.total_ml():.2f}")]
        running = abs(self._run_ml(self.clock.monotonic()))
        return [self._query("ATV", f"{self._absolute_ml + running:.2f}")]

    def _clear(self, head: str, args: list[str]) -> list[str]:
        if args:
            raise Refuse
        # "Clear" resets the total volume (TV); sources differ on ATV: it is kept here.
        running = self._run_ml(self.clock.monotonic())
        self._done_ml = -running
        return []

    def _calibrate(self, head: str, args: list[str]) -> list[str]:
        if args == ["?"]:
            return [self._query("Cal", self.calibration)]
        if [a.lower() for a in args] == ["clear"]:
            self.calibration = 0
            self.max_ml_min = self.nominal_max_ml_min
            return []
        if len(args) != 1 or self.dispensing() or not self._last_kind:
            raise Refuse  # a calibration measures the dispense before it
        measured = number(args[0])
        if measured <= 0 or self._last_run_ml == 0:
            raise Refuse
        if self._last_kind == "timed":
            # The volume/time calibration sets what the pump can really do per minute.
            ratio = min(max(measured / abs(self._last_run_ml), 0.5), 2.0)
            self.max_ml_min = self.nominal_max_ml_min * ratio
            self.calibration |= 2
        else:
            self.calibration |= 1
        return []

    def _pump_voltage(self, head: str, args: list[str]) -> list[str]:
        if args != ["?"]:
            raise Refuse
        return [self._query("PV", f"{self._motor_v():.2f}")]

    def _read(self, head: str, args: list[str]) -> list[str]:
        if args:
            raise Refuse
        return [f"{self._run_ml(self.clock.monotonic()):.2f}"]

    def _dispense_at_start(self, head: str, args: list[str]) -> list[str]:
        if not self.firmware.has("Dstart"):
            raise Refuse
        if args == ["?"]:
            return [self._query("Dstart", "0.00")]
        if args == ["off"]:
            return []
        raise Refuse  # the controller never lets a pump dose by itself at power-up
