"""Step 1 of the scan: read every device's newest reading into an immutable ProcessImage.

Qualifies readings once (stale, out of range, frozen) so no later step can use a bad number.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal.board import Board
from hal.devices import Coil, DosingPump
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

    def snapshot(self, board: Board, *, now: float, applied: Outputs) -> ProcessImage:
        """The process image for this scan."""
        temperature = self._qualify(
            board.temperature.latest(),
            now=now,
            stale_s=self._rtd.stale_s,
            low=self._rtd.min_c,
            high=self._rtd.max_c,
            flat=self._t_flat,
            unit="°C",
        )
        ph = self._qualify(
            board.ph.latest(),
            now=now,
            stale_s=self._ph.stale_s,
            low=self._ph.min_ph,
            high=self._ph.max_ph,
            flat=self._ph_flat,
            unit="pH",
        )
        levels = {
            point: _stale_bool(switch.latest(), now, self._discrete_stale_s)
            for point, switch in board.levels.items()
        }
        return ProcessImage(
            now=now,
            temperature=temperature,
            ph=ph,
            levels=levels,
            estop=_stale_bool(board.estop.latest(), now, self._discrete_stale_s),
            dispensed_ml={tag: pump.dispensed_ml() for tag, pump in board.pumps.items()},
            applied=applied,
            output_faults=_faults(board),
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
        if reading.age(now) > stale_s:
            return Reading.bad(
                BadReason.STALE,
                reading.at,
                f"{reading.age(now):.0f} s old, limit {stale_s:g} s",
            )
        if not low <= value <= high:
            return Reading.bad(
                BadReason.OUT_OF_RANGE, reading.at, f"{value:g} {unit}, allowed {low:g}..{high:g}"
            )
        if self._flatline_s and flat.frozen_for(reading, now) > self._flatline_s:
            return Reading.bad(
                BadReason.FROZEN, reading.at, f"unchanged for {self._flatline_s:g} s"
            )
        return reading


def _faults(board: Board) -> dict[str, str]:
    faults = {}
    devices: list[Coil | DosingPump] = [*board.coils.values(), *board.pumps.values()]
    for device in devices:
        why = device.fault()
        if why is not None:
            faults[device.tag] = why
    return faults


def _stale_bool(reading: Reading[bool], now: float, stale_s: float) -> Reading[bool]:
    # Discrete inputs are polled all the time; one not refreshed within its limit is not trusted.
    if reading.good and reading.age(now) > stale_s:
        return Reading.bad(BadReason.STALE, reading.at, f"{reading.age(now):.0f} s old")
    return reading
