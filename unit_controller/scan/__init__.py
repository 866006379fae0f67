"""The fixed-period scan: snapshot, interlocks, machine, controllers, safety filter, apply."""
