"""`unit-controller run`: the long-running controller of one unit, its directories and systemd."""
