"""The unit's journal: events, commands, batches and calibrations in SQLite in the state directory.

Never blocks the scan: writers only buffer; one worker thread commits.
"""

from unit_controller.journal.recorder import JournalRecorder
from unit_controller.journal.store import Journal, JournalError, JournalOpening

__all__ = ["Journal", "JournalError", "JournalOpening", "JournalRecorder"]
