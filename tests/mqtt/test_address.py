"""What a failed connect says: the error, and a TLS mismatch named when it is the likely cause."""

from __future__ import annotations

import ssl

import pytest

from unit_controller.mqtt.address import BrokerAddress

TLS = BrokerAddress(host="broker", port=1883, tls=True)
PLAIN = BrokerAddress(host="broker", port=1883, tls=False)
HINT = "the TLS handshake failed: is port 1883 a TLS listener? mqtt:// is plain MQTT"


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
        ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
    ],
)
def test_tls_refused_by_a_plain_listener_is_named(error: OSError) -> None:
    assert TLS.failure(error) == f"{error} ({HINT})"


def test_a_broker_certificate_nobody_trusts_names_the_ca_file() -> None:
    error = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    said = TLS.failure(error)
    assert said.startswith(str(error))
    assert "--ca-file" in said
    assert "[mqtt] ca_file" in said
    assert HINT not in said
    # The CA is known and the name or the date is wrong: that is said as it is.
    mismatch = ssl.SSLCertVerificationError(
        1,
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, "
        "certificate is not valid for 'runsc'.",
    )
    assert TLS.failure(mismatch) == str(mismatch)


def test_other_failures_are_said_as_they_are() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    assert TLS.failure(refused) == "[Errno 111] Connection refused"
    # Plain MQTT reset by a broker: no TLS to blame.
    reset = ConnectionResetError(104, "Connection reset by peer")
    assert PLAIN.failure(reset) == "[Errno 104] Connection reset by peer"
    assert PLAIN.failure(TimeoutError()) == "TimeoutError"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mqtt://broker:0", "port 0 is no port"),
        ("mqtt://broker:99999", "Port out of range"),
        ("http://broker", "must start with mqtt:// or mqtts://"),
        ("mqtt://broker/x", "no path or query"),
    ],
)
def test_a_broker_url_that_names_no_usable_broker_is_refused(url: str, says: str) -> None:
    from unit_controller.mqtt.address import parse_broker_url

    with pytest.raises(ValueError, match=says):
        parse_broker_url(url)


def test_a_url_without_a_port_takes_its_schemes_default() -> None:
    from unit_controller.mqtt.address import parse_broker_url

    assert parse_broker_url("mqtt://broker").port == 1883
    assert parse_broker_url("mqtts://broker").port == 8883
    assert parse_broker_url("mqtt://broker:1884").port == 1884
