"""Command line: `unit-controller sim|envelope|run|console|recipes|check-config|hash-pin`, and
`keygen|sign|send` for signed remote commands.

Exit codes: 0 success/COMPLETE, 2 bad input (config, recipe, flag), 3 a batch that did not complete.
"""

from unit_controller.cli.arguments import build_parser
from unit_controller.cli.main import main

__all__ = ["build_parser", "main"]
