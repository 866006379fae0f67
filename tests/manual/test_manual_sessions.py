"""Manual mode is one console session's: another may not take it over, end it, or run in it."""

from __future__ import annotations

from typing import Any

from tests.rig import Rig
from unit_controller.control_socket.ops import Operations, Session
from unit_controller.control_socket.protocol import Request


async def _ask(ops: Operations, session: Session, op: str, **args: Any) -> tuple[bool, str]:
    response = await ops.handle(session, Request(id=1, op=op, args=args))
    return response.ok, response.error or ""


async def test_a_second_console_cannot_take_over_end_or_run_the_first_ones_manual_mode() -> None:
    rig = Rig(preload="water")
    await rig.scan()
    ops = rig.operations()
    first, second = Session(user="tech", client="console"), Session(user="b", client="console")
    assert await _ask(ops, first, "manual", on=True) == (True, "")
    assert await _ask(ops, first, "heater", percent=30.0, seconds=600.0) == (True, "")
    await rig.run_for(1.0)
    for op, args in (
        ("manual", {"on": True}),
        ("manual", {"on": False}),
        ("heater", {"percent": 60.0, "seconds": 600.0}),
        ("jog_pump", {"pump": "P-204", "ml": 50.0}),
        ("drain", {"seconds": 60.0}),
        ("unitmode", {"mode": "production"}),
    ):
        ok, error = await _ask(ops, second, op, **args)
        assert not ok, op
        assert "manual mode is on at another console session (console:tech)" in error, error
    # A command manual mode refuses is not told to turn it off, which this session may not.
    ok, error = await _ask(ops, second, "clear")
    assert not ok
    assert "manual mode is on at another console session (console:tech)" in error, error
    assert "stop or abort ends it from here" in error
    assert rig.controller.manual_running() == ["heater at 30 %"]  # the first's run, untouched
    # The second leaving ends nothing; the first leaving ends manual mode.
    await ops.session_closed(second)
    assert rig.controller.manual
    await ops.session_closed(first)
    assert not rig.controller.manual
    # Then it is anyone's to take.
    assert await _ask(ops, second, "manual", on=True) == (True, "")
    # A stop from anywhere still ends every manual action.
    assert await _ask(ops, second, "heater", percent=30.0, seconds=600.0) == (True, "")
    assert (await _ask(ops, first, "heater", percent=30.0, seconds=5.0))[0] is False
    assert await _ask(ops, first, "stop") == (True, "")
    await rig.scan()
    assert rig.controller.manual_running() == []


async def test_a_jog_cut_short_by_another_session_is_told_as_an_event() -> None:
    rig = Rig(preload="water")
    await rig.scan()
    events: list[Any] = []
    rig.controller.listen(events.append)
    ops = rig.operations()
    first, second = Session(user="tech", client="console"), Session(user="b", client="console")
    assert await _ask(ops, first, "manual", on=True) == (True, "")
    assert await _ask(ops, first, "jog_pump", pump="P-204", ml=500.0, cylinder=True) == (True, "")
    await rig.run_for(2.0)
    assert await _ask(ops, second, "stop") == (True, "")
    await rig.run_for(0.5)
    told = [e for e in events if getattr(e, "command", None) == "manual_stopped"]
    assert len(told) == 1
    assert told[0].text.startswith("jog P-204 at ")
    assert told[0].text.endswith("stopped by stop")


async def test_no_batch_starts_while_a_guided_calibration_has_the_probe_in_a_buffer() -> None:
    # Found by a field tech: with one console's `cal ph` waiting on a buffer's reading, a second
    # console's `start smoke` was accepted; the batch dosed on a probe in a beaker.
    rig = Rig()
    await rig.scan()
    ops = rig.operations()
    tech, other = Session(user="tech", client="console"), Session(user="b", client="console")
    # Accepted PackML commands go to the controller itself: through the ops they wait for a
    # scan to say the new state, and nothing scans a rig but the test.
    await rig.controller.command("reset", source="test")
    await rig.run_for(1.0)
    assert await _ask(ops, tech, "cal_ph_probe_out", on=True) == (True, "")
    ok, error = await _ask(ops, other, "start", recipe="smoke")
    assert not ok
    assert "the pH probe AT-101 is out in a buffer for a guided calibration" in error, error
    # Another console may neither take it out too nor put it back for the first.
    assert not (await _ask(ops, other, "cal_ph_probe_out", on=True))[0]
    await _ask(ops, other, "cal_ph_probe_out", on=False)
    assert not (await _ask(ops, other, "start", recipe="smoke"))[0]
    # The calibrating console leaving (a dropped line) puts it back, as `done` would.
    await ops.session_closed(tech)
    await rig.controller.command("start", source="test", recipe="smoke")
    await rig.run_for(1.0)
    # And a probe is not taken out from under a batch.
    ok, error = await _ask(ops, tech, "cal_ph_probe_out", on=True)
    assert not ok
    assert "while a batch is under way" in error, error


async def test_leaving_manual_says_what_it_stopped_where_it_was_asked() -> None:
    # Found by a field tech: `unitmode maintenance` with a heater run on answered only "unit
    # mode maintenance"; the heater and agitator stopped without a word.
    from unit_controller.console.render import render_result
    from unit_controller.console.text import Style

    style = Style(colour=False, utf8=True, bell=False)
    rig = Rig(preload="water")
    await rig.scan()
    ops = rig.operations()
    tech = Session(user="tech", client="console")
    for leave in ({"op": "unitmode", "mode": "maintenance"}, {"op": "manual", "on": False}):
        assert await _ask(ops, tech, "manual", on=True) == (True, "")
        assert await _ask(ops, tech, "heater", percent=30.0, seconds=600.0) == (True, "")
        await rig.run_for(1.0)
        op = str(leave.pop("op"))
        response = await ops.handle(tech, Request(id=2, op=op, args=leave))
        assert response.ok, response.error
        shown = render_result(op, response.result or {}, style)
        assert shown[-1] == "stopped: heater at 30 %", shown
