"""The batch report: a batch export (`journal export --format json`) as one self-contained
HTML page with its plots inline, for people to look at rather than read.

Off the unit only: matplotlib (the `report` extra) is imported when a report is written,
never by importing this package, and never by the daemon.
"""

from unit_controller.report.export import ReportError
from unit_controller.report.write import ReportWritten, write_report

__all__ = ["ReportError", "ReportWritten", "write_report"]
