"""The control socket: JSON lines over a UNIX socket for the console and local tools."""
