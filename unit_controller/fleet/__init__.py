"""The fleet side: a live view of every unit that reports to a broker (`unit-controller fleet`)."""
