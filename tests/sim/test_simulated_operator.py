"""The simulated operator steps in as a person would, and waits (saying why) where a person
would have to: it never ends a simulation with an error."""

from __future__ import annotations

from hal.reading import BadReason, Reading
from hal.wiring import LevelPoint
from tests.rig import Rig
from unit_controller.machine import State
from unit_controller.sim.operator import SimulatedOperator


class _Notes:
    def __init__(self) -> None:
        self.said: list[str] = []

    def note(self, now: float, text: str) -> None:
        self.said.append(text)


async def test_a_latch_held_by_its_unreadable_input_makes_the_operator_wait() -> None:
    # Found by a reviewer: its reset was refused (the latch's own input failed), outside the
    # operator's try: the simulation died with CommandRefused.
    rig = Rig()
    await rig.start("smoke")
    await rig.run_for(60.0)
    rig.inject("level_high_high")
    await rig.run_until(lambda s: s.state is State.HELD, limit_s=60)
    switch = rig.unit.board.levels[LevelPoint.HIGH_HIGH]
    switch.latest = lambda: Reading.bad(  # type: ignore[method-assign]
        BadReason.DEVICE_ERROR, rig.clock.monotonic()
    )
    await rig.run_for(2.0)
    notes = _Notes()
    operator = SimulatedOperator(
        controller=rig.controller,
        clock=rig.clock,
        progress=notes,  # type: ignore[arg-type]
        resume_timeouts=0,
    )
    operator.device_back_at = rig.clock.monotonic() - 1.0
    await operator.act(rig.clock.monotonic())
    assert any("operator waits" in said and "LSHH-101" in said for said in notes.said), notes.said
    assert rig.controller.machine.state is State.HELD
