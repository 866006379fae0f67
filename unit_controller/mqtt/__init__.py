"""Fleet link over MQTT: settings, outbox, telemetry, remote commands (DESIGN §6)."""
