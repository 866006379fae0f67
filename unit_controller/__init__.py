"""unit-controller: the edge controller of one modular battery-recycling unit."""

__version__ = "0.1.0"
