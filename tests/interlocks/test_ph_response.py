"""pH not responding: trips on a probe that does not follow dosing, not on steady feed-forward."""

from __future__ import annotations

import math
from collections.abc import Callable

from hal.outputs import Outputs
from unit_controller.interlocks import Force, InterlockContext, Interlocks, SafetyFilter

from . import default_limits, make_image, sim_wiring

PUMP = "P-203"


def _ctx(dosed_ml: float, *, setpoint: float = 11.0, dosing: bool = True) -> InterlockContext:
    return InterlockContext(
        executing=True,
        ph_setpoint=setpoint,
        ph_pump=PUMP,
        ph_raises=True,
        dosed_this_phase_ml={PUMP: dosed_ml},
        dosing=dosing,
        agitator_wanted=True,  # a recipe phase that doses runs the agitator
    )


def _alarm_ids(interlocks: Interlocks, now: float, ph: float, ctx: InterlockContext) -> list[str]:
    return [t.alarm_id for t in interlocks.evaluate(make_image(now, ph=ph), ctx)]


def test_no_trip_during_coprecipitation_with_ph_flat_at_setpoint() -> None:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    dosed = 0.0
    for second in range(0, 5 * 3600, 2):
        dosed += 5.0 * 2 / 60  # feed-forward doses 5 mL/min steadily, pH stays put
        ph = 11.0 + 0.03 * math.sin(second / 60)
        assert _alarm_ids(interlocks, float(second), ph, _ctx(dosed)) == []


def _dose_until_stopped(
    interlocks: Interlocks, ph: Callable[[int], float], limit_ml: float
) -> tuple[float, int, list[str]]:
    """10 mL every 20 s, as the scan would, until an interlock stops dosing."""
    dosed, second = 0.0, 0
    ids: list[str] = []
    while dosed < 2 * limit_ml and not ids:
        dosed += 10.0
        second += 20
        ids = _alarm_ids(interlocks, float(second), ph(second), _ctx(dosed))
    return dosed, second, ids


def test_stops_dosing_at_the_limit_then_trips_when_ph_stays_low() -> None:
    limits = default_limits()
    interlocks = Interlocks(limits=limits, wiring=sim_wiring())
    limit = limits.ph_not_responding_ml
    dosed, second, ids = _dose_until_stopped(interlocks, lambda _: 10.5, limit)  # stuck probe
    # At the limit, not past it: dosing stops while the last doses show (no alarm yet).
    assert ids == ["ph_response_wait"]
    assert limits.ph_not_responding_ml <= dosed <= limits.ph_not_responding_ml + 10
    trips = interlocks.evaluate(make_image(second, ph=10.5), _ctx(dosed))
    assert [(t.forces, t.alarm) for t in trips] == [(frozenset({Force.DOSING}), False)]
    # Nothing goes in meanwhile; 90 s on, still no response: the fault.
    for wait in range(10, 90, 10):
        ids = _alarm_ids(interlocks, second + wait, 10.5, _ctx(dosed, dosing=False))
        assert ids == ["ph_response_wait"], wait
    assert _alarm_ids(interlocks, second + 91, 10.5, _ctx(dosed, dosing=False)) == [
        "ph_not_responding"
    ]


def test_a_response_during_the_wait_lets_dosing_go_on() -> None:
    limits = default_limits()
    interlocks = Interlocks(limits=limits, wiring=sim_wiring())
    limit = limits.ph_not_responding_ml
    dosed, second, ids = _dose_until_stopped(interlocks, lambda _: 10.0, limit)
    assert ids == ["ph_response_wait"]
    # The last doses show: pH rises by more than ph_response while nothing more goes in.
    for wait in range(10, 80, 10):
        ids = _alarm_ids(interlocks, second + wait, 10.0 + wait / 200, _ctx(dosed, dosing=False))
    assert ids == []


def test_a_noisy_reading_is_no_response() -> None:
    limits = default_limits()
    interlocks = Interlocks(limits=limits, wiring=sim_wiring())

    def noisy(second: int) -> float:
        return 10.5 + (0.06 if (second // 20) % 2 else -0.06)  # ±0.06 around a stuck 10.5

    dosed, second, ids = _dose_until_stopped(interlocks, noisy, limits.ph_not_responding_ml)
    assert ids == ["ph_response_wait"]
    for wait in range(20, 120, 20):
        ids = _alarm_ids(interlocks, second + wait, noisy(second + wait), _ctx(dosed, dosing=False))
    assert ids == ["ph_not_responding"]


def test_no_trip_while_ph_follows_dosing_slowly() -> None:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    dosed = 0.0
    for step in range(400):
        dosed += 10.0
        ph = 8.0 + 0.06 * step / 10  # 0.06 pH per 100 mL: slow, but a live probe
        assert _alarm_ids(interlocks, float(step * 20), min(ph, 11.0), _ctx(dosed)) == []


def test_overshoot_past_setpoint_does_not_count_as_not_responding() -> None:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    dosed = 0.0
    for step in range(200):
        dosed += 10.0
        # an overshoot is its own alarm (no reagent to bring it back), never "not responding"
        assert "ph_not_responding" not in _alarm_ids(
            interlocks, float(step * 20), 11.4, _ctx(dosed)
        )


def test_ph_not_responding_forces_dosing_off_and_returns_when_dosing_stops() -> None:
    limits = default_limits()
    interlocks = Interlocks(limits=limits, wiring=sim_wiring())
    dosed = 0.0
    ids: list[str] = []
    now = 0.0
    while not ids:
        dosed += 25.0
        now += 20.0
        ids = _alarm_ids(interlocks, now, 10.0, _ctx(dosed))
    while ids != ["ph_not_responding"]:  # the wait, dosing stopped
        now += 10.0
        ids = _alarm_ids(interlocks, now, 10.0, _ctx(dosed, dosing=False))
    trips = interlocks.evaluate(make_image(now + 1, ph=10.0), _ctx(dosed))
    assert Force.DOSING in trips[0].forces
    desired = Outputs(agitator=True).with_pumps({PUMP: 5.0, "P-205": 2.0})
    out = SafetyFilter().apply(desired, trips=trips, allow_process_outputs=True)
    assert out.pump(PUMP) == 0.0
    assert out.pump("P-205") == 0.0
    assert out.agitator
    # held: nothing dosed any more, so the condition returns (the latch keeps forcing)
    assert _alarm_ids(interlocks, now + 2, 10.0, _ctx(dosed, dosing=False)) == []


def test_phase_may_widen_the_volume_for_neutralising_acid() -> None:
    interlocks = Interlocks(limits=default_limits(), wiring=sim_wiring())
    dosed = 0.0
    for step in range(150):  # 1.5 L of base into a strong acid barely moves pH
        dosed += 10.0
        ctx = InterlockContext(
            executing=True,
            ph_setpoint=4.0,
            ph_pump=PUMP,
            dosed_this_phase_ml={PUMP: dosed},
            dosing=True,
            agitator_wanted=True,
            ph_not_responding_ml=5000.0,
        )
        assert _alarm_ids(interlocks, float(step * 20), 0.8, ctx) == []


async def test_the_ph_loop_counts_no_dose_while_the_wait_stops_dosing() -> None:
    # The wait leaves the batch in Execute; the loop must not book doses the safety filter
    # stopped, or it resumes from reagent that never went in.
    from tests.rig import Rig

    rig = Rig(preload="leach_liquor")
    await rig.start("purify")
    rig.inject("dosing_pump_stall", "P-203")

    def waiting() -> bool:
        return "ph_response_wait" in {t.alarm_id for t in rig.controller.alarms.in_effect()}

    await rig.run_until(lambda _: waiting(), limit_s=4 * 3600)
    loop = rig.controller._controllers.ph_controller
    assert loop is not None
    booked = loop.dosed_ml
    snap = await rig.run_for(60.0)
    assert waiting()
    assert dict(snap.outputs.pumps) == {} or not any(snap.outputs.pumps.values())
    assert loop.dosed_ml == booked
