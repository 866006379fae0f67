"""`python -m unit_controller.cli`: the same as `unit-controller`."""

import sys

from unit_controller.cli.main import main

sys.exit(main())
