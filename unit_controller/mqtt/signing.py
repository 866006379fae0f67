"""Signed remote commands (Ed25519): who sent a command is what a key proves, not what the
message says.

The signature covers the unit, the command name and the payload without `sig`, as canonical
JSON (sorted keys, no spaces, ASCII): a command signed for one unit or one command cannot be
replayed at another. Keys are raw 32-byte Ed25519 public keys in base64, listed in
`[[mqtt.operators]]` with the commands each may give.

The cryptography library is imported by the functions that use a key, not with this module: a
unit that lists no operator keys never loads it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

CONTEXT = b"unit-controller/cmd/v1\n"


class SignatureRefused(Exception):
    """The signature is missing, unknown, wrong or does not allow this command; says which.
    `verified` names the operator when the signature held and only the command was not theirs."""

    def __init__(self, error: str, *, verified: str | None = None) -> None:
        super().__init__(error)
        self.verified = verified


def signed_bytes(*, unit: str, name: str, document: Mapping[str, Any]) -> bytes:
    """What a command's signature covers."""
    body = {k: v for k, v in document.items() if k != "sig"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return CONTEXT + f"{unit}\n{name}\n".encode() + canonical.encode("ascii")


def public_key_text(key: Ed25519PublicKey) -> str:
    """The base64 form `[[mqtt.operators]] public_key` takes."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A base64 raw Ed25519 public key; ValueError naming what is wrong."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public_key is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"public_key is {len(raw)} bytes; an Ed25519 key is 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def new_private_key(path: Path) -> Ed25519PublicKey:
    """Write a new private key (PKCS#8 PEM, mode 0600) to `path`; its public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Never readable by others, and never over an existing key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
    finally:
        os.close(fd)
    return key.public_key()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in `path`; ValueError naming what is wrong."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ValueError(f"cannot read the key {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise ValueError(f"{path} is not a PEM private key without a passphrase") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 key")
    return key


def sign(
    key: Ed25519PrivateKey, *, unit: str, name: str, document: Mapping[str, Any]
) -> dict[str, Any]:
    """`document` with its `sig`."""
    signature = key.sign(signed_bytes(unit=unit, name=name, document=document))
    return {**document, "sig": base64.b64encode(signature).decode("ascii")}


@dataclass(frozen=True, slots=True)
class OperatorKey:
    """One operator's public key and the commands it may give (None: every remote one)."""

    name: str
    key: Ed25519PublicKey
    commands: frozenset[str] | None


class Operators:
    """The unit's list of operator keys: verifies a command's signature and what it may do."""

    def __init__(self, keys: Iterable[OperatorKey]) -> None:
        self._keys = {k.name: k for k in keys}

    def verify(self, *, unit: str, name: str, document: Mapping[str, Any]) -> str:
        """The verified operator name; SignatureRefused saying why not."""
        by, sig = document.get("by"), document.get("sig")
        operator = self._keys.get(by) if isinstance(by, str) else None
        if operator is None:
            raise SignatureRefused(f"no operator key named {str(by)[:64]!r} on this unit")
        from cryptography.exceptions import InvalidSignature

        try:
            signature = base64.b64decode(str(sig), validate=True)
            operator.key.verify(signature, signed_bytes(unit=unit, name=name, document=document))
        except (binascii.Error, ValueError, InvalidSignature):
            raise SignatureRefused(
                f"the signature does not verify with {operator.name}'s key "
                "(signed for another unit or command, or altered)"
            ) from None
        if operator.commands is not None and name not in operator.commands:
            raise SignatureRefused(
                f"{operator.name} may not give {name!r}", verified=operator.name
            )
        return operator.name
