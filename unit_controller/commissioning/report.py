"""What commissioning found: one entry per device, problems (exit 3) and warnings (filed, not
failing), as text a tech can file and as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DeviceReport:
    """One device: found or not, what it says of itself, and what is wrong with it."""

    tag: str
    kind: str  # EZO-pH, EZO-RTD, EZO-PMP, relay board, level switch, E-stop, output
    port: str | None = None
    found: bool = False
    firmware: str | None = None
    restart_reason: str | None = None
    voltage: float | None = None
    reading: str | None = None  # what it reads now, for people
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Found, and nothing wrong with it (warnings allowed)."""
        return self.found and not self.problems


@dataclass
class CommissionReport:
    """Every device of the unit; ok when all are found and healthy."""

    unit: str
    devices: list[DeviceReport]

    @property
    def ok(self) -> bool:
        """True when every device is found and has no problem."""
        return all(device.healthy for device in self.devices)

    def as_json(self) -> dict[str, Any]:
        """`{"ok": bool, "unit": id, "devices": [...]}` (each device with its problems)."""
        return {"ok": self.ok, "unit": self.unit, "devices": [asdict(d) for d in self.devices]}

    def as_text(self) -> str:
        """The report a tech files: one block a device, the verdict last."""
        lines = [f"commissioning report for unit {self.unit}", ""]
        for device in self.devices:
            state = "ok" if device.healthy else "PROBLEM" if device.found else "NOT FOUND"
            said = [
                f"firmware {device.firmware}" if device.firmware else "",
                f"restart {device.restart_reason}" if device.restart_reason else "",
                f"{device.voltage:.2f} V" if device.voltage is not None else "",
                f"reads {device.reading}" if device.reading is not None else "",
            ]
            where = f" on {device.port}" if device.port else ""
            detail = ", ".join(s for s in said if s)
            lines.append(f"{state:9} {device.tag:9} {device.kind}{where}")
            if detail:
                lines.append(f"          {detail}")
            lines.extend(f"          problem: {p}" for p in device.problems)
            lines.extend(f"          warning: {w}" for w in device.warnings)
        bad = [d.tag for d in self.devices if not d.healthy]
        lines.append("")
        lines.append(
            "OK: every device found and healthy" if self.ok else f"NOT OK: {', '.join(bad)}"
        )
        return "\n".join(lines)
