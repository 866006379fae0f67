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
    liquor; cleared once the reactor is empty (the low-low and low switches both read dry)."""

    def __init__(self, *, wiring: BoardWiring, charged: bool = False) -> None:
        self._reactive_pumps = frozenset(
            tag for tag, pump in wiring.pumps().items() if pump.reagent in _REACTIVE
        )
        self.charged = charged

    def update(self, *, applied: Outputs, image: ProcessImage, in_process: bool) -> None:
        """After a scan's outputs: what they and the level say about the reactor now."""
        if (in_process and applied.purge_valve) or self._dosing_reactive(applied):
            self.charged = True
        elif image.wet(LevelPoint.LOW_LOW) is False and image.wet(LevelPoint.LOW) is False:
            # Empty: nothing left to make gas. Both switches must say so: dry is the safe
            # reading for the heater, not for the blanket, and a low-low switch stuck dry under
            # a wet low switch (low_low_suspect) must not close the purge on acid.
            self.charged = False

    def holds_liquor(self) -> None:
        """A recipe starts on a liquor from an earlier step (leach liquor: acid, maybe with
        aluminium left in it): reactive until the reactor is empty."""
        self.charged = True

    def _dosing_reactive(self, applied: Outputs) -> bool:
        pumps = applied.pumps
        if not pumps:
            return False
        return any(pumps.get(tag, 0.0) > 0.0 for tag in self._reactive_pumps)


def purge_fitted(wiring: BoardWiring) -> bool:
    """The unit has an N2 purge valve."""
    return wiring.has_coil(CoilFunction.PURGE_VALVE)
