"""The report's plots against time: temperature, pH, heater duty and reagents, as SVG and PNG.

The only module that imports matplotlib, and only its Figure with the Agg canvas: never
pyplot, never a GUI backend, no global state changed (rcParams only in a context).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Annotation
from matplotlib.typing import RcKeyType

from unit_controller.report.export import REAGENT_PREFIX, REAGENT_SUFFIX, BatchExport, Phase
from unit_controller.report.labels import Flag, arrange
from unit_controller.report.plot import Plot
from unit_controller.report.series import Series, has_values, steps, thinned
from unit_controller.report.times import TimeAxis

# Every plot has the same width and margins, so their time axes line up down the page.
WIDTH_IN = 11.0
LEFT_IN = 0.8
RIGHT_IN = 0.3
AXES_IN = 2.4
BOTTOM_IN = 0.5  # tick labels and the x label
LEGEND_ROW_IN = 0.24
STRIP_ROW_PT = 11.0  # a row of phase and alarm labels above the axes
STRIP_ROWS = 5  # labels that find no room within these rows are left off
FLAG_BASE_PT = 3.0  # the lowest row's baseline above the axes
FLAG_GAP_PT = 2.0  # between a pole and its text
FLAG_TEXT_PT = 8.0  # a pole reaches this far above its row's baseline
PNG_DPI = 150
FEW_POINTS = 120  # a curve of at most this many points marks each one
PH_NEAR = 0.3  # the pH-near-setpoint plot shows this much either side of the setpoints
PH_NEAR_SPREAD = 1.0  # setpoints further apart than this get no zoomed plot

ALARM = "#c00000"
ALARM_DASH = (0, (4, 3))
PHASE = "#555555"
SETPOINT = "#222222"
PH_BAND_STYLE: dict[str, Any] = {"color": "#92c5de", "alpha": 0.45, "lw": 0}
REAGENT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
RC: dict[RcKeyType, Any] = {
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.6,
    "svg.fonttype": "path",  # glyphs as paths: the same look in every browser, no font needed
    "svg.hashsalt": "unit-controller-report",  # the same export gives the same file
}


Maker = Callable[[Axes], list[Artist] | str]


def draw_plots(batch: BatchExport, axis: TimeAxis, *, png: bool) -> list[Plot]:
    """The plots of a batch, in page order: temperature, pH (and pH near its setpoint, when
    the batch held pH), heater duty, reagents."""
    whole = _x_range(batch, axis)
    plots: list[tuple[str, str, Maker, tuple[float, float]]] = [
        ("temperature", "Temperature", lambda ax: _temperature(ax, batch, axis), whole),
        ("ph", "pH", lambda ax: _ph(ax, batch, axis), whole),
    ]
    near = _ph_near_span(batch)
    if near is not None:
        title = f"pH near its setpoint, in the pH-controlled phases (±{PH_NEAR:g})"
        span = (axis.x(near[0]), axis.x(near[1]))
        plots.append(("ph_near", title, lambda ax: _ph_near(ax, batch, axis, near), span))
    plots += [
        ("heater_duty", "Heater duty", lambda ax: _duty(ax, batch, axis), whole),
        ("reagents", "Reagents dosed", lambda ax: _reagents(ax, batch, axis), whole),
    ]
    with mpl.rc_context(RC):
        return [_plot(key, title, make, batch, axis, x, png=png) for key, title, make, x in plots]


def _plot(
    key: str,
    title: str,
    make: Maker,
    batch: BatchExport,
    axis: TimeAxis,
    x_range: tuple[float, float],
    *,
    png: bool,
) -> Plot:
    fig = Figure(figsize=(WIDTH_IN, 4.0), dpi=100)
    FigureCanvasAgg(fig)  # measuring the labels needs a renderer; Agg draws off-screen
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    drawn = make(ax)
    if isinstance(drawn, str):
        return Plot(key=key, title=title, svg=None, png=None, note=drawn)
    handles = drawn + _marks(ax, batch, axis, x_range)
    ax.set_xlabel(axis.label)
    ax.set_xlim(*x_range)
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=min(len(handles), 6),
        frameon=False,
        fontsize=8,
    )
    legend_rows = math.ceil(len(handles) / min(len(handles), 6))
    left_off = _lay_out(fig, ax, _labels(batch, axis, x_range), legend_rows=legend_rows)
    note = None
    if left_off:
        note = (
            f"{left_off} label{'s' if left_off > 1 else ''} left off this plot for room;"
            " the lists below have every phase and alarm."
        )
    return Plot(
        key=key,
        title=title,
        svg=_svg(fig, key),
        png=_png(fig) if png else None,
        note=note,
    )


def _temperature(ax: Axes, batch: BatchExport, axis: TimeAxis) -> list[Artist] | str:
    trend = batch.trend
    values = trend.column("temperature_c")
    setpoints = trend.column("temperature_sp_c")
    if not has_values(values) and not has_values(setpoints):
        return "No temperature reading in the trend."
    handles: list[Artist] = []
    band = None
    for phase in batch.phases:
        if phase.temperature_sp_c is None or phase.temperature_tolerance_c is None:
            continue
        x0, x1 = _phase_span(phase, batch, axis)
        sp, tol = phase.temperature_sp_c, phase.temperature_tolerance_c
        band = ax.fill_between((x0, x1), sp - tol, sp + tol, color="#fdb863", alpha=0.35, lw=0)
    if band is not None:
        handles.append(Patch(color="#fdb863", alpha=0.35, label="setpoint ± phase tolerance"))
    if setpoints is not None and has_values(setpoints):
        s = steps(trend.ts, setpoints, axis=axis)
        (line,) = ax.plot(s.x, s.y, drawstyle="steps-post", color=SETPOINT, lw=1.0, ls="--")
        line.set_label("setpoint")
        handles.append(line)
    if values is not None and has_values(values):
        s = thinned(trend.ts, values, axis=axis)
        (line,) = _curve(ax, s, color="#e08214", lw=1.3, label="temperature")
        handles.insert(0, line)
    ax.set_ylabel("temperature (°C)")
    return handles


def _ph(ax: Axes, batch: BatchExport, axis: TimeAxis) -> list[Artist] | str:
    trend = batch.trend
    if not has_values(trend.column("ph")) and not has_values(trend.column("ph_sp")):
        return "No pH in this batch: no reading and no setpoint in the trend."
    handles = _ph_lines(ax, batch, axis, trend.ts, trend.column("ph"), trend.column("ph_sp"))
    ax.set_ylabel("pH")
    return handles


def _ph_near(
    ax: Axes, batch: BatchExport, axis: TimeAxis, span: tuple[int, int]
) -> list[Artist] | str:
    """pH against the band where it was held: the whole-batch plot's scale (pH 7 to 11, say)
    makes a ±0.05 band a hairline."""
    trend = batch.trend
    inside = [i for i, t in enumerate(trend.ts) if span[0] <= t <= span[1]]
    ts = [trend.ts[i] for i in inside]
    values, setpoints = trend.column("ph"), trend.column("ph_sp")
    near = [values[i] for i in inside] if values is not None else None
    near_sp = [setpoints[i] for i in inside] if setpoints is not None else None
    if not has_values(near):
        return "No pH reading in the pH-controlled phases."
    handles = _ph_lines(ax, batch, axis, ts, near, near_sp)
    sps = [p.ph_sp for p in batch.phases if p.ph_sp is not None]
    ax.set_ylim(min(sps) - PH_NEAR, max(sps) + PH_NEAR)
    ax.set_ylabel("pH")
    return handles


def _ph_lines(
    ax: Axes,
    batch: BatchExport,
    axis: TimeAxis,
    ts: Sequence[int],
    values: Sequence[float | None] | None,
    setpoints: Sequence[float | None] | None,
) -> list[Artist]:
    """The band of each pH-controlled phase, the setpoint's steps and the readings."""
    handles: list[Artist] = []
    band = batch.ph_band
    shaded = False
    for phase in batch.phases:
        if phase.ph_sp is None or band is None:
            continue
        x0, x1 = _phase_span(phase, batch, axis)
        ax.fill_between((x0, x1), phase.ph_sp - band, phase.ph_sp + band, **PH_BAND_STYLE)
        shaded = True
    if shaded:
        handles.append(Patch(label=f"setpoint ± {band:g} (the band)", **PH_BAND_STYLE))
    if setpoints is not None and has_values(setpoints):
        s = steps(ts, setpoints, axis=axis)
        (line,) = ax.plot(s.x, s.y, drawstyle="steps-post", color=SETPOINT, lw=1.0, ls="--")
        line.set_label("setpoint")
        handles.append(line)
    if values is not None and has_values(values):
        s = thinned(ts, values, axis=axis)
        (line,) = _curve(ax, s, color="#2166ac", lw=1.0, label="pH")
        handles.insert(0, line)
    return handles


def _ph_near_span(batch: BatchExport) -> tuple[int, int] | None:
    """From the first pH-controlled phase's start to the last one's end; None when the batch
    held no pH, or held setpoints too far apart for one zoomed scale."""
    held = [p for p in batch.phases if p.ph_sp is not None]
    if not held or batch.ph_band is None:
        return None
    sps = [p.ph_sp for p in held if p.ph_sp is not None]
    if max(sps) - min(sps) > PH_NEAR_SPREAD:
        return None
    end = max(p.end_ts if p.end_ts is not None else batch.last_ts for p in held)
    start = min(p.start_ts for p in held)
    return (start, end) if end > start else None


def _duty(ax: Axes, batch: BatchExport, axis: TimeAxis) -> list[Artist] | str:
    values = batch.trend.column("heater_duty")
    if values is None or not has_values(values):
        return "No heater duty in the trend."
    s = thinned(batch.trend.ts, values, axis=axis, scale=100.0)
    (line,) = _curve(ax, s, color="#542788", lw=0.9, label="heater duty")
    ax.set_ylim(-3, 103)
    ax.set_ylabel("heater duty (%)")
    return [line]


def _reagents(ax: Axes, batch: BatchExport, axis: TimeAxis) -> list[Artist] | str:
    by_key = {p.key: p for p in batch.pumps}
    handles: list[Artist] = []
    columns = sorted(
        c
        for c in batch.trend.numbers
        if c.startswith(REAGENT_PREFIX) and c.endswith(REAGENT_SUFFIX)
    )
    for column in columns:
        values = batch.trend.numbers[column]
        if not any(v for v in values):  # nothing dosed: a flat zero says nothing
            continue
        key = column.removeprefix(REAGENT_PREFIX).removesuffix(REAGENT_SUFFIX)
        pump = by_key.get(key)
        label = key if pump is None else f"{pump.tag} · {pump.reagent or '?'}"
        colour = REAGENT_COLOURS[len(handles) % len(REAGENT_COLOURS)]
        s = thinned(batch.trend.ts, values, axis=axis)
        (line,) = _curve(ax, s, color=colour, lw=1.3, label=_plain(label))
        handles.append(line)
    if not handles:
        return "No reagent dosed in this batch."
    ax.set_ylabel("cumulative reagent (mL)")
    return handles


def _curve(ax: Axes, s: Series, *, color: str, lw: float, label: str) -> list[Line2D]:
    """A measured curve; a short one (a few seconds of trend) also marks each reading, so
    that a single reading between gaps still shows."""
    if len(s) <= FEW_POINTS:
        return ax.plot(s.x, s.y, color=color, lw=lw, label=label, marker="o", ms=2.5)
    return ax.plot(s.x, s.y, color=color, lw=lw, label=label)


def _marks(
    ax: Axes, batch: BatchExport, axis: TimeAxis, x_range: tuple[float, float]
) -> list[Artist]:
    """Phase starts as grey lines, alarms as red dashed lines under a red triangle."""
    handles: list[Artist] = []
    starts = [x for p in batch.phases if _within(x := axis.x(p.start_ts), x_range)]
    for x in starts:
        ax.axvline(x, color=PHASE, lw=0.8, zorder=1.5)
    if starts:
        handles.append(Line2D([], [], color=PHASE, lw=0.8, label="phase start"))
    top = ax.get_xaxis_transform()
    alarms = [x for a in batch.alarms if _within(x := axis.x(a.ts), x_range)]
    for x in alarms:
        ax.axvline(x, color=ALARM, lw=0.9, ls=ALARM_DASH, zorder=1.6)
        ax.plot([x], [1.0], marker="v", ms=6, color=ALARM, transform=top, clip_on=False)
    if alarms:
        handles.append(
            Line2D([], [], color=ALARM, lw=0.9, ls=ALARM_DASH, marker="v", ms=6, label="alarm")
        )
    return handles


@dataclass(frozen=True)
class _Label:
    x: float
    text: str
    phase: bool  # else an alarm


def _labels(batch: BatchExport, axis: TimeAxis, x_range: tuple[float, float]) -> list[_Label]:
    """A label for each phase start and each alarm on the plot."""
    phases = [_Label(axis.x(p.start_ts), p.name, phase=True) for p in batch.phases]
    alarms = [_Label(axis.x(a.ts), a.id, phase=False) for a in batch.alarms]
    return [label for label in phases + alarms if _within(label.x, x_range)]


def _within(x: float, x_range: tuple[float, float]) -> bool:
    return x_range[0] <= x <= x_range[1]


def _lay_out(fig: Figure, ax: Axes, labels: Sequence[_Label], *, legend_rows: int) -> int:
    """Size the figure and hang each label on its line above the axes, in rows where none
    overlaps another (labels.arrange); returns how many were left off for want of room."""
    left, width = LEFT_IN / WIDTH_IN, (WIDTH_IN - LEFT_IN - RIGHT_IN) / WIDTH_IN
    ax.set_position((left, 0.25, width, 0.5))  # horizontal place is final; height comes last
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    texts: list[Annotation] = []
    flags: list[Flag] = []
    for label in labels:
        text = ax.annotate(
            label.text,
            xy=(label.x, 1.0),
            xycoords=ax.get_xaxis_transform(),
            xytext=(FLAG_GAP_PT, 0),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=8,
            color=PHASE if label.phase else ALARM,
            annotation_clip=False,
            parse_math=False,
        )
        pole = ax.transData.transform((label.x, 0.0))[0]
        texts.append(text)
        flags.append(Flag(pole=pole, width=text.get_window_extent(renderer).width))
    placed = arrange(
        flags,
        right_edge=fig.bbox.x1 - 2,
        rows=STRIP_ROWS,
        first=[lb.phase for lb in labels],
        gap=FLAG_GAP_PT * fig.dpi / 72,
    )
    used = max((p.row + 1 for p in placed if p.row is not None), default=0)
    strip_in = (FLAG_BASE_PT + used * STRIP_ROW_PT) / 72 + 0.08
    bottom_in = BOTTOM_IN + legend_rows * LEGEND_ROW_IN + 0.05
    height = strip_in + AXES_IN + bottom_in
    fig.set_size_inches(WIDTH_IN, height)
    ax.set_position((left, bottom_in / height, width, AXES_IN / height))
    top = ax.get_xaxis_transform()
    for label, text, where in zip(labels, texts, placed, strict=True):
        if where.row is None:
            text.remove()
            continue
        dy = FLAG_BASE_PT + where.row * STRIP_ROW_PT
        text.xyann = (-FLAG_GAP_PT if where.leftward else FLAG_GAP_PT, dy)
        text.set_horizontalalignment("right" if where.leftward else "left")
        pole_top = 1.0 + (dy + FLAG_TEXT_PT) / (AXES_IN * 72)
        ax.plot(
            [label.x, label.x],
            [1.0, pole_top],
            color=PHASE if label.phase else ALARM,
            lw=0.8,
            ls="-" if label.phase else ALARM_DASH,
            transform=top,
            clip_on=False,
        )
    return sum(p.row is None for p in placed)


def _phase_span(phase: Phase, batch: BatchExport, axis: TimeAxis) -> tuple[float, float]:
    end = phase.end_ts if phase.end_ts is not None else batch.last_ts
    return axis.x(phase.start_ts), axis.x(max(end, phase.start_ts))


def _x_range(batch: BatchExport, axis: TimeAxis) -> tuple[float, float]:
    last = axis.x(batch.last_ts)
    if last <= 0:  # one instant: a little room either side
        return -0.5, 0.5
    return 0.0, last


def _plain(text: str) -> str:
    """Export text as matplotlib shows it literally: no mathtext, not hidden from a legend."""
    text = text.replace("$", r"\$")
    return f" {text}" if text.startswith("_") else text


def _svg(fig: Figure, key: str) -> str:
    """The figure as an `<svg>` element to put inline: no XML prolog, no doctype, no
    metadata, and ids prefixed by the plot's key so that several plots share one page."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    return re.sub(r'(\bid="|href="#|url\(#)', lambda m: f"{m.group(1)}{key}-", text)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return buf.getvalue()
