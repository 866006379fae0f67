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


async def test_status_shows_what_manual_mode_runs_and_why_its_last_action_ended() -> None:
    rig = Rig(preload="water")
    await rig.scan()
    ops = rig.operations()
    await rig.controller.set_manual(True, source="console")
    await rig.controller.manual_heater(30.0, 600.0, source="console")
    await rig.run_for(1.0)
    lines = render_status(ops.status(), PLAIN)
    assert "manual  heater at 30 %" in lines
    rig.inject("estop")
    await rig.run_for(1.0)
    status = ops.status()
    assert status["manual_running"] == []
    lines = render_status(status, PLAIN)
    stopped = " ".join(line.strip() for line in lines if line.startswith(("stopped", "  ")))
    assert stopped.startswith("stopped heater at 30 % stopped by")
    assert "estop (HS-100)" in stopped
    assert all(len(line) <= WIDTH for line in lines)
