"""The command line's exit codes, where importing them costs nothing.

0 success/COMPLETE; the simulator (sim/runner.py) uses the same numbers for its batches.
"""

from __future__ import annotations

EXIT_REFUSED = 1
"""A remote command the unit or the broker refused, or that never went out (`send`)."""
EXIT_FAILED = 1
"""`run`: the daemon failed for a reason a restart may mend (scans kept failing; its state
directory's disk full or failing): systemd's `Restart=on-failure` tries again."""
EXIT_BAD_INPUT = 2
"""Bad input: a config, a recipe, a flag; every problem printed on stderr."""
EXIT_NOT_COMPLETE = 3
"""A batch that did not complete, or a commissioning check that found a problem."""
EXIT_UNKNOWN = 4
"""`send`: the broker took the command, but no result came in time: it may have been carried
out (a script must not simply send it again)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT) ended the command, as a shell counts it (128 + 2)."""
