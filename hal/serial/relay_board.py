"""Driver for the Modbus RTU relay/IO board: coils, heater SSR and discrete inputs of one unit.

One asyncio task owns the bus; device views never block. Every energised output is a timed
flash-on the board ends by itself, so a hung controller leaves nothing on for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import cast

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsRequest, ReadDiscreteInputsRequest

from hal.clock import Clock
from hal.devices import Coil, DigitalInput, HeaterSsr
from hal.log import Repeats, get_logger
from hal.reading import BadReason, Reading
from hal.serial.modbus_frames import (
    COIL_OFF,
    FLASH_BASE,
    FLASH_UNIT_S,
    Estop,
    Output,
    RelayBoardBadResponse,
    RelayBoardError,
    RelayBoardExceptionResponse,
    RelayBoardMap,
    RelayBoardTimeout,
    RelayBoardTiming,
    WriteCoilValue,
    flash_units,
)
from hal.serial.reconnect import Backoff, PortReopener, within
from hal.serial.relay_channels import (
    UNCONFIRMED_WRITES_FAULT,
    CoilView,
    HeaterView,
    InputView,
    RelayChannel,
)
from hal.wiring import BoardWiring, CoilFunction, LevelPoint

log = get_logger(__name__)

# pymodbus drops bytes it cannot frame and the request times out: to the driver, line noise
# and silence look alike.
_NO_FRAME = "no valid frame (silent, or line noise)"
_BUS_COMPLAINTS = ("relay_board.timeout", "relay_board.bad_response")
# Read-backs (FC01) in a row the board refuses before every relay's state is a fault: one is a
# glitch, three are a board that will not tell.
READBACK_REFUSALS_FAULT = 3
READBACK_REFUSED = "the board refuses the relays' read-back"
_Execute = Callable[[bool, ModbusPDU], Awaitable[ModbusPDU]]
# pymodbus waits this long in real time; the driver's own Clock-based timeout always ends first.
_PYMODBUS_TIMEOUT_S = 60.0


class RelayBoard:
    """The relay/IO board on one serial port; `run()` is the task that owns the bus."""

    def __init__(
        self,
        *,
        path: str,
        clock: Clock,
        wiring: BoardWiring,
        slave: int = 1,
        baudrate: int = 9600,
        timing: RelayBoardTiming | None = None,
    ) -> None:
        self.path = path
        self.clock = clock
        self.slave = slave
        self.timing = t = timing or RelayBoardTiming()
        self.map = RelayBoardMap.from_wiring(wiring)
        self._baudrate = baudrate
        self._reopener = PortReopener(
            path=path,
            opener=self._open_client,
            clock=clock,
            log_prefix="relay_board",
            tag=self.map.tags[None],
            backoff=Backoff(initial_s=t.reopen_min_s, max_s=t.reopen_max_s),
        )
        leases = {function: wiring.coil(function).lease_s for function in wiring.coil_functions()}
        self._channels = {
            output: RelayChannel(
                output=output,
                relay=relay,
                tag=self.map.tags[output],
                lease_s=t.coil_lease_s if output is None else leases[output],
            )
            for relay, output in self.map.relays.items()
        }
        if any(c.lease_s <= t.renew_after_s for c in self._channels.values()):
            raise ValueError(
                f"every coil's lease_s must be above renew_after_s ({t.renew_after_s})"
            )
        self._input_count = max(self.map.inputs) + 1
        self._inputs: dict[int, Reading[bool]] = {}
        self._last_ok = self._started = clock.monotonic()
        self._readback_refused = 0  # read-backs in a row the board refused
        # What the last failed request looked like: a lost board's readings say which.
        self._failure = _NO_FRAME
        # A refused or silent relay logs once every few minutes while it goes on, not each try.
        self._repeats = Repeats()
        self._read_back_at = clock.monotonic()
        self._lost = False
        self._client: AsyncModbusSerialClient | None = None
        self._wake = asyncio.Event()

    # -- device views (non-blocking) -------------------------------------------------------

    def coil(self, function: CoilFunction) -> Coil:
        """The coil that drives `function`."""
        return CoilView(self, function, self.map.tags[function])

    def heater(self) -> HeaterSsr:
        """The heater SSR."""
        return HeaterView(self, self.map.tags[None])

    def input(self, tag_or_role: str) -> DigitalInput:
        """A discrete input by tag (`LSHH-101`), level point (`high_high`) or `estop`."""
        for number, role in self.map.inputs.items():
            if tag_or_role in (role, self.map.tags[role]):
                return InputView(self, number, self.map.tags[role])
        raise KeyError(f"no discrete input {tag_or_role!r} on the relay board")

    def coils(self) -> dict[CoilFunction, Coil]:
        """Every coil by function (for `hal.board.Board`)."""
        functions = [o for o in self.map.relays.values() if isinstance(o, CoilFunction)]
        return {function: self.coil(function) for function in functions}

    def levels(self) -> dict[LevelPoint, DigitalInput]:
        """Every level switch by point (for `hal.board.Board`)."""
        return {point: self.input(point) for point in LevelPoint}

    def estop(self) -> DigitalInput:
        """The E-stop input."""
        return self.input(Estop.ESTOP)

    @property
    def lost(self) -> bool:
        """True once no valid answer has come for longer than the lost limit."""
        return self.clock.monotonic() - self._last_ok > self.timing.lost_after_s

    def want(self, output: Output, until: float) -> None:
        """Keep `output` on until `until` (inf: while renewed; <= now: off); written soon."""
        channel = self._channels[output]
        channel.want_until = until
        now = self.clock.monotonic()
        if channel.off_due(now) or self._on_due(channel, now):
            self._wake.set()  # written at once, not at the next poll

    def fault_of(self, output: Output) -> str | None:
        """Why the relay of `output` may not hold what it was told, or None."""
        return self._channels[output].fault

    def reading(self, number: int) -> Reading[bool]:
        """Discrete input `number` as last polled, or a bad reading once the board is lost
        (stamped with its last valid answer)."""
        now = self.clock.monotonic()
        silent_s = now - self._last_ok
        if silent_s > self.timing.lost_after_s:
            port = self._reopener.lost_reason
            cause = f"port not open ({port})" if port is not None else self._failure
            return Reading.bad(
                BadReason.DEVICE_LOST,
                self._last_ok,
                f"no valid answer for {silent_s:.1f} s (its limit {self.timing.lost_after_s:g} s):"
                f" {cause}",
            )
        # Stamped when the driver began waiting for it, so an input never read goes stale.
        return self._inputs.get(number) or Reading.bad(BadReason.NO_READING_YET, self._started)

    # -- the bus task ----------------------------------------------------------------------

    async def run(self) -> None:
        """Own the bus until cancelled: write outputs, poll inputs, reopen a vanished port."""
        try:
            while True:
                try:
                    await self._ensure_open()
                    self._wake.clear()
                    if not self._lost:
                        await self._write_outputs()
                    await self._poll_inputs()
                    now = self.clock.monotonic()
                    if not self._lost and now >= self._read_back_at:
                        self._read_back_at = now + self.timing.readback_period_s
                        await self._read_back()
                except Exception:
                    # A bug must not end the bus task quietly: inputs would freeze as "good"
                    # until stale. Log it, start over on a fresh port.
                    log.exception("relay_board.cycle_crashed", path=self.path)
                    if self._client is not None:
                        self._client.close()
                        self._client = None
                self._note_health()
                await self._idle(self.timing.poll_period_s)
        finally:
            # A cancelled task is also how a hung controller looks: write nothing, the leases
            # run out in the board.
            if self._client is not None:
                self._client.close()
                self._client = None

    async def _ensure_open(self) -> None:
        if self._client is not None and self._client.connected:
            return
        if self._client is not None:
            self._reopener.lost("the port closed (unplugged or read error)")
            self._client.close()
            self._client = None
        self._forget_board()
        opening = asyncio.ensure_future(self._reopener.open())
        try:
            while True:
                # Keep judging the board while the port is away, so `device.lost` is logged on
                # time and not only when the port comes back.
                self._note_health()
                with contextlib.suppress(TimeoutError):
                    self._client = await within(
                        self.clock, self.timing.poll_period_s, asyncio.shield(opening)
                    )
                    return
        finally:
            opening.cancel()

    async def _open_client(self) -> AsyncModbusSerialClient:
        client = AsyncModbusSerialClient(
            self.path,
            baudrate=self._baudrate,
            timeout=_PYMODBUS_TIMEOUT_S,
            retries=0,  # the driver retries with its own limits and Clock
            reconnect_delay=0,  # and reopens the port itself, with backoff
            name=f"relay_board:{self.path}",
        )
        client.register(WriteCoilValue)
        if not await client.connect():
            client.close()
            raise OSError(f"cannot open {self.path}")
        return client

    def _forget_board(self) -> None:
        # Whatever the board held is unknown now: write the whole desired state once it answers.
        for channel in self._channels.values():
            channel.hw_until = None

    def _note_health(self) -> None:
        lost = self.lost
        if lost and not self._lost:
            self._forget_board()
            log.error(
                "device.lost",
                device="relay_board",
                path=self.path,
                tags=sorted(self.map.tags.values()),
                silent_s=round(self.clock.monotonic() - self._last_ok, 1),
            )
        elif not lost and self._lost:
            log.info("device.recovered", device="relay_board", path=self.path)
        self._lost = lost

    async def _idle(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    # -- outputs ---------------------------------------------------------------------------

    def _on_due(self, channel: RelayChannel, now: float) -> bool:
        return channel.on_due(
            now,
            renew_after_s=self.timing.renew_after_s,
            heater_tolerance_s=self.timing.heater_tolerance_s,
        )

    async def _write_outputs(self) -> None:
        now = self.clock.monotonic()
        offs = [c for c in self._channels.values() if c.off_due(now)]
        # Contactor first when opening, so a welded SSR is cut before anything else.
        offs.sort(key=lambda c: c.output is not CoilFunction.CONTACTOR)
        ons = [c for c in self._channels.values() if c not in offs]
        for channel in offs + ons:
            now = self.clock.monotonic()
            if now < channel.unconfirmed_until:
                continue  # faulted (writes never confirmed): tried again after its hold-off
            if channel in offs:
                address, value, hw = channel.relay, COIL_OFF, -math.inf
            elif self._on_due(channel, now):
                units = flash_units(min(channel.want_until, now + channel.lease_s) - now)
                address, value, hw = FLASH_BASE + channel.relay, units, now + units * FLASH_UNIT_S
            else:
                continue
            try:
                await self._write(channel, address=address, value=value, hw=hw)
            except RelayBoardExceptionResponse as exc:
                # The board refuses this channel (a wiring error): don't hammer it every cycle.
                channel.refused_until = now + self.timing.renew_after_s
                channel.refused_on = channel not in offs
                channel.refused = f"the board refused the write (exception {exc.exception_code})"
            except RelayBoardBadResponse:
                # The board answered, wrongly: the bus is alive, so the other relays are still
                # written (a bad echo on one left the others' leases to lapse on the board).
                continue
            except RelayBoardError:
                if channel.unconfirmed >= UNCONFIRMED_WRITES_FAULT:
                    # Silent to this relay only (the board answers its polls): faulted now,
                    # so the rest are written; it is tried again after a hold-off.
                    channel.unconfirmed_until = now + self.timing.renew_after_s
                    continue
                return  # the bus is failing: leave the rest for the next cycle, poll first

    async def _write(self, channel: RelayChannel, *, address: int, value: int, hw: float) -> None:
        request = WriteCoilValue(address=address, value=value, dev_id=self.slave)

        def check(response: ModbusPDU) -> None:
            if not (
                isinstance(response, WriteCoilValue)
                and (response.address, response.value) == (address, value)
            ):
                raise RelayBoardBadResponse(f"write 0x{address:04X}={value}: echo was {response}")

        try:
            await self._exchange(request, check)
        except RelayBoardExceptionResponse:
            channel.hw_until = None
            raise
        except RelayBoardError as exc:
            channel.hw_until = None
            # A wrong echo is the board answering; silence counts only if the board answered
            # something since (a dead bus is the board lost, not each relay's fault).
            if isinstance(exc, RelayBoardBadResponse) or self._last_ok > channel.failed_at:
                channel.unconfirmed += 1
                channel.unconfirmed_why = str(exc)[:160]
            channel.failed_at = self.clock.monotonic()
            raise
        channel.hw_until, channel.written_at, channel.refused = hw, self.clock.monotonic(), None
        channel.unconfirmed, channel.unconfirmed_until = 0, -math.inf
        # A write landed: the board takes this relay again, so no earlier refusal holds back the
        # next write (an off a trip wants above all).
        channel.refused_until = -math.inf

    async def _read_back(self) -> None:
        """Read the relays' states (FC01) and judge each settled channel against its write."""
        count = max(c.relay for c in self._channels.values()) + 1
        request = ReadCoilsRequest(address=0, count=count, dev_id=self.slave)
        try:
            bits = await self._read_bits(request, refusal_raises=True)
        except RelayBoardExceptionResponse as exc:
            # The board answers, but not this: a relay that stopped following its writes would
            # go unseen, so after a few in a row every relay's state is said unknown.
            self._readback_refused += 1
            if self._readback_refused >= READBACK_REFUSALS_FAULT:
                for channel in self._channels.values():
                    channel.disagrees = (
                        f"{READBACK_REFUSED} (FC01, exception {exc.exception_code}): whether the "
                        "relay follows its writes is unknown"
                    )
            return
        if bits is None:
            return  # a failing bus is judged by the inputs going stale
        if self._readback_refused:
            self._readback_refused = 0
            for channel in self._channels.values():
                if channel.disagrees is not None and channel.disagrees.startswith(READBACK_REFUSED):
                    channel.disagrees = None
        now, settle = self.clock.monotonic(), self.timing.readback_settle_s
        for channel in self._channels.values():
            hw = channel.hw_until
            if hw is None or now - channel.written_at < settle or abs(hw - now) < settle:
                continue  # unknown, just written, or about to time out: not judged now
            written, held = hw > now, bits[channel.relay]
            channel.disagrees = (
                None
                if held == written
                else f"reads {'on' if held else 'off'} though written {'on' if written else 'off'}"
            )

    # -- inputs ----------------------------------------------------------------------------

    async def _poll_inputs(self) -> None:
        request = ReadDiscreteInputsRequest(address=0, count=self._input_count, dev_id=self.slave)
        bits = await self._read_bits(request)
        if bits is None:
            return  # the last readings go stale; past the lost limit they read bad
        at = self.clock.monotonic()
        self._inputs = {n: Reading.ok(bits[n], at) for n in self.map.inputs}

    async def _read_bits(
        self, request: ModbusPDU, *, refusal_raises: bool = False
    ) -> list[bool] | None:
        """The bits a read (FC01 relays, FC02 inputs) answers, or None when the bus fails (or
        the board refuses it, unless `refusal_raises`)."""
        code, count = request.function_code, request.count

        def check(response: ModbusPDU) -> None:
            if response.function_code != code or len(response.bits) < count:
                raise RelayBoardBadResponse(f"read {count} bits (FC{code:02}): got {response}")

        try:
            response = await self._exchange(request, check)
        except RelayBoardExceptionResponse:
            if refusal_raises:
                raise
            return None
        except RelayBoardError:
            return None
        return [bool(bit) for bit in response.bits[:count]]

    # -- one checked request ---------------------------------------------------------------

    async def _exchange(self, request: ModbusPDU, check: Callable[[ModbusPDU], None]) -> ModbusPDU:
        """Send `request`, retrying timeouts and bad answers up to the limit."""
        error: RelayBoardError = RelayBoardTimeout("port not open")
        for attempt in range(self.timing.retries + 1):
            client = self._client
            if client is None or not client.connected:
                break
            try:
                response = await self._execute(client, request)
                if response.isError():
                    # A definite answer: the board is alive, but the request was wrong.
                    self._last_ok = self.clock.monotonic()
                    raise RelayBoardExceptionResponse(
                        function_code=request.function_code,
                        exception_code=response.exception_code,
                    )
                check(response)
            except RelayBoardExceptionResponse as exc:
                if (more := self._due("relay_board.exception", request)) is not None:
                    log.error(
                        "relay_board.exception",
                        path=self.path,
                        address=request.address,
                        error=str(exc),
                        **more,
                    )
                raise
            except RelayBoardTimeout as exc:
                error = exc
                self._failure = (
                    f"{_NO_FRAME}; asked as slave {self.slave} at {self._baudrate} baud: the "
                    "board's address and speed?"
                )
                if (more := self._due("relay_board.timeout", request)) is not None:
                    log.warning(
                        "relay_board.timeout",
                        path=self.path,
                        address=request.address,
                        n=attempt + 1,
                        **more,
                    )
            except RelayBoardError as exc:
                error = exc
                self._failure = "garbled answers"
                if (more := self._due("relay_board.bad_response", request)) is not None:
                    log.warning("relay_board.bad_response", path=self.path, error=str(exc), **more)
            else:
                self._last_ok = self.clock.monotonic()
                if self._repeats:
                    # The bus answers again; a refusal is over once that relay takes a write.
                    self._repeats.forget(events=_BUS_COMPLAINTS)
                    self._repeats.forget(subject=(request.function_code, request.address))
                return response
            # RTU has no transaction id: let a late answer arrive (and be dropped, nothing is
            # pending) before the next request, or it would pass as that request's answer.
            await self.clock.sleep(self.timing.timeout_s / 2)
        raise error

    def _due(self, event: str, request: ModbusPDU) -> dict[str, int] | None:
        subject = (request.function_code, request.address)  # a read and a write differ
        return self._repeats.due(event, subject, self.clock.monotonic())

    async def _execute(self, client: AsyncModbusSerialClient, request: ModbusPDU) -> ModbusPDU:
        # pymodbus leaves the client's `execute` unannotated; its contract is this signature.
        execute = cast(_Execute, client.execute)
        try:
            return await within(self.clock, self.timing.timeout_s, execute(False, request))
        except TimeoutError:
            raise RelayBoardTimeout(f"no answer within {self.timing.timeout_s} s") from None
        except ModbusException as exc:
            raise RelayBoardTimeout(f"no answer: {exc}") from exc
