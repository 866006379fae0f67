"""The `[mqtt]` config section: broker URL, TLS, credentials, topics root, outbox caps, timing.

Validated once at start-up with bounds and file checks; never opens a connection itself.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hal.schema import BaseModel, Field, field_validator, model_validator
from hal.wiring import STRICT
from unit_controller.mqtt.address import (
    DEFAULT_ROOT,
    BrokerAddress,
    parse_broker_url,
    valid_root,
)
from unit_controller.mqtt.operator_name import OPERATOR_NAME_PATTERN

if TYPE_CHECKING:
    from unit_controller.mqtt.signing import Operators

__all__ = [
    "DEFAULT_ROOT",
    "BrokerAddress",
    "MqttSettings",
    "OperatorSettings",
    "OutboxSettings",
    "operators_of",
    "parse_broker_url",
]


class _Section(BaseModel):
    model_config = STRICT


class OutboxSettings(_Section):
    """The on-disk store-and-forward queue: its caps and how often it commits."""

    max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=64 * 1024,
        le=4 * 1024**3,
        description="payload bytes kept while the broker is away; past it the oldest are dropped",
    )
    max_age_s: float = Field(
        default=7 * 24 * 3600.0,
        ge=60,
        le=90 * 24 * 3600.0,
        description="messages older than this are dropped unsent",
    )
    commit_every_s: float = Field(
        default=0.2, ge=0.01, le=10, description="longest wait before buffered messages commit"
    )


class OperatorSettings(_Section):
    """One operator who may sign remote commands: a name, an Ed25519 key, what they may do."""

    name: str = Field(pattern=OPERATOR_NAME_PATTERN, description="as in the command's `by`")
    public_key: str = Field(description="base64 Ed25519 public key (`unit-controller keygen`)")
    commands: tuple[str, ...] | None = Field(
        default=None, strict=False, description="the remote commands this key may give; unset = all"
    )

    @field_validator("public_key")
    @classmethod
    def _key(cls, text: str) -> str:
        # Imported here: the signing library loads only on a unit that lists operator keys.
        from unit_controller.mqtt.signing import parse_public_key

        parse_public_key(text)
        return text

    @field_validator("commands")
    @classmethod
    def _commands(cls, commands: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from unit_controller.mqtt.commands import REMOTE_COMMANDS

        unknown = sorted(set(commands or ()) - REMOTE_COMMANDS)
        if unknown:
            raise ValueError(
                f"unknown remote command(s) {', '.join(unknown)}; "
                f"they are {', '.join(sorted(REMOTE_COMMANDS))}"
            )
        return commands


class MqttSettings(_Section):
    """How the unit reaches the fleet broker (DESIGN §6); no `url` means no MQTT."""

    url: str | None = Field(default=None, description="mqtt://host[:port] or mqtts://host[:port]")
    root: str = Field(default=DEFAULT_ROOT, max_length=128)
    username: str | None = Field(default=None, min_length=1, max_length=128)
    password_file: Path | None = Field(
        default=None,
        strict=False,
        description="file holding the password (kept out of the config file)",
    )
    ca_file: Path | None = Field(
        default=None, strict=False, description="CA bundle; unset = the system's"
    )
    cert_file: Path | None = Field(
        default=None, strict=False, description="client certificate (CN = unit id)"
    )
    key_file: Path | None = Field(default=None, strict=False)
    keepalive_s: int = Field(default=30, ge=5, le=600)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    publish_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # At least 50 ms: less and a broker that is away is tried in a busy loop, flooding the log.
    reconnect_min_s: float = Field(default=1.0, ge=0.05, le=60)
    reconnect_max_s: float = Field(default=60.0, ge=0.05, le=3600)
    telemetry_period_s: float = Field(default=1.0, ge=0.1, le=3600)
    command_max_lifetime_s: float = Field(
        default=600.0, ge=1, le=86_400, description="longest exp - ts a command may carry"
    )
    command_clock_skew_s: float = Field(
        default=60.0, ge=0, le=3600, description="how far in the future a command's ts may be"
    )
    drain_timeout_s: float = Field(
        default=30.0, ge=0, le=600, description="on a clean stop, wait this long for the outbox"
    )
    outbox: OutboxSettings = OutboxSettings()
    payload: Literal["json", "sparkplug"] = Field(
        default="json",
        description="json: the README's fleet/v2 topics; sparkplug: Sparkplug B (spBv1.0/...)",
    )
    sparkplug_group: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[^/+#]+$",
        description="Sparkplug group id (default: [unit] site)",
    )
    discovery: bool = Field(
        default=False,
        description="publish Home Assistant MQTT discovery configs (retained) on every connect",
    )
    discovery_prefix: str = Field(
        default="homeassistant", max_length=128, description="Home Assistant's discovery prefix"
    )
    allow_unsigned: bool = Field(
        default=False,
        description="accept remote commands nobody signed (journaled as unauthenticated); "
        "a unit in a plant keeps this off",
    )
    operators: tuple[OperatorSettings, ...] = Field(
        default=(), strict=False, description="who may sign remote commands ([[mqtt.operators]])"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None:
            parse_broker_url(url)
        return url

    @field_validator("root", "discovery_prefix")
    @classmethod
    def _root(cls, root: str) -> str:
        return valid_root(root)

    @field_validator("password_file", "ca_file", "cert_file", "key_file", mode="before")
    @classmethod
    def _not_blank(cls, value: object) -> object:
        # An empty string would become Path("."): the folder the daemon happens to run in.
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: give the file's path, or leave the key out")
        return value

    @field_validator("password_file", "ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is None or path.is_file():
            return path
        if path.is_dir():
            raise ValueError(f"{path} is a directory, not a file")
        if path.is_symlink():
            raise ValueError(f"{path} is a link to nothing (or to itself)")
        if path.exists():
            raise ValueError(f"{path} is not a regular file")
        raise ValueError(f"no such file: {path}")

    @model_validator(mode="after")
    def _consistent(self) -> MqttSettings:
        names = [o.name for o in self.operators]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"operators: {', '.join(twice)} listed more than once")
        # One key, one person: a key listed twice could sign as either name, and the journal
        # would name whoever the command said.
        by_key: dict[str, list[str]] = {}
        for operator in self.operators:
            by_key.setdefault(operator.public_key.strip(), []).append(operator.name)
        shared = sorted(" and ".join(n) for n in by_key.values() if len(n) > 1)
        if shared:
            raise ValueError(f"operators: {'; '.join(shared)} have the same public_key")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: set both or neither")
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs a username")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        self._tls_files_load()
        uses_tls_files = self.ca_file or self.cert_file
        if uses_tls_files and self.url is not None and not self.address.tls:
            raise ValueError("ca_file / cert_file are set but the url is mqtt://: use mqtts://")
        return self

    def _tls_files_load(self) -> None:
        """Load the TLS files as the link will, so a bad one is named at start-up, not as an
        endless `[SSL] PEM lib` retry."""
        problem = tls_files_problem(
            ca_file=self.ca_file, cert_file=self.cert_file, key_file=self.key_file
        )
        if problem is not None:
            raise ValueError(problem)

    @property
    def enabled(self) -> bool:
        """True when a broker is configured."""
        return self.url is not None

    @property
    def address(self) -> BrokerAddress:
        """The parsed broker URL (only when `enabled`)."""
        if self.url is None:
            raise ValueError("no broker URL configured")
        return parse_broker_url(self.url)

    def password(self) -> str | None:
        """The password from `password_file` (first line), read when connecting."""
        if self.password_file is None:
            return None
        lines = self.password_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""


def operators_of(settings: MqttSettings) -> Operators:
    """The verifier for the configured operator keys."""
    from unit_controller.mqtt.signing import OperatorKey, Operators, parse_public_key

    return Operators(
        OperatorKey(
            name=o.name,
            key=parse_public_key(o.public_key),
            commands=None if o.commands is None else frozenset(o.commands),
        )
        for o in settings.operators
    )


def tls_files_problem(
    *,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    names: tuple[str, str, str] = ("ca_file", "cert_file", "key_file"),
) -> str | None:
    """Why the TLS files will not load as the link loads them, or None; `names` are what the
    message calls them (config keys, or a command's options). No files, nothing to load: the
    system's CA bundle is the link's to read (reading it here would cost every start-up tens of
    milliseconds)."""
    if ca_file is None and cert_file is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (ssl.SSLError, OSError) as exc:
            return f"{names[0]} {ca_file}: not a usable CA bundle ({exc})"
    if cert_file is not None and key_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (ssl.SSLError, OSError) as exc:
            return (
                f"{names[1]} {cert_file} / {names[2]} {key_file}: not a usable certificate and "
                f"key pair ({exc})"
            )
    return None


def certificate_name(cert_file: Path) -> str | None:
    """The client certificate's subject CN (None when it has none or cannot be read): the
    site broker's client id, username and ACL user (use_identity_as_username)."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except (OSError, ValueError, ImportError):
        return None
    value = names[0].value if names else None
    return value if isinstance(value, str) else None
