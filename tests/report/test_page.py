"""What a person finds on the batch report's page, scenario by scenario."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest

from tests.report import exports
from tests.report.conftest import Written
from tests.report.exports import HASH, HOSTILE
from unit_controller.report import write_report

Report = Callable[[str], Written]

# Anything a browser would fetch: a src/href/url() out to the network, a stylesheet link,
# an @import, a web font; and a script of any kind.
FETCHES = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|@import|@font-face|<link\b|<script\b|<iframe\b""",
    re.IGNORECASE,
)


@pytest.mark.parametrize("name", ["multi_hour", "heating_only", "interrupted", "hostile"])
def test_the_page_loads_nothing_and_runs_nothing(report: Report, name: str) -> None:
    html = report(name).html
    assert FETCHES.findall(html) == []
    assert "<style>" in html


def test_a_multi_hour_batch_has_one_inline_svg_per_plot_in_page_order(report: Report) -> None:
    html = report("multi_hour").html
    keys = ("temperature", "ph", "ph_near", "heater_duty", "reagents")
    assert html.count("<svg") == len(keys)
    figures = [html.index(f'id="plot-{key}"') for key in keys]
    assert figures == sorted(figures)
    assert "pH near its setpoint, in the pH-controlled phases (±0.3)" in html
    # each figure holds its own svg, and the plots' element ids never collide on the page
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_sections_come_in_the_order_people_read_them(report: Report) -> None:
    html = report("multi_hour").html
    marks = [
        "<header>",
        "<h2>Summary</h2>",
        "<h2>Operator confirmations</h2>",
        "<h2>Phases</h2>",
        "<h2>Trends</h2>",
        "<h2>Alarms</h2>",
        "<h2>Events</h2>",
        "<h2>Commands</h2>",
        "<footer>",
    ]
    at = [html.index(mark) for mark in marks]
    assert at == sorted(at)


def test_the_header_names_unit_batch_recipe_and_its_hash(report: Report) -> None:
    html = report("multi_hour").html
    header = html[html.index("<header>") : html.index("</header>")]
    assert "unit-01" in header
    assert "lab" in header
    assert "Batch 3: coprecipitation" in header
    assert f'title="sha256 {HASH}"' in header  # the full hash on hover
    assert f"sha256 {HASH[:12]}…" in header  # the short one shown
    assert HASH in html[html.index("<footer>") :]  # and in full where a print keeps it
    assert "2024-12-05 12:00:00" in header  # start, UTC in these tests
    assert "2024-12-05 14:37:24" in header  # end
    assert "2 h 37 min" in header
    assert "COMPLETE" in header


def test_the_summary_gives_reagents_by_pump_and_ph_in_band_per_phase(report: Report) -> None:
    html = report("multi_hour").html
    summary = html[html.index("<h2>Summary</h2>") : html.index("<h2>Operator confirmations")]
    assert re.search(r"<td>P-205</td><td>metal_sulfate</td><td class=\"num\">1200\.0</td>", summary)
    assert "<td>P-201</td><td>h2so4</td>" in summary  # wired, not used: shown with 0.0
    assert "pH in band, co_precipitate" in summary
    assert "within ±0.05 of 11.00" in summary
    assert re.search(r"<td>Alarms</td><td class=\"num\">3</td>", summary)


def test_alarms_confirmations_and_commands_are_listed_with_who_and_when(report: Report) -> None:
    html = report("multi_hour").html
    alarms = html[html.index("<h2>Alarms</h2>") : html.index("<h2>Events</h2>")]
    for alarm_id, message in (
        ("ph_overshoot", "pH 11.12 above 11.05"),
        ("ph_reading_bad", "pH probe answered *ER"),
        ("temperature_high", "61.2 °C above 60.0 °C"),
    ):
        assert alarm_id in alarms
        assert message in alarms
    assert ">13:35:00<" in alarms
    assert "+95.0 min" in alarms
    confirmations = html[html.index("<h2>Operator confirmations") : html.index("<h2>Phases")]
    assert "Reactor checked" in confirmations
    assert "console:tech" in confirmations
    assert ">12:01:35<" in confirmations
    commands = html[html.index("<h2>Commands</h2>") :]
    assert "mqtt:bob" in commands
    assert "refused</span>: remote commands act only in remote mode" in commands


def test_the_phases_table_has_times_setpoints_and_stats(report: Report) -> None:
    html = report("multi_hour").html
    phases = html[html.index("<h2>Phases</h2>") : html.index("<h2>Trends</h2>")]
    row = phases[phases.index("<td>co_precipitate</td>") :].split("</tr>")[0]
    assert "2 h 00 min" in row
    assert "58.0 ± 2<" in row
    assert "11.00 ± 0.05" in row
    assert re.search(r"\d+\.\d %", row)  # the phase's pH in band


def test_hostile_text_in_the_export_is_shown_never_run(report: Report) -> None:
    html = report("hostile").html
    assert HOSTILE not in html
    assert "<img" not in html
    assert "<b>acid" not in html
    assert "<i>x" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<title>Batch 3 · {escaped} · unit-01</title>" in html
    assert f"<h1>Batch 3: {escaped} " in html
    events = html[html.index("<h2>Events</h2>") :]
    assert escaped in events
    assert "heat &amp; &lt;hold&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert html.count("<svg") == 5  # mathtext-looking names drew as text, no plot lost


def test_a_heating_only_batch_of_seconds_notes_its_missing_plots(report: Report) -> None:
    html = report("heating_only").html
    assert html.count("<svg") == 2  # temperature and heater duty: no pH, no pH near it
    ph = html[html.index('id="plot-ph"') :].split("</figure>")[0]
    assert "<svg" not in ph
    assert "No pH in this batch" in ph
    reagents = html[html.index('id="plot-reagents"') :].split("</figure>")[0]
    assert "<svg" not in reagents
    assert "No reagent dosed" in reagents
    assert "time from the batch start (seconds)" in html
    assert "+12 s" in html  # the events give seconds, as the plots' axis does
    assert "no pH-controlled phase" in html


def test_an_interrupted_batch_says_so_with_last_record_and_detection(report: Report) -> None:
    html = report("interrupted").html
    header = html[html.index("<header>") : html.index("</header>")]
    assert 'class="state state-interrupted">interrupted<' in header
    assert "<dt>Last record</dt><dd>2024-12-05 12:50:00</dd>" in header
    assert "<dt>Interruption detected</dt><dd>2024-12-05 13:12:00</dd>" in header
    assert "<dt>End</dt>" not in header
    assert "never resumed by itself" in header
    assert "(interrupted)" in html[html.index("<h2>Phases</h2>") :]


def test_a_running_batch_has_no_end_and_counts_so_far(report: Report) -> None:
    html = report("running").html
    header = html[html.index("<header>") : html.index("</header>")]
    assert 'class="state state-running">running<' in header
    assert "running; trend to 2024-12-05 12:40:00" in header
    assert "Duration so far" in header
    assert "(running)" in html[html.index("<h2>Phases</h2>") :]


def test_a_batch_exported_before_its_first_trend_row_notes_every_plot(out: Path) -> None:
    export = exports.running()
    export["trend"]["rows"] = []
    html = write_report(export, out=out, tz=UTC).html.read_text(encoding="utf-8")
    assert "<svg" not in html
    assert "No temperature reading in the trend." in html
    assert "No heater duty in the trend." in html


def test_text_the_unit_did_not_know_shows_as_a_dash(out: Path) -> None:
    export = exports.build_export(
        phases=[
            exports.PhaseSpec("heat", 2.0, 40.0, 1.0),
            exports.PhaseSpec("hold_ph", 2.0, 40.0, 1.0, 9.5, 0.1, rates={"P-201": 1.0}),
        ],
        alarms=(exports.AlarmSpec(1.0, "reading_bad", "AT-101", "high", "stale"),),
    )
    export["pumps"]["P-201"]["reagent"] = None
    export["batch"]["alarms"][0]["message"] = None
    export["batch"]["overshoot_c"] = None
    export["batch"]["ph_band"] = None
    export["confirmations"] = [{"ts": exports.START_TS, "phase": None, "prompt": None, "by": None}]
    html = write_report(export, out=out, tz=UTC).html.read_text(encoding="utf-8")
    assert "<td>P-201</td><td>–</td>" in html
    assert '<span class="pri-HIGH">high</span>' in html  # the unit's own spelling, styled
    assert '<td>Overshoot above setpoint</td><td class="num">–</td>' in html
    assert "within the band of 9.50" in html
    assert 'id="plot-ph_near"' not in html  # no band to zoom on


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [(-0.001, 2, "0.00"), (-0.0, 1, "0.0"), (-0.01, 2, "-0.01"), (-10.0, 0, "-10"), (None, 1, "—")],
)
def test_a_value_that_rounds_to_zero_from_below_is_shown_as_zero(
    value: float | None, digits: int, shown: str
) -> None:
    # The leach's acid_heat showed a pH minimum of "-0.00" (found by a recipe author).
    from unit_controller.report.page import DASH, _num

    assert _num(value, digits) == (DASH if value is None else shown)


def test_the_phases_a_batch_never_ran_are_named_in_its_header(out: Path) -> None:
    export = exports.heating_only()
    export["batch"]["phases_not_run"] = ["ph", "drain"]
    html = write_report(export, out=out).html.read_text(encoding="utf-8")
    header = html[: html.index("</header>")]
    assert "<dt>Phases not run</dt><dd>ph, drain</dd>" in header
    # An export of an earlier release has no such list: none is shown.
    del export["batch"]["phases_not_run"]
    assert "Phases not run" not in write_report(export, out=out).html.read_text(encoding="utf-8")
