"""Tests of the PackML state machine."""
