"""The plant simulator: physics and chemistry of the reactor, sensor models and fault injection."""
