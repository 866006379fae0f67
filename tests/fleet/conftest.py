"""The fleet view's tests use the MQTT tests' brokers."""

from tests.mqtt.conftest import mosquitto, tls_mosquitto

__all__ = ["mosquitto", "tls_mosquitto"]
