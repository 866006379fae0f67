"""The field-tech console `unit-console`: a line REPL over the daemon's control socket (§9).

A client only: a console crash, a slow terminal or a bad line never reaches control.
"""
