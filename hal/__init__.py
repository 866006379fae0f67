"""Hardware abstraction layer: device interfaces, the board, mock and serial backends.

Never imports `unit_controller`; the controller sees only these interfaces and typed readings.
"""
