"""The broker's address as the config and the command line give it: `mqtt://host[:port]` or
`mqtts://host[:port]`, and the default topic root.

Plain parsing, nothing imported that a command line's help would wait for; never connects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_ROOT = "fleet/v2"
# A topic root: levels of plain characters, no wildcards, no empty level.
_ROOT = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_PORTS = {"mqtt": 1883, "mqtts": 8883}
# What a TLS client hears from a listener that speaks plain MQTT: it reads the ClientHello as a
# malformed packet and drops the connection.
# The broker's certificate chains to no CA this side trusts (not a name or a date that is wrong).
_UNTRUSTED = (
    "unable to get local issuer certificate",
    "self-signed certificate",
    "self signed certificate",
    "unable to get issuer certificate",
)
_TLS_REFUSED = ("connection reset", "wrong version number", "unexpected eof", "eof occurred")


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and whether the link uses TLS."""

    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        """The address as an mqtt:// or mqtts:// URL."""
        scheme = "mqtts" if self.tls else "mqtt"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def failure(self, error: BaseException) -> str:
        """`error` connecting to this broker, for a person: with what it most likely means
        when the link's TLS is the likely cause."""
        said = str(error) or type(error).__name__
        if self.tls and any(sign in said.lower() for sign in _UNTRUSTED):
            return said + (
                " (the broker's certificate is not signed by a CA this machine trusts: name the "
                "CA that signed it, --ca-file on the command line or [mqtt] ca_file in a config)"
            )
        if self.tls and any(sign in said.lower() for sign in _TLS_REFUSED):
            said += (
                f" (the TLS handshake failed: is port {self.port} a TLS listener? mqtt:// is "
                "plain MQTT)"
            )
        return said


def _shown(url: str) -> str:
    """`url` for a message, with any credentials in it masked: an error is never a leak."""
    at = url.rfind("@")
    if at < 0:
        return repr(url)
    scheme_end = url.find("://")
    start = scheme_end + 3 if 0 <= scheme_end < at else 0
    return repr(url[:start] + "***" + url[at:])


def parse_broker_url(url: str) -> BrokerAddress:
    """`mqtt://host[:port]` or `mqtts://host[:port]`; ValueError names what is wrong."""
    shown = _shown(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"broker URL {shown}: {str(exc).replace(url, '***')}") from None
    if parts.username or parts.password:
        raise ValueError(
            f"broker URL {shown}: put credentials in [mqtt] username / password_file, not the URL"
        )
    if parts.scheme not in _PORTS:
        raise ValueError(
            f"broker URL {shown} must start with mqtt:// or mqtts:// (TLS), e.g. mqtt://localhost"
        )
    if not parts.hostname:
        raise ValueError(f"broker URL {shown} has no host name")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"broker URL {shown} must be scheme://host[:port] with no path or query")
    if port == 0:  # not "the default": a port the URL names and no broker listens on
        raise ValueError(f"broker URL {shown}: port 0 is no port (1 to 65535, or leave it out)")
    return BrokerAddress(
        host=parts.hostname,
        port=_PORTS[parts.scheme] if port is None else port,
        tls=parts.scheme == "mqtts",
    )


# A unit id: one topic level and the MQTT client id (no '/', '+', '#', nor a space).
UNIT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def valid_unit_id(unit: str) -> str:
    """`unit` if it can be a unit id ([unit] id); ValueError says what one is."""
    if re.fullmatch(UNIT_ID_PATTERN, unit) is None:
        raise ValueError(
            f"unit id {unit!r} must be 1 to 64 letters, digits, '_', '.', '-', starting with a "
            "letter or digit (no '/', '+', '#' or space)"
        )
    return unit


def valid_root(root: str) -> str:
    """`root` if it is a topic root (levels, no wildcard); ValueError names what is wrong."""
    if not _ROOT.match(root):
        raise ValueError(
            f"topic root {root!r} must be levels of letters, digits, '_', '.', '-' separated "
            "by '/', with no wildcard and no leading or trailing '/'"
        )
    return root
