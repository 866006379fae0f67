"""The command line's exit codes, where importing them costs nothing.

0 success/COMPLETE; the simulator (sim/runner.py) uses the same numbers for its batches.
"""

from __future__ import annotations

EXIT_REFUSED = 1
"""A remote command the unit refused, or no answer from it (`send`)."""
EXIT_BAD_INPUT = 2
"""Bad input: a config, a recipe, a flag; every problem printed on stderr."""
EXIT_NOT_COMPLETE = 3
"""A batch that did not complete, or a commissioning check that found a problem."""
