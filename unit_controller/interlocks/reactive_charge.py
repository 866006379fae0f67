"""Whether the reactor may hold acid or reactive liquor: the N2 purge's safe state then is open.

DESIGN §5: safe is per output, not "everything off". Aluminium and acid go on making H2 after an
abort, so the nitrogen blanket that dilutes it stays while there may be such a charge.
"""

from __future__ import annotations

from hal.outputs import Outputs
from hal.wiring import BoardWiring, CoilFunction, LevelPoint, Reagent
from unit_controller.process_image import ProcessImage

# Reagents that make the charge reactive: acid (H2 with aluminium), peroxide (O2, heat).
_REACTIVE = frozenset({Reagent.H2SO4, Reagent.H2O2})


class ReactiveCharge:
    """Set by a blanketed phase, a dose of acid or peroxide, or a recipe that starts on a
    liquor; cleared once the reactor is empty: the low-low and low switches both read dry and
    the drain has then been open `heel_drain_s` (what lies below the low-low switch, up to its
    `at_l`, still makes gas). A charge only assumed at start (nothing known) clears on the
    switches alone, unless they read liquor first."""

    def __init__(
        self,
        *,
        wiring: BoardWiring,
        charged: bool = False,
        heel_drain_s: float = 0.0,
        assumed: bool = False,
    ) -> None:
        self._reactive_pumps = frozenset(
            tag for tag, pump in wiring.pumps().items() if pump.reagent in _REACTIVE
        )
        self._drain_tag = wiring.coil_tag(CoilFunction.DRAIN_VALVE)  # a coil every unit has
        self.charged = charged
        self._heel_drain_s = heel_drain_s
        self._assumed = charged and assumed
        self._drained_s = 0.0  # drain open with both switches dry, since they last read wet
        self.blanket_kept = False  # charged before the batch under way started: see batch_starts
        self._last_now: float | None = None

    def update(
        self,
        *,
        applied: Outputs,
        image: ProcessImage,
        in_process: bool,
        into_cylinder: frozenset[str] = frozenset(),
    ) -> None:
        """After a scan's outputs: what they and the level say about the reactor now.
        `into_cylinder`: pumps jogging into a measuring cylinder, which charge nothing."""
        now, last = image.now, self._last_now
        self._last_now = now
        # Both switches must say dry for "empty": dry is the safe reading for the heater, not
        # for the blanket, and a low-low switch stuck dry under a wet low switch
        # (low_low_suspect) must not close the purge on acid. Unknown counts as wet.
        dry = image.wet(LevelPoint.LOW_LOW) is False and image.wet(LevelPoint.LOW) is False
        if self._dosing_reactive(applied, into_cylinder):
            self._charge_anew()
            return
        if in_process and applied.purge_valve and not dry:
            # A blanketed phase over liquor; over a heel being drained it adds nothing.
            self._charge_anew()
        if not self.charged:
            return
        if image.wet(LevelPoint.LOW_LOW) is True or image.wet(LevelPoint.LOW) is True:
            # Liquor seen: a charge assumed at a first start is one to drain like any other.
            self._assumed = False
        if not dry:
            self._drained_s = 0.0
            return
        if self._assumed:
            self.charged = self.blanket_kept = False
            return
        # Only a drain that obeys empties the heel: one commanded open whose coil the board
        # refuses, or reads back otherwise (output_fault), drains nothing.
        if applied.drain_valve and last is not None and self._drain_tag not in image.output_faults:
            self._drained_s += max(0.0, now - last)
        if self._drained_s >= self._heel_drain_s:
            self.charged = self.blanket_kept = False

    def _charge_anew(self) -> None:
        self.charged = True
        self._assumed = False
        self._drained_s = 0.0

    def holds_liquor(self) -> None:
        """A recipe starts on a liquor from an earlier step (leach liquor: acid, maybe with
        aluminium left in it): reactive until the reactor is empty."""
        self._charge_anew()

    def batch_starts(self) -> None:
        """A batch starts: whether the reactor was charged before it (what a stopped leach
        left, acid over aluminium; a charge kept across a restart) is its to keep blanketed,
        whatever the recipe asks (`blanket_kept`)."""
        self.blanket_kept = self.charged

    def _dosing_reactive(self, applied: Outputs, into_cylinder: frozenset[str]) -> bool:
        pumps = applied.pumps
        if not pumps:
            return False
        return any(
            pumps.get(tag, 0.0) > 0.0 and tag not in into_cylinder for tag in self._reactive_pumps
        )


def purge_fitted(wiring: BoardWiring) -> bool:
    """The unit has an N2 purge valve."""
    return wiring.has_coil(CoilFunction.PURGE_VALVE)
