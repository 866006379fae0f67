"""The fleet view's model and table, fed messages by hand: no broker, no clock but the test's."""

from __future__ import annotations

import json
from typing import Any

from unit_controller.fleet.render import render
from unit_controller.fleet.view import FleetView, lag_figures

ROOT = "fleet/v2"
WALL = 1_767_225_600.0


def _telemetry(**fields: Any) -> bytes:
    base = {
        "ts": int(WALL * 1000),
        "state": "EXECUTE",
        "phase": "leach",
        "phase_no": 2,
        "phase_count": 5,
        "phase_elapsed_s": 125.0,
        "recipe": "leach",
        "temperature_c": 60.04,
        "ph": 1.5123,
        "unit_mode": "production",
        "authority": "remote",
        "outbox_backlog": 0,
    }
    return json.dumps(base | fields).encode()


def _alarms(*priorities: str) -> bytes:
    return json.dumps(
        {
            "ts": 0,
            "alarms": [
                {"id": f"a-{p}", "tag": "TT-101", "priority": p, "state": "unack_active",
                 "message": f"{p} alarm"}
                for p in priorities
            ],
        }
    ).encode()  # fmt: skip


def _feed(view: FleetView, unit: str, leaf: str, payload: bytes, at: float = 0.0) -> None:
    view.ingest(f"{ROOT}/{unit}/{leaf}", payload, now=at, wall=WALL + 0.25)


def test_a_unit_is_its_status_birth_telemetry_and_alarms() -> None:
    view = FleetView(ROOT)
    _feed(view, "u1", "status", b"online")
    _feed(view, "u1", "birth", json.dumps({"site": "north", "version": "1.2"}).encode())
    _feed(view, "u1", "telemetry", _telemetry(), at=10.0)
    _feed(view, "u1", "alarms", _alarms("low", "critical"))
    [unit] = view.snapshot(now=12.5)
    assert unit["unit"] == "u1"
    assert unit["online"] is True
    assert unit["state"] == "EXECUTE"
    assert unit["phase"] == "leach"
    assert unit["temperature_c"] == 60.04
    assert unit["ph"] == 1.512
    assert unit["age_s"] == 2.5
    assert unit["site"] == "north"
    assert [a["priority"] for a in unit["alarms"]] == ["critical", "low"]  # most urgent first
    assert lag_figures(list(view.lags_s))["max_s"] == 0.25


def test_a_unit_online_that_sends_no_telemetry_goes_stale_as_one_that_stopped() -> None:
    view = FleetView(ROOT)
    _feed(view, "mute", "status", b"online", at=100.0)
    _feed(view, "mute", "birth", json.dumps({"telemetry_period_s": 2.0}).encode(), at=100.0)
    assert view.rows(now=105.0)[0].stale is False  # three periods (6 s) to report
    mute = view.rows(now=106.5)[0]
    assert (mute.online, mute.stale, mute.age_s) == (True, True, None)
    # Back from an outage: a period or three to report before its old telemetry makes it stale.
    _feed(view, "back", "status", b"online", at=0.0)
    _feed(view, "back", "telemetry", _telemetry(), at=1.0)
    _feed(view, "back", "status", b"offline", at=50.0)
    _feed(view, "back", "status", b"online", at=100.0)
    back = next(r for r in view.rows(now=101.0) if r.unit == "back")
    assert (back.online, back.stale) == (True, False)
    assert next(r for r in view.rows(now=104.0) if r.unit == "back").stale is True
    assert "2 online, 0 offline, 2 stale" in render(view.rows(now=106.5), title="b").splitlines()[0]


def test_alarms_come_first_then_offline_and_stale_units_then_the_rest() -> None:
    view = FleetView(ROOT)
    for unit in ("a-quiet", "b-offline", "c-high", "d-critical", "e-stale"):
        _feed(view, unit, "status", b"offline" if unit == "b-offline" else b"online")
        _feed(view, unit, "telemetry", _telemetry(), at=0.0 if unit == "e-stale" else 9.0)
    _feed(view, "c-high", "alarms", _alarms("high"))
    _feed(view, "d-critical", "alarms", _alarms("low", "critical"))
    rows = view.rows(now=10.0)
    assert [r.unit for r in rows] == ["d-critical", "c-high", "b-offline", "e-stale", "a-quiet"]
    assert [r.stale for r in rows] == [False, False, False, True, False]


def test_garbage_on_any_topic_is_counted_and_changes_nothing() -> None:
    view = FleetView(ROOT)
    _feed(view, "u1", "status", b"online")
    _feed(view, "u1", "telemetry", _telemetry(), at=1.0)
    before = view.snapshot(now=2.0)
    for leaf, payload in (
        ("telemetry", b"{not json"),
        ("telemetry", b"[1, 2]"),
        ("telemetry", b"[" * 100_000),
        ("alarms", b'{"alarms": 3}'),
        ("alarms", b'{"ts": 1}'),
        ("birth", b"\xff\xfe"),
        # A period no unit's config allows would keep a silent unit from ever going stale.
        ("birth", b'{"telemetry_period_s": 1e308}'),
        ("birth", b'{"telemetry_period_s": "x"}'),
        ("birth", b'{"telemetry_period_s": -5}'),
        ("birth", b'{"telemetry_period_s": null}'),
        ("status", b"maybe"),
        ("status", b"\xff"),
    ):
        _feed(view, "u1", leaf, payload)
    view.ingest("elsewhere/u1/status", b"online", now=0.0, wall=WALL)
    view.ingest(f"{ROOT}//status", b"online", now=0.0, wall=WALL)
    view.ingest(f"{ROOT}/u1/events", b"{}", now=0.0, wall=WALL)
    assert view.rejected == 15
    assert view.snapshot(now=2.0) == before
    # Values of the wrong type show as unknown, not as the wrong thing.
    _feed(view, "u1", "telemetry", _telemetry(temperature_c="hot", ph=True, state=7), at=1.5)
    [unit] = view.snapshot(now=2.0)
    assert (unit["temperature_c"], unit["ph"], unit["state"]) == (None, None, None)


def test_a_unit_whose_retained_topics_are_cleared_leaves_the_view() -> None:
    view = FleetView(ROOT)
    _feed(view, "old", "status", b"offline")
    _feed(view, "old", "birth", b'{"site": "x"}')
    _feed(view, "old", "birth", b"")
    assert [r.unit for r in view.rows(now=0.0)] == ["old"]
    _feed(view, "old", "status", b"")
    assert view.rows(now=0.0) == []
    _feed(view, "never", "status", b"")  # clearing a unit never seen adds nothing
    assert view.rows(now=0.0) == []


def test_a_unit_sending_telemetry_with_its_status_cleared_is_online() -> None:
    view = FleetView(ROOT)
    _feed(view, "u1", "status", b"online")
    _feed(view, "u1", "telemetry", _telemetry(), at=1.0)
    _feed(view, "u1", "status", b"")
    _feed(view, "u1", "birth", b"")
    _feed(view, "u1", "telemetry", _telemetry(), at=2.0)
    [row] = view.rows(now=2.5)
    assert row.online
    assert not row.stale
    # Once its telemetry stops too, nothing says it is there.
    [row] = view.rows(now=60.0)
    assert not row.online


def test_what_a_unit_publishes_is_drawn_as_text_never_as_terminal_commands() -> None:
    view = FleetView(ROOT)
    _feed(view, "gx3", "status", b"online")
    alarm = {"id": "\x1b[2J\x1b[31mPWNED", "tag": "t", "priority": "high", "state": "unack_active"}
    _feed(view, "gx3", "alarms", json.dumps({"ts": 1, "alarms": [alarm]}).encode())
    table = render(view.rows(now=0.0), title="broker")
    assert "\x1b" not in table
    assert "HIGH ?[2J?[31mPWNED" in table


def test_the_table_puts_each_unit_on_a_line_and_fits_a_short_terminal() -> None:
    view = FleetView(ROOT)
    for n in range(30):
        _feed(view, f"u{n:02d}", "status", b"online")
        _feed(view, f"u{n:02d}", "telemetry", _telemetry(), at=5.0)
    _feed(view, "u17", "alarms", _alarms("high", "low"))
    _feed(view, "u03", "status", b"offline")
    table = render(view.rows(now=6.0), title="broker", height=12).splitlines()
    assert table[0] == "broker: 30 unit(s), 29 online, 1 offline, 0 stale, 1 with alarms"
    assert table[1].split()[:3] == ["UNIT", "LINK", "STATE"]
    assert table[2].startswith("u17 ")
    assert "HIGH a-high +1" in table[2]
    assert "leach 2/5 2m" in table[2]
    assert table[3].startswith("u03 ")
    assert "OFFLINE" in table[3]
    assert len(table) == 12
    assert table[-1] == "… 21 more (alarms and offline units come first)"
    assert len(render(view.rows(now=6.0), title="broker").splitlines()) == 32
