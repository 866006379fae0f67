"""Finding and checking every configured instrument on its own port, with nothing else running.

Each EZO circuit is asked who it is (`i`), how it last started and on what supply (`Status`),
and what a tech must know of it (calibration, a reading, the pump's maximum and motor supply).
The relay board is asked its firmware and every input is read. `--outputs` pulses each relay
and pump once a person at the unit has said yes, and asks them whether it worked.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.pdu import ModbusPDU

from hal.calibration import judge
from hal.clock import Clock, SystemClock
from hal.log import get_logger
from hal.mock.devices import RTD_OPEN_CIRCUIT_C
from hal.serial.ezo_link import COMMAND_S, READ_S, EzoError, EzoLink, EzoLinkError
from hal.serial.modbus_frames import FLASH_BASE, RelayBoardMap, WriteCoilValue, flash_units
from hal.serial.reconnect import Backoff, within
from hal.wiring import DosingPumpWiring, PhProbeWiring, RtdWiring
from unit_controller.commissioning.report import CommissionReport, DeviceReport
from unit_controller.config import UnitConfig

log = get_logger(__name__)

FIND_S = 8.0  # a circuit that has not answered its start-up sequence by then is not there
EZO_SUPPLY_V = (3.1, 5.5)  # outside it the circuit answers *UV / *OV
MOTOR_MIN_V = 10.8
PULSE_S = 2.0
PUMP_PULSE_ML = 1.0
KINDS = {RtdWiring: "RTD", PhProbeWiring: "pH", DosingPumpWiring: "PMP"}
RESTARTS = {"B": "brown-out", "W": "watchdog", "U": "unknown cause"}
JOURNAL_FILE = "journal.sqlite3"

Ask = Callable[[str], Awaitable[bool]]  # a yes/no question to the person at the unit


async def survey(
    config: UnitConfig,
    *,
    state_dir: Path,
    ask: Ask | None = None,
    clock: Clock | None = None,
) -> CommissionReport:
    """Every instrument of `config`'s unit, found and checked; with `ask`, outputs pulsed.
    `state_dir` holds the unit's journal, for the pH calibration's age."""
    clock = clock or SystemClock()
    devices: list[DeviceReport] = []
    for tag, wiring in config.wiring.devices.items():
        if isinstance(wiring, RtdWiring | PhProbeWiring | DosingPumpWiring):
            found = await _ezo(tag, KINDS[type(wiring)], wiring, config, clock, ask, state_dir)
            devices.append(found)
    devices.extend(await _relay_board(config, clock, ask))
    return CommissionReport(unit=config.unit.id, devices=devices)


# --- EZO circuits ---------------------------------------------------------------------------


async def _ezo(
    tag: str,
    kind: str,
    wiring: RtdWiring | PhProbeWiring | DosingPumpWiring,
    config: UnitConfig,
    clock: Clock,
    ask: Ask | None,
    state_dir: Path,
) -> DeviceReport:
    port = wiring.port
    report = DeviceReport(tag=tag, kind=f"EZO-{kind}", port=port)
    if not port:
        report.problems.append(f"no port in the config ([devices.{tag}] port)")
        return report
    if not await asyncio.to_thread(Path(port).exists):
        # At once, not after FIND_S of retries: a unit with no adapters answers in a second.
        report.problems.append(f"{port} does not exist (adapter unplugged or wrong path)")
        return report
    link = EzoLink(tag=tag, path=port, clock=clock, backoff=Backoff(initial_s=0.2, max_s=1.0))
    try:
        try:
            await within(clock, FIND_S, link.connect())
        except (TimeoutError, EzoLinkError) as exc:
            missing = not await asyncio.to_thread(Path(port).exists)
            opening = link.port_problem  # e.g. the running daemon holds the port's lock
            if missing:
                report.problems.append(f"{port} does not exist (adapter unplugged or wrong path)")
            elif opening is not None:
                report.problems.append(
                    f"cannot open {port}: {opening} (is the unit-controller service running? "
                    "systemctl stop unit-controller, or ask the daemon: commission at the console)"
                )
            else:
                report.problems.append(
                    f"no answer on {port} within {FIND_S:g} s ({exc or 'silent'})"
                )
            return report
        report.found = True
        firmware = link.firmware
        assert firmware is not None  # read by the start-up sequence
        report.firmware = firmware.text
        report.restart_reason = link.restart_reason
        report.voltage = link.voltage
        if firmware.device.upper() != kind.upper():
            report.problems.append(
                f"answers as EZO-{firmware.device}, the config says EZO-{kind}: wrong port?"
            )
            return report
        judge_supply(report)
        if kind == "pH":  # its calibration's age is in the unit's journal
            await _ph(report, link, wiring, config, ask, state_dir)
        else:
            await {"RTD": _rtd, "PMP": _pump}[kind](report, link, wiring, config, ask)
    except _Malformed as exc:
        report.problems.append(f"answered {exc.command} with a reply the checks cannot read: {exc}")
    except EzoLinkError as exc:
        report.problems.append(f"stopped answering during the checks: {exc}")
    finally:
        await link.close()
    return report


def judge_supply(report: DeviceReport) -> None:
    """A supply outside what the circuit tolerates is a problem; a brown-out or watchdog
    restart is worth a warning."""
    low, high = EZO_SUPPLY_V
    if report.voltage is not None and not low <= report.voltage <= high:
        report.problems.append(
            f"supply {report.voltage:.2f} V is outside {low:g}..{high:g} V: check the wiring"
        )
    cause = RESTARTS.get(report.restart_reason or "")
    if cause is not None:
        report.warnings.append(f"last restart was a {cause} ({report.restart_reason})")


async def _ask(link: EzoLink, command: str, wait_s: float = COMMAND_S) -> list[str]:
    return await link.command(command, wait_s=wait_s, timeout_s=1.0)


class _Malformed(EzoLinkError):
    """A reply the checks cannot read (not the circuit falling silent)."""


def _field(lines: list[str], index: int = 1, *, command: str = "?") -> str:
    if not lines:
        raise _Malformed("no reply line before *OK", tag="?", command=command)
    parts = lines[-1].split(",")
    return parts[index] if len(parts) > index else ""


def _number(lines: list[str], index: int = 1, *, command: str) -> float:
    """A field as an EZO writes a number (`-12.345`), else _Malformed naming the reply: never a
    traceback, nor Python's wider syntax (`1_0`, ` 3e1`, `nan`)."""
    text = _field(lines, index, command=command)
    if not _EZO_NUMBER.fullmatch(text):
        raise _Malformed(f"not a number in the reply {lines[-1][:40]!r}", tag="?", command=command)
    return float(text)


_EZO_NUMBER = re.compile(r"-?\d+(\.\d+)?")


async def _rtd(
    report: DeviceReport, link: EzoLink, wiring: object, config: UnitConfig, ask: Ask | None
) -> None:
    try:
        scale = _field(await _ask(link, "S,?"), command="S,?").lower()
    except EzoError:
        scale = "c"  # a firmware without the query reads °C (the datasheet's default)
    if scale != "c":
        # Kept in the circuit: the daemon sets it back to °C at its start (ezo.rtd_scale_set).
        report.warnings.append(
            f"reads in {scale.upper() or '?'}, not °C: the controller sets it to °C (S,c) as it "
            "starts"
        )
    reading = _number(await _ask(link, "R", READ_S), 0, command="R")
    report.reading = f"{reading:g} {'°C' if scale == 'c' else scale.upper()}"
    rtd = config.wiring.rtd()
    if reading <= RTD_OPEN_CIRCUIT_C + 1:
        report.problems.append("reads -1023 °C: no probe connected (or an open lead)")
    elif scale == "c" and not rtd.min_c <= reading <= rtd.max_c:
        report.problems.append(
            f"reads {reading:g} °C, outside the probe's range ({rtd.min_c:g}..{rtd.max_c:g} °C): "
            "the controller takes it as a bad reading"
        )
    if _field(await _ask(link, "Cal,?"), command="Cal,?") in ("", "0"):
        report.warnings.append("not calibrated (a single point in a known bath: cal,<°C>)")


async def _ph(
    report: DeviceReport,
    link: EzoLink,
    wiring: object,
    config: UnitConfig,
    ask: Ask | None,
    state_dir: Path,
) -> None:
    reading = _number(await _ask(link, "R", READ_S), 0, command="R")
    report.reading = f"pH {reading:.3f}"
    probe = config.wiring.ph_probe()
    if not probe.min_ph <= reading <= probe.max_ph:
        report.problems.append(
            f"reads pH {reading:g}, outside the probe's range ({probe.min_ph:g}..{probe.max_ph:g})"
            ": the controller takes it as a bad reading (probe unplugged or broken?)"
        )
    points = _field(await _ask(link, "Cal,?"), command="Cal,?")
    if points in ("", "0"):
        report.warnings.append("not calibrated: console `cal ph mid 7.00`, then low and high")
        return
    replied = await _ask(link, "Slope,?")
    _field(replied, command="Slope,?")  # no line at all is a reply the checks cannot read
    slope = replied[-1].split(",")[1:]
    with contextlib.suppress(ValueError, IndexError):
        acid, base = float(slope[0]), float(slope[1])
        offset = float(slope[2]) if len(slope) > 2 else 0.0
        _verdict, problems = judge(acid_pct=acid, base_pct=base, offset_mv=offset)
        report.warnings.extend(f"calibration: {p}" for p in problems)
    await warn_of_ph_calibration_age(report, config, state_dir)


async def warn_of_ph_calibration_age(
    report: DeviceReport, config: UnitConfig, state_dir: Path
) -> None:
    """A warning when the pH calibration is older than `[calibration] ph_due_days` or its age
    is unknown."""
    age = await asyncio.to_thread(last_ph_calibration_days, state_dir)
    due = config.calibration.ph_due_days
    if age is None:
        report.warnings.append("calibration age unknown (no calibration in this unit's journal)")
    elif age > due:
        report.warnings.append(f"calibration due: {age:.1f} days old (every {due:g} days)")


async def _pump(
    report: DeviceReport, link: EzoLink, wiring: object, config: UnitConfig, ask: Ask | None
) -> None:
    assert isinstance(wiring, DosingPumpWiring)
    maximum = _number(await _ask(link, "DC,?"), command="DC,?")
    report.reading = f"max {maximum:g} mL/min"
    if maximum < wiring.max_ml_min:
        report.warnings.append(
            f"the circuit can do {maximum:g} mL/min, the config allows {wiring.max_ml_min:g}: "
            "rates are capped at the circuit's maximum"
        )
    motor = _number(await _ask(link, "PV,?"), command="PV,?")
    if not motor >= MOTOR_MIN_V:
        report.problems.append(f"motor supply {motor:.2f} V (needs {MOTOR_MIN_V:g} V or more)")
    if _field(await _ask(link, "Cal,?"), command="Cal,?") in ("", "0"):
        report.warnings.append(
            f"not calibrated: jog pump {report.tag} 10 cylinder, measure, cal pump {report.tag}"
        )
    question = f"dose {PUMP_PULSE_ML:g} mL with {report.tag} ({wiring.reagent})?"
    if ask is not None and not report.problems and await ask(question):
        await _ask(link, f"D,{PUMP_PULSE_ML:g}")
        await asyncio.sleep(2.0)
        await link.command("X", wait_s=COMMAND_S, timeout_s=1.0, done_ends=True)
        if not await ask(f"did {report.tag} turn and dose?"):
            report.problems.append("pulsed, but the tech saw it not turn: check the wiring")


def last_ph_calibration_days(state_dir: Path) -> float | None:
    """Days since the newest pH calibration point in the unit's journal in `state_dir` (None:
    none, or no journal)."""
    path = state_dir / JOURNAL_FILE
    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            row = conn.execute(
                "SELECT max(ts_ms) FROM calibrations WHERE kind = 'ph' "
                "AND action IN ('mid', 'low', 'high')"
            ).fetchone()
    except sqlite3.Error:
        return None
    if row is None or row[0] is None:
        return None
    return (time.time() * 1000 - int(row[0])) / 86_400_000


# --- the relay board ------------------------------------------------------------------------


async def _relay_board(config: UnitConfig, clock: Clock, ask: Ask | None) -> list[DeviceReport]:
    settings = config.hal.serial
    port = settings.relay_board_port
    board = DeviceReport(tag="relay_board", kind="Modbus relay board", port=port)
    if not port:
        board.problems.append("no port in the config ([hal.serial] relay_board_port)")
        return [board]
    if not await asyncio.to_thread(Path(port).exists):
        board.problems.append(f"{port} does not exist (adapter unplugged or wrong path)")
        return [board]
    client = AsyncModbusSerialClient(port, baudrate=settings.baudrate, timeout=1.0, retries=2)
    client.register(WriteCoilValue)
    try:
        if not await client.connect():
            board.problems.append(f"cannot open {port}")
            return [board]
        slave = settings.relay_board_slave
        version = await client.read_holding_registers(0x8000, count=1, device_id=slave)
        if version.isError():
            board.warnings.append("no firmware version (register 0x8000): not a Waveshare board?")
        else:
            board.firmware = f"{version.registers[0] / 100:.2f}"
        mapping = RelayBoardMap.from_wiring(config.wiring)
        inputs = await client.read_discrete_inputs(
            0, count=max(mapping.inputs) + 1, device_id=slave
        )
        if inputs.isError():
            board.problems.append(f"refused to read the inputs (exception {inputs.exception_code})")
            return [board]
        board.found = True
        switches = level_switches(mapping, [bool(bit) for bit in inputs.bits])
        if ask is not None:
            switches.extend(await _pulse_relays(client, slave, mapping, ask))
        return [board, *switches]
    except Exception as exc:  # pymodbus: no answer is an exception, not a reply
        log.warning("commission.relay_board_failed", error=str(exc))
        board.problems.append(
            f"no answer on {port} ({exc}): asked as Modbus slave {settings.relay_board_slave} "
            f"at {settings.baudrate} baud ([hal.serial] relay_board_slave, baudrate): is that "
            "the board's address and speed (its DIP switches or the Waveshare tool)?"
        )
        return [board]
    finally:
        client.close()


def level_switches(mapping: RelayBoardMap, bits: list[bool]) -> list[DeviceReport]:
    """The E-stop and each level switch as read; a switch wet above a dry one is a problem."""
    reports = []
    wet: dict[str, bool] = {}
    for number, role in sorted(mapping.inputs.items()):
        tag = mapping.tags[role]
        on = bits[number]
        is_estop = role == "estop"
        report = DeviceReport(
            tag=tag,
            kind="E-stop" if is_estop else f"level switch ({role})",
            found=True,
            reading=("pressed" if on else "released") if is_estop else ("wet" if on else "dry"),
        )
        if is_estop and on:
            report.warnings.append("the E-stop is pressed: release it before a batch")
        if not is_estop:
            wet[str(role)] = on
        reports.append(report)
    order = ["low_low", "low", "high", "high_high"]
    known = [point for point in order if point in wet]
    for lower, upper in itertools.pairwise(known):
        if wet[upper] and not wet[lower]:
            culprit = next(r for r in reports if r.kind == f"level switch ({upper})")
            culprit.problems.append(
                f"reads wet while the {lower.replace('_', '-')} switch below it reads dry: "
                "a stuck switch or swapped wires"
            )
    return reports


async def _pulse_relays(
    client: AsyncModbusSerialClient, slave: int, mapping: RelayBoardMap, ask: Ask
) -> list[DeviceReport]:
    reports = []
    for relay, output in sorted(mapping.relays.items()):
        tag = mapping.tags[output]
        report = DeviceReport(
            tag=tag, kind=f"output (relay {relay}: {output or 'heater SSR'})", found=True
        )
        if await ask(f"pulse {tag} ({output or 'heater SSR'}) for {PULSE_S:g} s?"):
            # A flash-on: the board switches it off by itself even if we are interrupted.
            pulse = WriteCoilValue(
                address=FLASH_BASE + relay, value=flash_units(PULSE_S), dev_id=slave
            )
            execute = cast(Callable[[bool, ModbusPDU], Awaitable[ModbusPDU]], client.execute)
            reply = await execute(False, pulse)
            if reply.isError():
                report.problems.append(f"the board refused the pulse ({reply})")
            elif not await ask(f"did {tag} switch?"):
                report.problems.append("pulsed, but the tech saw nothing: check the wiring")
        else:
            report.warnings.append("not pulsed (skipped)")
        reports.append(report)
    return reports
