"""Step 1 of the scan: read every device's newest reading into an immutable ProcessImage.

Qualifies readings once (stale, out of range, frozen) so no later step can use a bad number.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal.board import Board
from hal.devices import Coil, DosingPump, HeaterSsr
from hal.outputs import Outputs
from hal.reading import BadReason, Reading
from unit_controller.config import UnitConfig
from unit_controller.process_image import ProcessImage


@dataclass(slots=True)
class _Flatline:
    """Tracks how long a reading has not changed at all; live instruments always jitter."""

    value: float | None = None
    since: float = 0.0

    def frozen_for(self, reading: Reading[float], now: float) -> float:
        if reading.value != self.value:
            self.value = reading.value
            self.since = now
        return now - self.since


class InputQualifier:
    """Turns raw device readings into qualified ones: stale, out-of-range and frozen are bad."""

    def __init__(self, *, config: UnitConfig) -> None:
        wiring = config.wiring
        self._rtd = wiring.rtd()
        self._ph = wiring.ph_probe()
        self._flatline_s = config.interlocks.flatline_s
        self._discrete_stale_s = config.interlocks.discrete_stale_s
        self._t_flat = _Flatline()
        self._ph_flat = _Flatline()
        self._board: Board | None = None
        self._outputs: tuple[Coil | DosingPump | HeaterSsr, ...] = ()

    def snapshot(self, board: Board, *, now: float, applied: Outputs) -> ProcessImage:
        """The process image for this scan."""
        rtd, probe = self._rtd, self._ph
        temperature = self._qualify(
            board.temperature.latest(),
            now=now,
            stale_s=rtd.stale_s,
            low=rtd.min_c,
            high=rtd.max_c,
            flat=self._t_flat,
            unit="°C",
        )
        ph = self._qualify(
            board.ph.latest(),
            now=now,
            stale_s=probe.stale_s,
            low=probe.min_ph,
            high=probe.max_ph,
            flat=self._ph_flat,
            unit="pH",
        )
        stale_s = self._discrete_stale_s
        levels = {}
        for point, switch in board.levels.items():
            reading = switch.latest()
            levels[point] = (
                _stale_bool(reading, now, stale_s)
                if reading.good and now - reading.at > stale_s
                else reading
            )
        estop = board.estop.latest()
        if estop.good and now - estop.at > stale_s:
            estop = _stale_bool(estop, now, stale_s)
        return ProcessImage(
            now=now,
            temperature=temperature,
            ph=ph,
            levels=levels,
            estop=estop,
            dispensed_ml={tag: pump.dispensed_ml() for tag, pump in board.pumps.items()},
            applied=applied,
            output_faults=self._faults(board),
        )

    def _qualify(
        self,
        reading: Reading[float],
        *,
        now: float,
        stale_s: float,
        low: float,
        high: float,
        flat: _Flatline,
        unit: str,
    ) -> Reading[float]:
        if not reading.good:
            return reading
        value = reading.value
        assert value is not None
        if now - reading.at > stale_s:
            return Reading.bad(
                BadReason.STALE,
                reading.at,
                f"{reading.age(now):.0f} s old, limit {stale_s:g} s",
            )
        if not low <= value <= high:
            return Reading.bad(
                BadReason.ABOVE_RANGE if value > high else BadReason.OUT_OF_RANGE,
                reading.at,
                f"{value:g} {unit}, allowed {low:g}..{high:g}",
            )
        if self._flatline_s and flat.frozen_for(reading, now) > self._flatline_s:
            return Reading.bad(
                BadReason.FROZEN, reading.at, f"unchanged for {self._flatline_s:g} s"
            )
        return reading

    def _faults(self, board: Board) -> dict[str, str]:
        if board is not self._board:
            # The outputs that may refuse, listed once per board (a scan asks each of them).
            self._board = board
            self._outputs = (board.heater, *board.coils.values(), *board.pumps.values())
        faults = {}
        for device in self._outputs:
            why = device.fault()
            if why is not None:
                faults[device.tag] = why
        return faults


def _stale_bool(reading: Reading[bool], now: float, stale_s: float) -> Reading[bool]:
    # Discrete inputs are polled all the time; one not refreshed within its limit is not trusted.
    if reading.good and reading.age(now) > stale_s:
        return Reading.bad(BadReason.STALE, reading.at, f"{reading.age(now):.0f} s old")
    return reading
