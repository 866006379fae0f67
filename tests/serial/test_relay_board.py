"""The relay-board driver against its emulator over real pseudo-terminals, on a ScaledClock.

Every wait is a condition with a bounded timeout; nothing here mocks pyserial or pymodbus.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusIOException
from structlog.testing import capture_logs

from hal.clock import LockstepClock, VirtualClock
from hal.mock.unit import SimulatedUnit
from hal.reading import BadReason
from hal.serial.modbus_frames import FLASH_BASE, RelayBoardMap, RelayBoardTiming
from hal.serial.relay_board import RelayBoard
from hal.sim.emulators.pty_port import PtyPort
from hal.sim.emulators.relay_board import RelayBoardEmulator
from hal.sim.faults import FaultSpec
from hal.wiring import CoilFunction, LevelPoint
from tests.serial.conftest import lockstep
from unit_controller.config import load_config
from unit_controller.interlocks.readings import awaiting_first, check_discrete

# The driver's own defaults, bar a faster reopen: the clock moves only when the bytes are across.
TIMING = RelayBoardTiming(reopen_min_s=0.5, reopen_max_s=2.0)


@dataclass
class Rig:
    """A simulated unit behind an emulated relay board on a pty, and the driver on its path."""

    clock: LockstepClock
    unit: SimulatedUnit
    port: PtyPort
    emulator: RelayBoardEmulator
    board: RelayBoard
    board_task: asyncio.Task[None]

    async def until(self, condition: Callable[[], bool], *, within_s: float, what: str) -> None:
        """Wait until `condition` holds, failing after `within_s` clock seconds."""
        deadline = self.clock.monotonic() + within_s
        while not condition():
            if self.clock.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {within_s} s")
            await self.clock.sleep(0.02)

    async def holds(self, condition: Callable[[], bool], *, for_s: float, what: str) -> None:
        """Check that `condition` holds at every look for `for_s` clock seconds."""
        end = self.clock.monotonic() + for_s
        while self.clock.monotonic() < end:
            assert condition(), f"{what}: stopped holding"
            await self.clock.sleep(0.05)

    def step_unit(self) -> None:
        """Let the unit sample its switches (after a fault was injected)."""
        self.unit.step(0.1)


async def _make_rig(tmp_path: Path, *, relays: int = 8) -> AsyncIterator[Rig]:
    ports: list[PtyPort] = []
    async with lockstep(ports) as clock:
        async for rig in _rig_on(tmp_path, clock, ports, relays=relays):
            yield rig


async def _rig_on(
    tmp_path: Path, clock: LockstepClock, ports: list[PtyPort], *, relays: int
) -> AsyncIterator[Rig]:
    config = load_config()
    unit = SimulatedUnit(wiring=config.wiring, params=config.sim.plant, clock=clock, seed=1)
    port = PtyPort(directory=tmp_path, name="usb-relay-board")
    ports.append(port)
    emulator = RelayBoardEmulator(
        port=port,
        unit=unit,
        clock=clock,
        channels=RelayBoardMap.from_wiring(config.wiring),
        relays=relays,
    )
    board = RelayBoard(path=port.path, clock=clock, wiring=config.wiring, timing=TIMING)
    emulator_task = asyncio.create_task(emulator.run())
    board_task = asyncio.create_task(board.run())
    rig = Rig(clock, unit, port, emulator, board, board_task)
    try:
        await rig.until(lambda: board.estop().latest().good, within_s=3.0, what="first poll")
        yield rig
    finally:
        for task in (board_task, emulator_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        port.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """The standard 8-relay board."""
    async for made in _make_rig(tmp_path):
        yield made


def _reason(rig: Rig) -> str:
    return rig.board.input(LevelPoint.LOW_LOW).latest().why or ""


async def test_coil_set_on_reaches_the_unit_and_stays_on_while_renewed(rig: Rig) -> None:
    agitator = rig.unit.coils[CoilFunction.AGITATOR]
    relay = rig.board.map.relay_of(CoilFunction.AGITATOR)
    start = rig.clock.monotonic()
    rig.board.coil(CoilFunction.AGITATOR).set(True)
    await rig.until(lambda: agitator.energised, within_s=3.0, what="agitator on")
    # Well past one 10 s lease: renewed, never dropping out.
    await rig.holds(lambda: agitator.energised, for_s=16.0, what="agitator on")
    flashes = [w for w in rig.emulator.writes(start) if w.address == FLASH_BASE + relay]
    assert all(w.value == 100 for w in flashes), "a 10 s flash-on, in 100 ms units"
    # Renewed every ~3 s: enough to never lapse, few enough to leave the bus free.
    assert 5 <= len(flashes) <= 8


async def test_coil_drops_out_by_itself_when_the_driver_hangs(rig: Rig) -> None:
    purge = rig.unit.coils[CoilFunction.PURGE_VALVE]
    rig.board.coil(CoilFunction.PURGE_VALVE).set(True)
    await rig.until(lambda: purge.energised, within_s=3.0, what="purge on")
    rig.board_task.cancel()  # a hung controller: nothing renews the lease, nothing writes off
    hung_at = rig.clock.monotonic()
    await rig.until(lambda: not purge.energised, within_s=11.0, what="purge dropping out")
    assert rig.clock.monotonic() - hung_at > TIMING.coil_lease_s - TIMING.renew_after_s - 0.5


async def test_heater_pulse_turns_off_by_itself_after_its_on_time(rig: Rig) -> None:
    heater = rig.unit.heater
    start = rig.clock.monotonic()
    rig.board.heater().pulse(2.0)
    await rig.until(lambda: heater.conducting, within_s=3.0, what="heater on")
    # The controller keeps asking for the same end time each scan: no rewrites.
    for _ in range(5):
        await rig.clock.sleep(0.1)
        rig.board.heater().pulse(2.0 - (rig.clock.monotonic() - start))
    await rig.until(lambda: not heater.conducting, within_s=2.5, what="heater off")
    off_after = rig.clock.monotonic() - start
    # Off when asked (the flash is written for the time still left, rounded up to 100 ms).
    assert 1.9 <= off_after <= 3.5
    relay = rig.board.map.relay_of(None)
    writes = [w for w in rig.emulator.writes(start) if w.address == FLASH_BASE + relay]
    assert len(writes) == 1
    assert writes[0].value is not None
    assert 18 <= writes[0].value <= 20


async def test_off_is_written_at_once_contactor_before_heater(rig: Rig) -> None:
    contactor = rig.board.coil(CoilFunction.CONTACTOR)
    contactor.set(True)
    rig.board.heater().pulse(30.0)
    unit = rig.unit
    await rig.until(
        lambda: unit.heater.conducting and unit.coils[CoilFunction.CONTACTOR].energised,
        within_s=3.0,
        what="heater and contactor on",
    )
    opened = rig.clock.monotonic()
    contactor.set(False)
    rig.board.heater().pulse(0.0)
    await rig.until(
        lambda: not unit.heater.conducting and not unit.coils[CoilFunction.CONTACTOR].energised,
        within_s=3.0,
        what="heater and contactor off",
    )
    k101 = rig.board.map.relay_of(CoilFunction.CONTACTOR)
    e101 = rig.board.map.relay_of(None)
    since = [h for h in rig.emulator.handled if h.at >= opened]
    offs = [(h.address, h.value) for h in since if h.function_code == 5]
    assert offs[:2] == [(k101, 0), (e101, 0)]
    # At once: not left for the next poll cycle (at most the poll under way went first).
    first_off = next(i for i, h in enumerate(since) if h.function_code == 5)
    assert first_off <= 1


async def test_inputs_follow_the_level_switches_and_the_estop(rig: Rig) -> None:
    lshh = rig.board.input("high_high")
    by_tag = rig.board.input(rig.unit.wiring.level_tag(LevelPoint.HIGH_HIGH))
    estop = rig.board.estop()
    assert lshh.latest().value is False
    assert estop.latest().value is False
    rig.unit.inject(FaultSpec(name="level_high_high", tag=None, at_s=0))
    rig.step_unit()
    await rig.until(lambda: lshh.latest().value is True, within_s=3.0, what="LSHH wet")
    assert by_tag.latest().value is True
    assert by_tag.tag == lshh.tag
    rig.unit.inject(FaultSpec(name="estop", tag=None, at_s=0))
    rig.step_unit()
    await rig.until(lambda: estop.latest().value is True, within_s=3.0, what="E-stop pressed")
    # Readings carry the time they were polled.
    assert estop.latest().age(rig.clock.monotonic()) < 1.0


@pytest.mark.parametrize("fault", ["bad_crc", "garbage"])
async def test_a_few_garbled_answers_are_retried_without_losing_the_board(
    rig: Rig, fault: str
) -> None:
    if fault == "bad_crc":
        rig.emulator.bad_crc_next(2)
    else:
        rig.emulator.garbage(2)
    with capture_logs() as logs:
        marked = rig.clock.monotonic()
        estop = rig.board.estop()
        await rig.until(
            lambda: estop.latest().good and estop.latest().at > marked + 0.5,
            # Two garbled answers cost two timeouts and a late-answer wait: the bound that
            # matters is that readings are fresh again before the board would be judged lost.
            within_s=TIMING.lost_after_s,
            what="fresh readings after the retries",
        )
    events = [e["event"] for e in logs]
    assert "relay_board.timeout" in events or "relay_board.bad_response" in events
    assert "device.lost" not in events
    assert not rig.board.lost


async def test_a_board_that_answers_only_line_noise_is_lost_not_called_silent(rig: Rig) -> None:
    rig.emulator.garbage(10_000)
    await rig.until(lambda: "device_lost" in _reason(rig), within_s=10.0, what="lost")
    assert _reason(rig).endswith(
        "(its limit 3 s): no valid frame (silent, or line noise); asked as slave 1 at 9600 baud: "
        "the board's address and speed?"
    )


async def test_a_silent_board_goes_stale_then_lost_then_recovers(rig: Rig) -> None:
    lsll = rig.board.input(LevelPoint.LOW_LOW)
    rig.board.coil(CoilFunction.AGITATOR).set(True)
    agitator = rig.unit.coils[CoilFunction.AGITATOR]
    await rig.until(lambda: agitator.energised, within_s=3.0, what="agitator on")
    with capture_logs() as logs:
        rig.emulator.silent(True)
        silent_at = rig.clock.monotonic()
        # Failed polls leave the last good sample to age: it goes stale, it is not refreshed.
        await rig.until(
            lambda: lsll.latest().age(rig.clock.monotonic()) > 1.0, within_s=1.5, what="stale"
        )
        stale = lsll.latest()
        assert stale.good
        assert stale.at <= silent_at + 0.1
        await rig.until(lambda: "device_lost" in _reason(rig), within_s=3.0, what="lost")
        assert lsll.latest().value is None
        assert _reason(rig).endswith(
            "(its limit 3 s): no valid frame (silent, or line noise); asked as slave 1 at 9600 "
            "baud: the board's address and speed?"
        )
        # The bus task judges (and logs) the loss at the end of its failing cycle.
        await rig.until(
            # A failing cycle retries every request first: allow several of them.
            lambda: any(e["event"] == "device.lost" for e in logs),
            within_s=20.0,
            what="logged",
        )
        rig.emulator.silent(False)
        await rig.until(lambda: lsll.latest().good, within_s=2.0, what="recovered")
        # Outputs were assumed off: the desired coil is written again, not left to its renewal.
        back = rig.clock.monotonic() - 0.5
        flash = FLASH_BASE + rig.board.map.relay_of(CoilFunction.AGITATOR)
        await rig.until(
            lambda: any(w.address == flash for w in rig.emulator.writes(back)),
            within_s=3.0,
            what="agitator re-written",
        )
        assert agitator.energised
    events = [e["event"] for e in logs]
    assert events.count("device.lost") == 1
    assert "device.recovered" in events


async def test_unplug_loses_the_board_and_replug_rewrites_the_desired_coils(rig: Rig) -> None:
    purge = rig.unit.coils[CoilFunction.PURGE_VALVE]
    rig.board.coil(CoilFunction.PURGE_VALVE).set(True)
    await rig.until(lambda: purge.energised, within_s=3.0, what="purge on")
    with capture_logs() as logs:
        rig.port.unplug()
        await rig.until(lambda: "device_lost" in _reason(rig), within_s=4.0, what="lost")
        assert "(its limit 3 s): port not open (" in _reason(rig)  # not "no response"
        # Unplugged, nothing renews it: the relay drops out in the board by itself.
        await rig.until(lambda: not purge.energised, within_s=10.0, what="purge dropped out")
        rig.port.replug()
        await rig.until(
            lambda: rig.board.input(LevelPoint.LOW_LOW).latest().good,
            within_s=4.0,
            what="inputs good after replug",
        )
        await rig.until(lambda: purge.energised, within_s=3.0, what="purge re-written")
    events = [e["event"] for e in logs]
    assert "relay_board.port_lost" in events
    assert "device.lost" in events
    assert "relay_board.reconnected" in events


@pytest.fixture
async def small_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A 5-relay board: the purge valve's relay 5 is wired to a channel the board lacks."""
    async for made in _make_rig(tmp_path, relays=5):
        yield made


async def test_a_write_to_a_missing_relay_is_an_exception_not_a_lost_board(
    small_rig: Rig,
) -> None:
    rig = small_rig
    assert rig.board.map.relay_of(CoilFunction.PURGE_VALVE) >= 5
    with capture_logs() as logs:
        rig.board.coil(CoilFunction.PURGE_VALVE).set(True)
        rig.board.coil(CoilFunction.AGITATOR).set(True)
        agitator = rig.unit.coils[CoilFunction.AGITATOR]
        await rig.until(lambda: agitator.energised, within_s=3.0, what="agitator on")
        # The off written at start-up was refused already; the flash-on is tried once that
        # refusal's hold-off has passed.
        flash = FLASH_BASE + rig.board.map.relay_of(CoilFunction.PURGE_VALVE)
        await rig.until(
            lambda: any(e.get("address") == flash for e in logs),
            within_s=TIMING.renew_after_s + 0.5,
            what="exception logged",
        )
        await rig.holds(lambda: not rig.board.lost, for_s=4.0, what="board not lost")
    purge = rig.board.map.relay_of(CoilFunction.PURGE_VALVE)
    refused = [
        e
        for e in logs
        if e["event"] == "relay_board.exception" and e.get("address") in (purge, FLASH_BASE + purge)
    ]
    assert "exception 0x02" in refused[0]["error"]
    # Not hammered every cycle: retried about once per renewal interval.
    assert len(refused) <= 3


async def test_raw_frames_illegal_address_and_wrong_slave(rig: Rig) -> None:
    rig.board_task.cancel()  # the test speaks to the board itself
    with contextlib.suppress(asyncio.CancelledError):
        await rig.board_task
    await rig.clock.sleep(0.5)  # an answer to the cancelled task's last request lands ...
    rig.port.drop_unread()  # ... and goes, as when a port is reopened
    client = AsyncModbusSerialClient(rig.port.path, baudrate=9600, timeout=0.5, retries=0)
    assert await client.connect()
    try:
        refused = await client.read_coils(6, count=4, device_id=1)
        assert refused.isError()
        assert refused.exception_code == 0x02
        coils = await client.read_coils(0, count=8, device_id=1)
        assert not coils.isError()
        assert coils.bits[:8] == [False] * 8
        written = await client.write_coils(0, [True, False, True], device_id=1)
        assert not written.isError()
        assert rig.unit.heater.conducting  # relay 0 is the heater's in the example wiring
        with pytest.raises(ModbusIOException):
            await client.read_coils(0, count=1, device_id=2)  # another slave: no answer
    finally:
        client.close()


async def test_a_refused_write_is_a_fault_of_that_coil_until_a_write_lands(rig: Rig) -> None:
    coil = rig.board.coil(CoilFunction.AGITATOR)
    relay = rig.board.map.relay_of(CoilFunction.AGITATOR)
    assert coil.fault() is None
    rig.emulator.refuse_relay(relay)
    coil.set(True)
    await rig.until(lambda: coil.fault() is not None, within_s=3.0, what="refusal seen")
    assert "refused the write (exception 4)" in str(coil.fault())
    assert rig.board.coil(CoilFunction.FILL_PUMP).fault() is None  # only that coil
    rig.emulator.refuse_relay(relay, on=False)
    # Tried again once the refusal's hold-off has passed: it lands, and the fault goes.
    await rig.until(
        lambda: coil.fault() is None, within_s=TIMING.renew_after_s + 3.0, what="write lands"
    )
    assert rig.unit.coils[CoilFunction.AGITATOR].energised


async def test_the_simulators_relay_refused_fault_is_a_refusal_on_the_wire(rig: Rig) -> None:
    # `--fault relay_refused:TAG` marks the simulated device; the board behind the pty must
    # answer its writes with an exception, as the mock backend's coil refuses them.
    heater = rig.board.heater()
    rig.unit.heater.refused = True
    heater.pulse(2.0)
    await rig.until(lambda: heater.fault() is not None, within_s=3.0, what="refusal seen")
    assert "refused the write (exception 4)" in str(heater.fault())
    assert not rig.unit.heater.conducting
    coil = rig.board.coil(CoilFunction.CONTACTOR)
    rig.unit.coils[CoilFunction.CONTACTOR].refused = True
    coil.set(True)
    await rig.until(lambda: coil.fault() is not None, within_s=3.0, what="refusal seen")
    assert not rig.unit.coils[CoilFunction.CONTACTOR].energised


async def test_an_off_after_a_write_that_landed_is_not_held_back_by_an_older_refusal(
    rig: Rig,
) -> None:
    coil = rig.board.coil(CoilFunction.FILL_PUMP)
    relay = rig.board.map.relay_of(CoilFunction.FILL_PUMP)
    pump = rig.unit.coils[CoilFunction.FILL_PUMP]
    coil.set(True)
    await rig.until(lambda: pump.energised, within_s=3.0, what="on")
    rig.emulator.refuse_relay(relay)
    coil.set(False)  # refused: offs to this relay wait out a hold-off ...
    await rig.until(lambda: coil.fault() is not None, within_s=3.0, what="off refused")
    rig.emulator.refuse_relay(relay, on=False)
    coil.set(True)  # ... an on is not held by it, and lands: the board takes the relay again
    await rig.until(lambda: coil.fault() is None, within_s=1.0, what="on landed")
    assert pump.energised
    coil.set(False)  # a trip: the off goes out now, not when the old hold-off ends
    await rig.until(lambda: not pump.energised, within_s=1.0, what="off at once")


async def test_a_relay_that_does_not_follow_its_writes_is_caught_by_the_read_back(
    rig: Rig,
) -> None:
    coil = rig.board.coil(CoilFunction.FILL_PUMP)
    relay = rig.board.map.relay_of(CoilFunction.FILL_PUMP)
    rig.emulator.stick_relay(relay, False)  # writes acknowledged, the relay stays off
    coil.set(True)
    await rig.until(lambda: coil.fault() is not None, within_s=5.0, what="read-back mismatch")
    assert coil.fault() == "reads off though written on"
    rig.emulator.stick_relay(relay, None)
    await rig.until(lambda: coil.fault() is None, within_s=15.0, what="read-back agrees")


async def test_a_relay_whose_writes_are_never_confirmed_is_a_fault_and_the_others_stay_on(
    rig: Rig,
) -> None:
    # Found by a controls engineer: a wrong echo on the heater's flash-on stopped the loop over
    # the relays, so the contactor, agitator and purge lapsed off on the board, the controller
    # still showing them on, with no fault.
    heater = rig.board.heater()
    agitator = rig.board.coil(CoilFunction.AGITATOR)
    purge = rig.board.coil(CoilFunction.PURGE_VALVE)
    for coil in (agitator, purge):
        coil.set(True)
    await rig.until(
        lambda: rig.unit.coils[CoilFunction.PURGE_VALVE].energised, within_s=3.0, what="on"
    )
    rig.emulator.misecho_relay(rig.board.map.relay_of(None))
    heater.pulse(1.0)
    await rig.until(lambda: heater.fault() is not None, within_s=5.0, what="heater's fault")
    assert "not confirmed by the board" in str(heater.fault())
    # Renewed all along, well past their flash-on leases.
    await rig.holds(
        lambda: (
            rig.unit.coils[CoilFunction.AGITATOR].energised
            and rig.unit.coils[CoilFunction.PURGE_VALVE].energised
            and agitator.fault() is None
        ),
        for_s=3 * TIMING.renew_after_s + 12.0,
        what="the other relays renewed",
    )
    rig.emulator.misecho_relay(rig.board.map.relay_of(None), on=False)
    heater.pulse(1.0)
    await rig.until(lambda: heater.fault() is None, within_s=5.0, what="a write lands")


async def test_a_silent_board_is_the_board_lost_not_a_fault_of_each_relay(rig: Rig) -> None:
    agitator = rig.board.coil(CoilFunction.AGITATOR)
    agitator.set(True)
    await rig.until(
        lambda: rig.unit.coils[CoilFunction.AGITATOR].energised, within_s=3.0, what="on"
    )
    rig.emulator.silent(True)
    await rig.until(lambda: not rig.board.estop().latest().good, within_s=10.0, what="inputs stale")
    await rig.clock.sleep(5.0)
    assert agitator.fault() is None


def test_an_input_never_read_is_stamped_at_the_drivers_start_so_it_goes_stale() -> None:
    # Stamped with the time it is asked, an input the board never answered stayed "no reading
    # yet" until the whole board counted as lost, however tight [interlocks] discrete_stale_s.
    config = load_config()
    clock = VirtualClock(start=100.0)
    board = RelayBoard(path="/dev/null-relay", clock=clock, wiring=config.wiring, timing=TIMING)
    stale_s = 1.0  # tighter than the board's lost limit
    assert stale_s < TIMING.lost_after_s
    clock.advance(0.5)
    first = board.estop().latest()
    assert (first.reason, first.at) == (BadReason.NO_READING_YET, 100.0)
    assert awaiting_first(check_discrete(first, now=clock.monotonic(), stale_s=stale_s))
    clock.advance(1.0)
    later = check_discrete(board.estop().latest(), now=clock.monotonic(), stale_s=stale_s)
    assert later.reason is BadReason.STALE
    assert later.problem is not None
    assert "no reading in 1.5 s" in later.problem


async def test_a_relay_refused_for_minutes_is_logged_once_per_address(small_rig: Rig) -> None:
    # The board refuses every write to a missing relay; the driver retries once per renewal
    # interval, and had logged an error each time, for as long as the unit ran.
    rig = small_rig
    with capture_logs() as logs:
        rig.board.coil(CoilFunction.PURGE_VALVE).set(True)
        start = rig.clock.monotonic()
        await rig.holds(lambda: not rig.board.lost, for_s=40.0, what="board not lost")
        assert rig.clock.monotonic() >= start + 40.0
    refused = [e.get("address") for e in logs if e["event"] == "relay_board.exception"]
    assert refused
    assert len(refused) == len(set(refused)), refused


async def test_a_board_that_refuses_the_read_back_makes_every_relays_state_a_fault(
    rig: Rig,
) -> None:
    # Found by a controls engineer: FC01 answered with an exception switched the read-back
    # off with one log line; a relay stuck on would then go unseen.
    agitator = rig.board.coil(CoilFunction.AGITATOR)
    agitator.set(True)
    await rig.until(
        lambda: rig.unit.coils[CoilFunction.AGITATOR].energised, within_s=3.0, what="on"
    )
    rig.emulator.unsupported.add(1)
    await rig.until(lambda: agitator.fault() is not None, within_s=10.0, what="read-back fault")
    assert "refuses the relays' read-back (FC01, exception 1)" in str(agitator.fault())
    assert rig.board.estop().latest().good  # the board is not lost: it answers its polls
    rig.emulator.unsupported.clear()
    await rig.until(lambda: agitator.fault() is None, within_s=10.0, what="read-back again")


async def test_a_relay_whose_writes_go_unanswered_is_a_fault_and_the_others_stay_on(
    rig: Rig,
) -> None:
    # Found by a reviewer of the mis-echo fix: with silence (not a wrong echo) on the heater's
    # writes, the board still answering its polls, every cycle stopped at the heater and the
    # relays after it, the purge among them, were never renewed.
    heater = rig.board.heater()
    agitator = rig.board.coil(CoilFunction.AGITATOR)
    for coil in (agitator, rig.board.coil(CoilFunction.PURGE_VALVE)):
        coil.set(True)
    await rig.until(
        lambda: rig.unit.coils[CoilFunction.PURGE_VALVE].energised, within_s=3.0, what="on"
    )
    rig.emulator.deaf_relays.add(rig.board.map.relay_of(None))
    heater.pulse(1.0)
    await rig.until(lambda: heater.fault() is not None, within_s=15.0, what="heater's fault")
    assert "not confirmed by the board" in str(heater.fault())
    await rig.holds(
        lambda: (
            rig.unit.coils[CoilFunction.AGITATOR].energised
            and rig.unit.coils[CoilFunction.PURGE_VALVE].energised
        ),
        for_s=3 * TIMING.renew_after_s + 12.0,
        what="the other relays renewed",
    )
    rig.emulator.deaf_relays.clear()
    heater.pulse(1.0)
    await rig.until(lambda: heater.fault() is None, within_s=15.0, what="a write lands")
