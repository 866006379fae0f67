"""Tests of the control loops (heater PID, time proportioning, pH dosing)."""
