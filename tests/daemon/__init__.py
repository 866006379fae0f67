"""Tests of `unit-controller run`: the daemon, its control socket, journal and console."""
