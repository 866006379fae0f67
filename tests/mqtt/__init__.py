"""Tests of the MQTT adapter."""
