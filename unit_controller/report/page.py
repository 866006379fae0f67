"""The batch report as one self-contained HTML page: header, summary, phases, plots, lists.

Every text taken from the export is escaped here (a recipe or event text may hold markup);
the page loads nothing: inline CSS, inline SVG, no script, no font, no link out.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Iterable, Sequence

from unit_controller import __version__
from unit_controller.report.export import FORMAT, BatchExport, Phase
from unit_controller.report.plot import Plot
from unit_controller.report.series import MAX_POINTS
from unit_controller.report.times import TimeAxis, duration

DASH = "–"
SHORT_HASH = 12

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: #1d1d1d; background: #fff; max-width: 1100px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 24px; margin: 4px 0 10px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #d8dde3; }
h3 { font-size: 15px; margin: 18px 0 4px; }
.kicker { color: #5a6470; margin: 0; font-size: 13px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr));
  gap: 6px 20px; margin: 8px 0; }
.facts div { border-left: 3px solid #d8dde3; padding-left: 8px; }
.facts dt { color: #5a6470; font-size: 12px; }
.facts dd { margin: 0; font-weight: 600; }
code, .hash { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
.hash { border-bottom: 1px dotted #5a6470; cursor: help; font-weight: 400; white-space: nowrap; }
.state { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 14px;
  vertical-align: middle; color: #fff; background: #5a6470; }
.state-COMPLETE { background: #1a7f37; }
.state-ABORTED { background: #c00000; }
.state-STOPPED, .state-HELD, .state-SUSPENDED, .state-interrupted { background: #b35900; }
.state-running { background: #0b5cad; }
.banner { border-left: 4px solid #b35900; background: #fff4e5; padding: 8px 12px; margin: 10px 0; }
.note { color: #5a6470; font-size: 13px; margin: 4px 0; }
.summary { display: flex; flex-wrap: wrap; gap: 24px; }
.summary > div { flex: 1 1 420px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 4px 0 12px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e6ea;
  vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
tbody tr:nth-child(even) { background: #f6f8fa; }
th.fit { width: 1%; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.when { white-space: nowrap; font-variant-numeric: tabular-nums; }
.pri-HIGH, .pri-URGENT, .pri-CRITICAL, .refused { color: #c00000; font-weight: 600; }
.pri-MEDIUM { color: #b35900; font-weight: 600; }
figure { margin: 8px 0 18px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { font-weight: 600; margin-bottom: 2px; }
footer { margin-top: 32px; color: #5a6470; font-size: 12px; border-top: 1px solid #e3e6ea;
  padding-top: 8px; }
@media print {
  body { max-width: none; margin: 0; font-size: 12px; }
  figure, tr, .facts div { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  .hash { border: 0; }
}
"""


class Html(str):
    """Markup made here, already escaped: a table cell that is an Html is not escaped again."""


def e(text: str) -> Html:
    """Text from the export, escaped for HTML text and attribute values."""
    return Html(html.escape(text, quote=True))


def render_page(batch: BatchExport, axis: TimeAxis, plots: Sequence[Plot]) -> str:
    """The whole page as text."""
    title = f"Batch {batch.batch_id} · {batch.recipe} · {batch.unit_id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        _header(batch, axis),
        _summary(batch),
        _people_and_phases(batch, axis),
        _trends(batch, plots),
        _lists(batch, axis),
        _footer(batch),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _header(batch: BatchExport, axis: TimeAxis) -> str:
    state = batch.final_state or "running"
    where = f"unit {batch.unit_id}" + (f" · site {batch.site}" if batch.site else "")
    short = batch.recipe_sha256[:SHORT_HASH]
    facts: list[tuple[str, Html]] = [
        ("Unit", e(batch.unit_id + (f" at {batch.site}" if batch.site else ""))),
        (
            "Recipe",
            Html(
                f'{e(batch.recipe)} <span class="hash" title="sha256 {e(batch.recipe_sha256)}">'
                f"sha256 {e(short)}…</span>"
            ),
        ),
        ("Start", e(axis.datetime(batch.start_ts))),
    ]
    banner = ""
    if batch.interrupted:
        last = batch.end_ts if batch.end_ts is not None else batch.last_ts
        facts.append(("Last record", e(axis.datetime(last))))
        if batch.detected_ts is not None:
            facts.append(("Interruption detected", e(axis.datetime(batch.detected_ts))))
        facts.append(("Duration to the last record", e(duration(last - batch.start_ts))))
        found = (
            f" The restart found it at {axis.datetime(batch.detected_ts)}."
            if batch.detected_ts is not None
            else ""
        )
        banner = (
            '<p class="banner"><b>Interrupted.</b> The controller stopped during this batch'
            " (a crash or a power loss); what is shown ends at its last record."
            f"{e(found)} An interrupted batch is never resumed by itself: a tech at the unit"
            " resets it.</p>"
        )
    elif batch.end_ts is None:
        facts.append(("End", e(f"{DASH} (running; trend to {axis.datetime(batch.last_ts)})")))
        facts.append(("Duration so far", e(duration(batch.last_ts - batch.start_ts))))
    else:
        facts.append(("End", e(axis.datetime(batch.end_ts))))
        facts.append(("Duration", e(duration(batch.end_ts - batch.start_ts))))
    facts.append(("Final state", e(state)))
    if batch.phases_not_run:
        facts.append(("Phases not run", e(", ".join(batch.phases_not_run))))
    cells = "".join(f"<div><dt>{e(k)}</dt><dd>{v}</dd></div>" for k, v in facts)
    return (
        "<header>\n"
        f'<p class="kicker">Batch report · {e(where)}</p>\n'
        f"<h1>Batch {batch.batch_id}: {e(batch.recipe)} "
        f'<span class="state state-{e(state)}">{e(state)}</span></h1>\n'
        f'<dl class="facts">{cells}</dl>\n'
        f"{banner}"
        f'<p class="note">Times are local date-times ({e(axis.zone())}) on the unit\'s clock.'
        f" Plots and lists also give time from the batch start ({e(_axis_unit(axis))}).</p>\n"
        "</header>"
    )


def _summary(batch: BatchExport) -> str:
    by_tag = {p.tag: p for p in batch.pumps}
    tags = sorted(set(by_tag) | set(batch.reagents_ml))
    reagents = _table(
        ["Pump", "Reagent", "Dosed (mL)"],
        [
            [
                tag,
                by_tag[tag].reagent if tag in by_tag else "(not wired)",
                _num(batch.reagents_ml.get(tag, 0.0), 1),
            ]
            for tag in tags
        ],
        numeric={2},
        empty="No dosing pump on this unit.",
    )
    figures: list[list[str | Html | None]] = [
        ["Max temperature", _num(batch.max_temperature_c, 1, " °C")],
        ["Overshoot above setpoint", _num(batch.overshoot_c, 1, " °C")],
        ["Alarms", str(len(batch.alarms))],
    ]
    setpoints = {p.name: p.ph_sp for p in batch.phases}
    for name, fraction in batch.ph_in_band_fraction.items():
        sp = setpoints.get(name)
        band = "the band" if batch.ph_band is None else f"±{batch.ph_band:g}"
        band += f" of {sp:.2f}" if sp is not None else ""
        value = Html(f'{_pct(fraction)} <span class="note">within {e(band)}</span>')
        figures.append([f"pH in band, {name}", value])
    if not batch.ph_in_band_fraction:
        figures.append(["pH in band", "no pH-controlled phase"])
    key_figures = _table(["What", "Value"], figures, numeric={1}, empty="")
    return (
        '<section>\n<h2>Summary</h2>\n<div class="summary">\n'
        f"<div><h3>Key figures</h3>{key_figures}</div>\n"
        f"<div><h3>Reagents</h3>{reagents}</div>\n"
        "</div>\n</section>"
    )


def _people_and_phases(batch: BatchExport, axis: TimeAxis) -> str:
    confirmations = _table(
        ["Time", "From start", "Phase", "Prompt", "Confirmed by"],
        [
            [_when(axis, c.ts), _from_start(axis, c.ts), c.phase, c.prompt, c.by]
            for c in batch.confirmations
        ],
        numeric={1},
        wide=3,
        empty="No operator confirmation in this batch.",
    )
    phases = _table(
        [
            "Phase",
            "Start",
            "End",
            "Duration",
            "T setpoint (°C)",
            "pH setpoint",
            "T min / mean / max (°C)",
            "pH min / mean / max",
            "pH in band",
        ],
        [_phase_row(batch, axis, p) for p in batch.phases],
        numeric={3, 4, 5, 6, 7, 8},
        empty="No phase ran.",
    )
    return (
        "<section>\n<h2>Operator confirmations</h2>\n"
        f"{confirmations}\n</section>\n"
        f"<section>\n<h2>Phases</h2>\n{phases}\n</section>"
    )


def _phase_row(batch: BatchExport, axis: TimeAxis, p: Phase) -> list[str | Html | None]:
    if p.end_ts is None:  # the batch's last phase, running or cut short
        how = "running" if batch.running else batch.final_state or "running"
        end: str | Html = f"{DASH} ({how})"
        so_far = duration(batch.last_ts - p.start_ts)
        took = f"{so_far} so far" if batch.running else f"{so_far} to the last record"
    else:
        end = _when(axis, p.end_ts)
        took = duration(p.end_ts - p.start_ts)
    return [
        p.name,
        _when(axis, p.start_ts),
        end,
        took,
        _setpoint(p.temperature_sp_c, p.temperature_tolerance_c, 1),
        _setpoint(p.ph_sp, p.ph_tolerance, 2),
        _triple(p.t_min, p.t_mean, p.t_max, 1),
        _triple(p.ph_min, p.ph_mean, p.ph_max, 2),
        _pct(p.ph_in_band_fraction),
    ]


def _trends(batch: BatchExport, plots: Sequence[Plot]) -> str:
    out = ["<section>", "<h2>Trends</h2>"]
    if len(batch.trend.ts) > MAX_POINTS:
        out.append(
            f'<p class="note">{len(batch.trend.ts)} trend rows; each curve is drawn from at most'
            f" {MAX_POINTS} points, keeping the lowest and highest reading of each interval"
            " and every gap.</p>"
        )
    out.append(
        '<p class="note">Grey lines: phase starts; red dashed lines under a triangle: alarms.'
        " A gap in a curve is a bad or missing reading.</p>"
    )
    for plot in plots:
        out.append(f'<figure id="plot-{e(plot.key)}">')
        out.append(f"<figcaption>{e(plot.title)}</figcaption>")
        if plot.svg is not None:
            out.append(plot.svg)
        if plot.note is not None:
            out.append(f'<p class="note">{e(plot.note)}</p>')
        out.append("</figure>")
    out.append("</section>")
    return "\n".join(out)


def _lists(batch: BatchExport, axis: TimeAxis) -> str:
    alarms = _table(
        ["Time", "From start", "Priority", "Alarm", "Tag", "Message"],
        [
            [
                _when(axis, a.ts),
                _from_start(axis, a.ts),
                _priority(a.priority),
                a.id,
                # A tag is one word: never broken at its hyphen (AT-/101).
                Html(f'<span class="when">{e(a.tag)}</span>') if a.tag else None,
                a.message,
            ]
            for a in sorted(batch.alarms, key=lambda a: a.ts)
        ],
        numeric={1},
        wide=5,
        empty="No alarm in this batch.",
    )
    events = _table(
        ["Time", "From start", "Kind", "Text"],
        [
            [_when(axis, ev.ts), _from_start(axis, ev.ts), ev.kind, ev.text]
            for ev in sorted(batch.events, key=lambda ev: ev.ts)
        ],
        numeric={1},
        wide=3,
        empty="No event in this batch.",
    )
    commands = _table(
        ["Time", "From start", "Source", "Command", "Result"],
        [
            [
                _when(axis, c.ts),
                _from_start(axis, c.ts),
                c.source,
                c.command,
                Html("ok")
                if c.ok
                else Html(f'<span class="refused">refused</span>{e(_error(c.error))}'),
            ]
            for c in sorted(batch.commands, key=lambda c: c.ts)
        ],
        numeric={1},
        wide=4,
        empty="No command in this batch.",
    )
    return (
        f"<section>\n<h2>Alarms</h2>\n{alarms}\n</section>\n"
        f"<section>\n<h2>Events</h2>\n{events}\n</section>\n"
        f"<section>\n<h2>Commands</h2>\n{commands}\n</section>"
    )


def _footer(batch: BatchExport) -> str:
    return (
        f"<footer>Made by unit-controller {e(__version__)} from a {e(FORMAT)} export of"
        f" unit {e(batch.unit_id)}. Recipe {e(batch.recipe)}, sha256"
        f" <code>{e(batch.recipe_sha256)}</code>.</footer>"
    )


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str | Html | None]],
    *,
    numeric: Collection[int] = (),
    wide: int | None = None,
    empty: str,
) -> Html:
    """A table with a header row; plain text cells are escaped, Html cells kept. With `wide`,
    that column takes the room left and the others are as narrow as their contents."""
    num = ' class="num"'
    body = []
    for row in rows:
        cells = "".join(
            f"<td{num if i in numeric else ''}>{_cell(v)}</td>" for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        return Html(f'<p class="note">{e(empty)}</p>')
    head = "".join(
        f"<th{_classes(i in numeric, wide not in (None, i))}>{e(h)}</th>"
        for i, h in enumerate(headers)
    )
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _classes(num: bool, fit: bool) -> str:
    names = " ".join(n for n, on in (("num", num), ("fit", fit)) if on)
    return f' class="{names}"' if names else ""


def _cell(value: str | Html | None) -> str:
    if value is None:
        return DASH
    return value if isinstance(value, Html) else e(value)


def _priority(priority: str | None) -> Html:
    if priority is None:
        return Html(DASH)
    return Html(f'<span class="pri-{e(priority.upper())}">{e(priority)}</span>')


def _when(axis: TimeAxis, ts: int) -> Html:
    return Html(f'<span class="when" title="{e(axis.datetime(ts))}">{e(axis.moment(ts))}</span>')


def _from_start(axis: TimeAxis, ts: int) -> str:
    return axis.elapsed(ts)


def _axis_unit(axis: TimeAxis) -> str:
    return "seconds" if axis.unit == "s" else "minutes"


def _error(error: str | None) -> str:
    return f": {error}" if error else ""


def _num(value: float | None, digits: int, unit: str = "") -> str:
    if value is None:
        return DASH
    text = f"{value:.{digits}f}"
    # A value that rounds to zero from below is zero, not "-0.00" (a probe reading -0.001).
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]
    return f"{text}{unit}"


def _pct(fraction: float | None) -> str:
    return DASH if fraction is None else f"{100 * fraction:.1f} %"


def _setpoint(sp: float | None, tolerance: float | None, digits: int) -> str:
    if sp is None:
        return DASH
    if tolerance is None:
        return f"{sp:.{digits}f}"
    return f"{sp:.{digits}f} ± {tolerance:g}"


def _triple(lo: float | None, mean: float | None, hi: float | None, digits: int) -> str:
    if lo is None and mean is None and hi is None:
        return DASH
    return " / ".join(_num(v, digits) for v in (lo, mean, hi))
