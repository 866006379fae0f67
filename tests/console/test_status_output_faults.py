"""`status` tells commanded outputs from ones that do not obey: a refused relay is named."""

from __future__ import annotations

from hal.wiring import CoilFunction
from tests.rig import Rig
from unit_controller.console.render import render_status
from unit_controller.console.text import WIDTH, Style

PLAIN = Style(colour=False, utf8=True)


async def test_a_relay_the_board_refuses_is_named_beside_the_outputs_commanded() -> None:
    rig = Rig()
    ops = rig.operations()
    await rig.run_for(2.0)
    status = ops.status()
    assert status["output_faults"] == {}
    assert not any(line.startswith("faults") for line in render_status(status, PLAIN))

    rig.unit.coils[CoilFunction.PURGE_VALVE].refused = True
    await rig.run_for(2.0)
    status = ops.status()
    tag = rig.config.wiring.coil_tag(CoilFunction.PURGE_VALVE)
    assert status["output_faults"] == {tag: "the board refuses writes to this relay"}
    lines = render_status(status, PLAIN)
    faults = [line for line in lines if line.startswith("faults")]
    assert faults == [f"faults  not obeying: {tag} the board refuses writes to this relay"]
    assert all(len(line) <= WIDTH for line in lines)

    rig.unit.coils[CoilFunction.PURGE_VALVE].refused = False
    await rig.run_for(2.0)
    assert ops.status()["output_faults"] == {}
