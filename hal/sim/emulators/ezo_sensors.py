"""EZO-pH and EZO-RTD circuits on ptys, reading the unit's simulated pH and temperature probes.

From the EZO-pH and EZO-RTD datasheets' UART sections ("Reading", "Temperature compensation",
"Calibration", "Slope", "Extended pH scale", "Temperature scale", "Data logger", "Memory
recall", "Export/Import"). Firmware-gated forms are in each class's `firmwares`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from hal.mock.devices import RTD_OPEN_CIRCUIT_C
from hal.sim.emulators.ezo_circuit import (
    CAL_S,
    COMMAND_S,
    READ_S,
    RTD_READ_S,
    EzoEmulator,
    Firmware,
    Refuse,
    flag,
    number,
)

EXPORT_CHUNK = 12  # Export hands the calibration out 12 characters at a time, then *DONE
LOGGER_UNIT_S = 10.0  # RTD "D,n": a reading every n x 10 s into memory
LOGGER_MAX = 32000
MEMORY_SIZE = 50  # RTD memory keeps the last 50 readings


class _Exporting(EzoEmulator):
    """Export/Import of the calibration, as a string handed out in pieces."""

    _exporting: deque[str] | None = None

    def _calibration_blob(self) -> str:
        raise Refuse

    def _import_blob(self, blob: str) -> None:
        raise Refuse

    def _export(self, args: list[str]) -> list[str]:
        if not self.firmware.has("Export"):
            raise Refuse
        blob = self._calibration_blob()
        chunks = [blob[i : i + EXPORT_CHUNK] for i in range(0, len(blob), EXPORT_CHUNK)]
        if args == ["?"]:  # how many strings and characters an export will give
            return [self._query("EXPORT", f"{len(chunks)},{len(blob)}")]
        if args:
            raise Refuse
        if self._exporting is None:
            self._exporting = deque(chunks)
        if not self._exporting:
            self._exporting = None
            self.suppress_ok_once = True
            return ["*DONE"]
        return [self._exporting.popleft()]

    def _import(self, args: list[str]) -> list[str]:
        if not self.firmware.has("Export") or len(args) != 1:
            raise Refuse
        self._import_blob(args[0])
        return []


@dataclass(frozen=True, slots=True)
class ProbeHealth:
    """What the pH electrode really is: the slopes and offset a calibration will find."""

    acid_pct: float = 99.6
    base_pct: float = 100.4
    offset_mv: float = 3.2


class EzoPhEmulator(_Exporting):
    """EZO-pH on the unit's pH probe."""

    device = "pH"
    firmwares: ClassVar[dict[str, Firmware]] = {
        # Before 2.12: R and T only (no RT), a two-field Slope,?, C,1/C,0 only.
        "2.10": Firmware("2.10", frozenset({"Find"})),
        "2.16": Firmware(
            "2.16", frozenset({"Find", "RT", "slope offset", "C,n", "pHext", "Export"})
        ),
    }
    default_firmware = "2.16"

    def _init_device(self) -> None:
        self.compensation_c = 25.0
        self.cal_points: list[str] = []
        self.extended = False
        self.probe = ProbeHealth()  # tests may degrade it

    def _reading(self) -> str:
        latest = self.unit.ph.latest()
        if self.unit.ph.error or latest.value is None:
            raise Refuse
        low, high = (-1.6, 15.6) if self.extended else (0.001, 14.0)
        return f"{min(max(latest.value, low), high):.3f}"

    def _reset(self) -> None:
        self.compensation_c = 25.0
        self._exporting = None

    def _factory_reset(self) -> None:
        super()._factory_reset()
        self.cal_points.clear()
        self.extended = False

    def _slope(self) -> tuple[float, float, float]:
        if not self.cal_points:
            return 100.0, 100.0, 0.0
        acid = self.probe.acid_pct if "low" in self.cal_points else 100.0
        base = self.probe.base_pct if "high" in self.cal_points else 100.0
        return acid, base, self.probe.offset_mv

    def _calibration_blob(self) -> str:
        acid, base, offset = self._slope()
        points = "".join(p[0].upper() for p in self.cal_points) or "N"
        return f"{points}{acid:06.2f}{base:06.2f}{offset:+06.2f}"

    def _import_blob(self, blob: str) -> None:
        points = {"M": "mid", "L": "low", "H": "high"}
        head = blob.rstrip("0123456789.+-")
        if not head or any(c not in points for c in head.replace("N", "")):
            raise Refuse
        self.cal_points = [points[c] for c in head if c in points]
        self._then = lambda: self._restart("S", announce=True)  # an import reboots

    async def _device_command(self, head: str, args: list[str]) -> list[str]:
        if (head, len(args)) == ("R", 0) or (head == "RT" and len(args) == 1):
            if head == "RT":  # compensate, then read (firmware that has it)
                if not self.firmware.has("RT"):
                    raise Refuse
                self.compensation_c = number(args[0])
            await self.clock.sleep(READ_S)
            return [self._reading()]
        if head == "CAL":
            return await self._calibrate(args)
        await self.clock.sleep(COMMAND_S)
        if head == "T" and len(args) == 1:
            if args[0] == "?":
                return [self._query("T", f"{self.compensation_c:.1f}")]
            self.compensation_c = number(args[0])
            return []
        if head == "SLOPE" and args == ["?"]:
            acid, base, offset = self._slope()
            if not self.firmware.has("slope offset"):
                return [self._query("Slope", f"{acid:.1f},{base:.1f}")]
            return [self._query("Slope", f"{acid:.1f},{base:.1f},{offset:.2f}")]
        if head == "PHEXT" and self.firmware.has("pHext"):
            on = flag(args)
            if on is None:
                return [self._query("pHext", int(self.extended))]
            self.extended = on
            return []
        if head == "EXPORT":
            return self._export(args)
        if head == "IMPORT":
            return self._import(args)
        raise Refuse

    async def _calibrate(self, args: list[str]) -> list[str]:
        if [a.lower() for a in args] in (["?"], ["clear"]):
            await self.clock.sleep(COMMAND_S)
            if args == ["?"]:
                return [self._query("CAL", len(self.cal_points))]
            self.cal_points.clear()
            return []
        if len(args) != 2 or args[0].lower() not in ("mid", "low", "high"):
            raise Refuse
        point = args[0].lower()
        number(args[1])
        await self.clock.sleep(CAL_S)
        if point == "mid":  # as the real EZO: a mid point clears the others
            self.cal_points = ["mid"]
        elif point not in self.cal_points:
            self.cal_points.append(point)
        return []


class EzoRtdEmulator(_Exporting):
    """EZO-RTD on the unit's temperature probe (°C unless told otherwise)."""

    device = "RTD"
    firmwares: ClassVar[dict[str, Firmware]] = {
        # 2.01 writes the scale in lower case (?S,c), newer firmware in upper case (?S,C).
        "2.01": Firmware("2.01", frozenset({"Find"})),
        "2.13": Firmware("2.13", frozenset({"Find", "C,n", "Export", "scale upper"})),
    }
    default_firmware = "2.13"

    def _init_device(self) -> None:
        self.scale = "c"
        self.calibrated = False
        self.cal_offset_c = 0.0
        self.logger_units = 0  # D,n: every n x 10 s (0: off)
        self._logged_at = 0.0
        self.memory: deque[tuple[int, str]] = deque(maxlen=MEMORY_SIZE)
        self._memory_index = 0

    def _celsius(self) -> float:
        if self.unit.rtd.open_circuit:
            return RTD_OPEN_CIRCUIT_C  # what the circuit reads with no probe: -1023.000
        latest = self.unit.rtd.latest()
        if self.unit.rtd.error or latest.value is None:
            raise Refuse
        return latest.value + self.cal_offset_c

    def _reading(self) -> str:
        celsius = self._celsius()
        if celsius == RTD_OPEN_CIRCUIT_C:
            return f"{celsius:.3f}"
        value = {"c": celsius, "k": celsius + 273.15, "f": celsius * 9 / 5 + 32}[self.scale]
        return f"{value:.3f}"

    def _tick(self) -> None:
        if self.logger_units <= 0:
            return
        now = self.clock.monotonic()
        if now - self._logged_at >= self.logger_units * LOGGER_UNIT_S:
            self._logged_at = now
            try:
                self._remember(self._reading())
            except Refuse:
                return

    def _remember(self, value: str) -> None:
        self._memory_index += 1
        self.memory.append((self._memory_index, value))

    def _reset(self) -> None:
        self._exporting = None

    def _factory_reset(self) -> None:
        super()._factory_reset()
        self.scale, self.calibrated, self.cal_offset_c = "c", False, 0.0
        self.logger_units = 0
        self.memory.clear()

    def _calibration_blob(self) -> str:
        return f"{int(self.calibrated)}{self.cal_offset_c:+08.3f}"

    def _import_blob(self, blob: str) -> None:
        try:
            calibrated, offset = blob[0] == "1", float(blob[1:])
        except (IndexError, ValueError):
            raise Refuse from None
        self.calibrated, self.cal_offset_c = calibrated, offset
        self._then = lambda: self._restart("S", announce=True)

    async def _device_command(self, head: str, args: list[str]) -> list[str]:
        if head == "R" and not args:
            await self.clock.sleep(RTD_READ_S)
            reading = self._reading()
            if self.logger_units == 0:
                self._remember(reading)  # single readings are kept in memory too
            return [reading]
        await self.clock.sleep(CAL_S if head == "CAL" and args != ["?"] else COMMAND_S)
        if head == "S" and len(args) == 1:
            if args[0] == "?":
                upper = self.firmware.has("scale upper")
                return [self._query("S", self.scale.upper() if upper else self.scale)]
            if args[0].lower() not in ("c", "k", "f"):
                raise Refuse
            self.scale = args[0].lower()
            return []
        if head == "CAL" and len(args) == 1:
            return self._calibrate(args[0])
        if head == "D" and len(args) == 1:
            if args[0] == "?":
                return [self._query("D", self.logger_units)]
            if not args[0].isdigit() or int(args[0]) > LOGGER_MAX:
                raise Refuse
            self.logger_units = int(args[0])
            return []
        if head == "M":
            return self._memory(args)
        if head == "EXPORT":
            return self._export(args)
        if head == "IMPORT":
            return self._import(args)
        raise Refuse

    def _calibrate(self, arg: str) -> list[str]:
        if arg == "?":
            return [self._query("Cal", int(self.calibrated))]
        if arg.lower() == "clear":
            self.calibrated, self.cal_offset_c = False, 0.0
            return []
        target = number(arg)  # a single point: the probe sits at this temperature
        self.cal_offset_c += target - self._celsius()
        self.calibrated = True
        return []

    def _memory(self, args: list[str]) -> list[str]:
        if not args:  # recall every stored reading: "index,value,index,value..."
            return [",".join(f"{n},{v}" for n, v in self.memory)] if self.memory else []
        if args == ["?"]:  # the last stored reading
            last = self.memory[-1] if self.memory else (0, "0.000")
            return [self._query("M", f"{last[0]},{last[1]}")]
        if [a.lower() for a in args] == ["clear"]:
            self.memory.clear()
            self._memory_index = 0
            return []
        raise Refuse
