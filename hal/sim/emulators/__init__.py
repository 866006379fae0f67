"""Device emulators on pseudo-terminals: the bytes real instruments send, backed by the plant."""
