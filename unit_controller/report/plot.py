"""What a plot of the report became: SVG for the page, PNG when asked for, or a note.

Plain data between figures.py (which draws) and page.py (which lays out); no matplotlib here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plot:
    """One plot of the report: its SVG (None: no data, see note), its PNG when asked for."""

    key: str  # the file stem, e.g. "temperature"
    title: str
    svg: str | None
    png: bytes | None
    note: str | None  # why there is no plot, or which labels were left off it
