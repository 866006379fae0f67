"""One module per group of figures: `KEYS` and `measure(ctx)` (see bench/suite.py)."""
