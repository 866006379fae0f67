"""Commissioning a new or repaired unit: find every instrument, read what it says of itself,
check it, and (with someone at the unit) pulse each output so the wiring is confirmed."""
