"""The fleet view as text: one line per unit, alarms first, cut to the terminal's size."""

from __future__ import annotations

from collections.abc import Sequence

from unit_controller.fleet.view import UnitRow

_COLUMNS = (
    ("UNIT", 16),
    ("LINK", 7),
    ("STATE", 11),
    ("PHASE", 22),
    ("T °C", 7),
    ("pH", 6),
    ("MODE", 18),  # maintenance/remote whole
    ("ALARMS", 30),
    ("AGE", 6),
    ("BACKLOG", 7),
)


def _cell(text: str, width: int) -> str:
    # What a unit publishes (its id, alarm ids) is drawn as text, never as the terminal's
    # commands: an escape sequence in one unit's alarm could clear the screen over the others.
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _phase(row: UnitRow) -> str:
    if row.phase is None:
        return "-"
    where = f" {row.phase_no}/{row.phase_count}" if row.phase_no and row.phase_count else ""
    spent = "" if row.phase_elapsed_s is None else f" {_duration(row.phase_elapsed_s)}"
    return f"{row.phase}{where}{spent}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _alarms(row: UnitRow) -> str:
    if not row.alarms:
        return "-"
    worst = row.alarms[0]
    more = f" +{len(row.alarms) - 1}" if len(row.alarms) > 1 else ""
    return f"{str(worst['priority'] or '?').upper()} {worst['id'] or '?'}{more}"


def _link(row: UnitRow) -> str:
    if not row.online:
        return "OFFLINE"
    return "stale" if row.stale else "online"


def _mode(row: UnitRow) -> str:
    mode = row.unit_mode or "-"
    return f"{mode}/{row.authority}" if row.authority else mode


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def row_cells(row: UnitRow) -> list[str]:
    """The text of each column for one unit."""
    return [
        row.unit,
        _link(row),
        row.state or "-",
        _phase(row),
        _number(row.temperature_c, 1),
        _number(row.ph, 2),
        _mode(row),
        _alarms(row),
        "-" if row.age_s is None else _duration(row.age_s),
        "-" if row.outbox_backlog is None else str(row.outbox_backlog),
    ]


def render(rows: Sequence[UnitRow], *, title: str, height: int = 0) -> str:
    """The table with a summary line; `height` > 0 keeps it to that many lines."""
    online = sum(1 for r in rows if r.online)
    alarmed = sum(1 for r in rows if r.alarms)
    stale = sum(1 for r in rows if r.stale)
    summary = (
        f"{title}: {len(rows)} unit(s), {online} online, {len(rows) - online} offline, "
        f"{stale} stale, {alarmed} with alarms"
    )
    lines = [summary, " ".join(name.ljust(width) for name, width in _COLUMNS).rstrip()]
    shown = rows
    if height > 0 and len(rows) > height - 3:
        shown = rows[: max(0, height - 3)]
    for row in shown:
        cells = row_cells(row)
        lines.append(
            " ".join(
                _cell(c, w).ljust(w) for c, (_, w) in zip(cells, _COLUMNS, strict=True)
            ).rstrip()
        )
    if len(shown) < len(rows):
        lines.append(f"… {len(rows) - len(shown)} more (alarms and offline units come first)")
    return "\n".join(lines)
