"""Tests of the journal: the SQLite store and the recorder that feeds it."""
