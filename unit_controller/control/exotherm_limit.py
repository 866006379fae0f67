"""How fast exothermic reagents may go in: within the heat the unit can take away (DESIGN §4).

The heat the unit loses at its setpoint is what the heater (minus the jacket) and the reactions
supply on average; doses may release a share of it (plus the jacket's spare capacity where the
phase may cool), so the heater keeps authority. Peroxide waiting to decompose counts against
the budget before it releases its heat. If the temperature still runs above the setpoint with
the heater off, the allowance shrinks until it stops. Pure arithmetic; never reads a clock.
"""

from __future__ import annotations

import math

# Averages of the heat supplied take this long to follow a change (s).
LOAD_AVERAGE_S = 300.0
# Above the setpoint by this much (°C) with the heater idle, the allowance shrinks.
HOT_MARGIN_C = 0.5
# The allowance shrinks at this rate per °C over the margin, and recovers at RECOVER_PER_S.
SHRINK_PER_C_S = 1.0 / 120.0
RECOVER_PER_S = 1.0 / 600.0
# Pending heat (J/s at the release rate) beyond this multiple of the budget stops new doses.
PENDING_CEILING = 1.25
# Doses may always release this share of the heater's power: a few mL of acid warm a batch by
# a fraction of a degree, and a batch held below where its agitator alone would keep it can
# still be dosed, slowly. The allowance still shrinks it when the doses are what heats.
FLOOR_SHARE = 0.025


class ExothermicDoseLimit:
    """The heat budget (W) for exothermic doses, and each reagent's rate limit from it."""

    def __init__(self, *, heater_w: float, share: float, release_s: float) -> None:
        self._heater_w = heater_w
        self._floor_w = FLOOR_SHARE * heater_w
        self._share = share
        self._release_s = max(release_s, 1e-6)
        self._supplied_w: float | None = None
        self._allowance = 1.0
        self._budget_w = math.inf
        self._pending_w = 0.0
        self._at: float | None = None

    @property
    def budget_w(self) -> float:
        """Heat (W) exothermic doses may release now."""
        return self._budget_w * self._allowance

    @property
    def allowance(self) -> float:
        """0..1: how much of the budget the temperature lets the doses use."""
        return self._allowance

    def reset(self) -> None:
        """Forget the averages (a new phase or a hold)."""
        self._supplied_w = None
        self._allowance = 1.0
        self._budget_w = math.inf
        self._at = None

    def update(
        self,
        *,
        now: float,
        temperature_c: float,
        setpoint_c: float,
        heater_duty: float,
        cooling_w: float,
        cooling_spare_w: float,
        released_w: float,
        pending_j: float,
    ) -> float:
        """Advance with this scan's figures; returns the budget (W) for exothermic doses.

        `heater_duty` is the heater's share of full power now; `cooling_w` what the jacket takes
        now and `cooling_spare_w` what it could take more (0 where the phase may not cool).
        """
        dt = 0.0 if self._at is None else max(0.0, now - self._at)
        self._at = now
        supplied = self._heater_w * max(0.0, heater_duty) - cooling_w + released_w
        if self._supplied_w is None:
            self._supplied_w = supplied
        elif dt > 0.0:
            self._supplied_w += (supplied - self._supplied_w) * (
                1.0 - math.exp(-dt / LOAD_AVERAGE_S)
            )
        load = max(0.0, self._supplied_w)
        self._budget_w = max(self._floor_w, self._share * (load + max(0.0, cooling_spare_w)))
        self._pending_w = pending_j / self._release_s
        over = temperature_c - setpoint_c - HOT_MARGIN_C
        dosing_heats = released_w + self._pending_w > 1.5 * self._floor_w
        if over > 0.0 and heater_duty <= 0.02 and cooling_spare_w <= 0.0 and dosing_heats:
            self._allowance = max(0.0, self._allowance - over * SHRINK_PER_C_S * dt)
        elif temperature_c < setpoint_c + 0.2:
            self._allowance = min(1.0, self._allowance + RECOVER_PER_S * dt)
        return self.budget_w

    def limit_ml_min(self, *, immediate_j_ml: float, delayed_j_ml: float) -> float:
        """Most mL/min of a reagent releasing these heats per mL (inf: none)."""
        per_ml = immediate_j_ml + delayed_j_ml
        if per_ml <= 0.0:
            return math.inf
        budget = self.budget_w
        if not math.isfinite(budget):
            return math.inf
        fade = 1.0
        if delayed_j_ml > 0.0 and budget > 0.0:
            # Peroxide already waiting to decompose will release its heat whatever we do now.
            fade = min(
                1.0, max(0.0, (PENDING_CEILING * budget - self._pending_w) / (0.25 * budget))
            )
        return max(0.0, budget * fade / per_ml * 60.0)
