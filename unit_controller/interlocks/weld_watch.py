"""A welded SSR, seen two ways: a rise with the heater off, or (with the jacket cooling) heat out
that nothing put in. Bounds from the level switches, the jacket and the dosing exotherm.

Never writes outputs; reports a message while a weld is seen.
"""

from __future__ import annotations

import math

from hal.wiring import BoardWiring, CoilFunction, LevelPoint
from unit_controller.config import InterlockLimits
from unit_controller.interlocks.exotherm import ExothermEstimate
from unit_controller.interlocks.heat_balance import HeatBalanceMonitor
from unit_controller.interlocks.welded_detector import WeldedSsrDetector
from unit_controller.process_image import ProcessImage

_WATER_J_KG_K = 4186.0
# Liquor heat capacity per litre (J/L·K) for bounds: water's, the lowest a liquor has per litre
# here is ≈ 4.2 kJ (1.1 kg/L at 3.8 kJ/kg·K).
_LIQUOR_J_L_K = 4180.0
# The jacket removes at least this share of its rated heat (fouling), with water no warmer than
# _COOLING_WATER_MAX_C; the agitator and the vessel count at their most.
_JACKET_AT_LEAST = 0.7
_COOLING_WATER_MAX_C = 25.0
_AGITATOR_AT_MOST_W = 500.0
_VESSEL_AT_MOST_J_K = 60_000.0
# A weld shows as this many seconds of full heater power unaccounted for over the window.
_BALANCE_MARGIN_S = 120.0


class WeldWatch:
    """Judges each scan whether heat is coming from a heater commanded off."""

    def __init__(self, *, limits: InterlockLimits, wiring: BoardWiring) -> None:
        self._exotherm = ExothermEstimate(pumps=wiring.pumps(), release_s=limits.peroxide_release_s)
        self._switch_volumes = sorted(
            (wiring.level_switch(point).at_l, point) for point in LevelPoint
        )
        # The smallest volume the heater may run in: the worst case for a reaction's heat.
        self._min_heated_l = wiring.level_switch(LevelPoint.LOW_LOW).at_l
        # Above the high-high switch the vessel overflows soon: a bound for "at most".
        self._capacity_l = 1.2 * wiring.level_switch(LevelPoint.HIGH_HIGH).at_l
        self._welded = WeldedSsrDetector(
            rise_c=limits.heater_off_rise_c,
            window_s=limits.heater_off_window_s,
            settle_s=limits.heater_off_settle_s,
        )
        # The jacket's heat removal, counted as rise so it cannot hide a welded SSR: a lower
        # bound (flow-limited jacket, the largest volume the level switches allow).
        self._cool_w_k = 0.0
        if wiring.has_coil(CoilFunction.COOLING_VALVE):
            jacket = wiring.coil(CoilFunction.COOLING_VALVE)
            water_w_k = jacket.flow_l_min / 60.0 * _WATER_J_KG_K
            self._cool_w_k = water_w_k * (1.0 - math.exp(-jacket.ua_w_k / water_w_k))
        self._heater_w = wiring.heater().power_w
        self._balance = HeatBalanceMonitor(
            window_s=limits.heater_off_window_s, margin_j=_BALANCE_MARGIN_S * self._heater_w
        )

    def charged(self, kg: float) -> None:
        """Black mass went in (a confirmed charge): its heat is a reaction, not a weld."""
        self._exotherm.charged(kg)

    def update(self, image: ProcessImage, temperature_c: float | None) -> str | None:
        """Why the heater looks welded now, or None."""
        applied = image.applied
        self._exotherm.update(
            now=image.now, ml_min=applied.pumps, volume_l=self._volume_at_least_l(image)
        )
        # A weld is a rise with the heater off and the contactor closed (else no SSR can heat)
        # beyond what dosing explains (acid dilution, peroxide, a charge): judge the rest.
        t = temperature_c
        unexplained = None if t is None else t - self._exotherm.explained_c
        heat_source = applied.heater_on_s > 0.0 or not applied.contactor
        welded = self._welded.update(
            now=image.now, temperature_c=unexplained, heater_on=heat_source
        )
        if welded is None and self._cool_w_k > 0.0:
            welded = self._balance_check(image, t)
        return welded

    def _balance_check(self, image: ProcessImage, t: float | None) -> str | None:
        """Jacket cooling hides a welded SSR: look for heat out that nothing put in."""
        applied = image.applied
        if not applied.contactor:
            self._balance.reset()  # no SSR can heat with the contactor open
            return None
        removed = 0.0
        if applied.cooling_valve and t is not None:
            removed = _JACKET_AT_LEAST * self._cool_w_k * max(0.0, t - _COOLING_WATER_MAX_C)
        # the heater as commanded (its on-time this scan at full power), at most
        supplied = self._heater_w if applied.heater_on_s > 0.0 else 0.0
        supplied += _AGITATOR_AT_MOST_W + self._exotherm.releasing_w
        volume = self._volume_at_most_l(image)
        return self._balance.update(
            now=image.now,
            temperature_c=t,
            removed_w=removed,
            supplied_w=supplied,
            capacity_j_k=volume * _LIQUOR_J_L_K + _VESSEL_AT_MOST_J_K,
        )

    def _volume_at_most_l(self, image: ProcessImage) -> float:
        """The most liquid the level switches allow (the lowest dry switch's volume)."""
        levels = image.levels
        for at_l, point in self._switch_volumes:
            reading = levels[point]  # as `image.wet(point)`, asked every scan
            if reading.good and reading.value is False:
                return at_l
        return self._capacity_l

    def _volume_at_least_l(self, image: ProcessImage) -> float:
        """The least liquid the level switches allow (the highest wet switch's volume)."""
        volume = self._min_heated_l
        levels = image.levels
        for at_l, point in self._switch_volumes:
            reading = levels[point]  # as `image.wet(point)`, asked every scan
            if reading.good and reading.value:
                volume = at_l
        return volume
