"""Commissioning asked of the running daemon (the console's `commission`): the same report, read
from the serial drivers that hold the ports, with queries sent between their polls.

Read-only: nothing is pulsed here (`unit-controller commission --outputs` does that, with the
daemon stopped).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hal.serial.board import SerialHardware
from hal.serial.ezo_device import EzoDevice
from hal.serial.ezo_ph import EzoPhProbe
from hal.serial.ezo_pump import EzoPump
from hal.serial.ezo_rtd import EzoRtd
from hal.serial.modbus_frames import RelayBoardMap
from unit_controller.commissioning.report import CommissionReport, DeviceReport
from unit_controller.commissioning.survey import (
    MOTOR_MIN_V,
    judge_supply,
    level_switches,
    warn_of_ph_calibration_age,
)
from unit_controller.config import UnitConfig

QUERY_S = 30.0  # a query waits behind at most one poll of its device


async def survey_running(
    config: UnitConfig, hardware: SerialHardware, *, state_dir: Path
) -> CommissionReport:
    """Every instrument as the running drivers know it (`state_dir`: the daemon's, with its
    journal)."""
    ezo = hardware.ezo
    devices = [
        await _device(ezo.rtd, "RTD", config, state_dir),
        await _device(ezo.ph, "pH", config, state_dir),
        *[await _device(pump, "PMP", config, state_dir) for pump in ezo.pumps.values()],
    ]
    devices.extend(_relay_board(config, hardware))
    return CommissionReport(unit=config.unit.id, devices=devices)


async def _device(
    device: EzoDevice, kind: str, config: UnitConfig, state_dir: Path
) -> DeviceReport:
    link = device.link
    report = DeviceReport(tag=device.tag, kind=f"EZO-{kind}", port=link.path)
    lost = device.lost_reading()
    if not link.connected or lost is not None or link.firmware is None:
        report.problems.append(f"not answering on {link.path} ({lost.why if lost else 'closed'})")
        return report
    report.found = True
    report.firmware = link.firmware.text
    report.restart_reason = link.restart_reason
    report.voltage = link.voltage
    judge_supply(report)
    try:
        if isinstance(device, EzoRtd) and not isinstance(device, EzoPhProbe):
            report.reading = f"{device.latest().value} °C"
        elif isinstance(device, EzoPhProbe):
            await _ph(report, device, config, state_dir)
        elif isinstance(device, EzoPump):
            await _pump(report, device, config)
    except Exception as exc:  # a device that fails a query mid-survey is a finding
        report.problems.append(f"did not answer a query: {exc}")
    return report


async def _ph(
    report: DeviceReport, probe: EzoPhProbe, config: UnitConfig, state_dir: Path
) -> None:
    report.reading = f"pH {probe.latest().value}"
    status = await asyncio.wait_for(probe.calibration_status(), QUERY_S)
    if status.points == 0:
        report.warnings.append("not calibrated: console `cal ph mid 7.00`, then low and high")
        return
    report.warnings.extend(f"calibration: {p}" for p in status.problems)
    await warn_of_ph_calibration_age(report, config, state_dir)


async def _pump(report: DeviceReport, pump: EzoPump, config: UnitConfig) -> None:
    maximum = pump.circuit_max_ml_min
    report.reading = f"max {maximum:g} mL/min" if maximum is not None else None
    configured = config.wiring.pumps()[pump.tag].max_ml_min
    if maximum is not None and maximum < configured:
        report.warnings.append(
            f"the circuit can do {maximum:g} mL/min, the config allows {configured:g}: "
            "rates are capped at the circuit's maximum"
        )
    if pump.fault() is not None:
        report.problems.append(str(pump.fault()))

    async def motor() -> float:
        lines = await pump.ask("PV,?")
        return float(lines[-1].split(",")[1])

    volts = await asyncio.wait_for(pump.call(motor, timeout_s=QUERY_S), QUERY_S)
    if not volts >= MOTOR_MIN_V:
        report.problems.append(f"motor supply {volts:.2f} V (needs {MOTOR_MIN_V:g} V or more)")
    if not await asyncio.wait_for(pump.is_calibrated(), QUERY_S):
        report.warnings.append(
            f"not calibrated: jog pump {pump.tag} 10 cylinder, measure, cal pump {pump.tag}"
        )


def _relay_board(config: UnitConfig, hardware: SerialHardware) -> list[DeviceReport]:
    relay = hardware.relay_board
    board = DeviceReport(tag="relay_board", kind="Modbus relay board", port=relay.path)
    if relay.lost:
        board.problems.append(f"not answering on {relay.path}")
        return [board]
    board.found = True
    mapping = RelayBoardMap.from_wiring(config.wiring)
    readings = {number: relay.reading(number) for number in mapping.inputs}
    bad = [mapping.tags[mapping.inputs[n]] for n, r in readings.items() if not r.good]
    if bad:
        board.problems.append(f"inputs without a good reading: {', '.join(bad)}")
        return [board]
    bits = [bool(readings[n].value) if n in readings else False for n in range(max(readings) + 1)]
    return [board, *level_switches(mapping, bits)]
