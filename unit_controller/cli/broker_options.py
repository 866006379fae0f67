"""The broker options `fleet` and `send` share: TLS files, user name and password file; their
arguments and the checks made before anything connects.

Imports nothing of MQTT or TLS: building the command line stays cheap.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unit_controller.mqtt.address import BrokerAddress


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """--ca-file, --cert-file, --key-file, --username and --password-file on `parser`."""
    parser.add_argument("--ca-file", type=Path, help="TLS: the CA that signed the broker")
    parser.add_argument("--cert-file", type=Path, help="TLS: this client's certificate")
    parser.add_argument("--key-file", type=Path, help="TLS: this client's key")
    parser.add_argument("--username", help="broker user name")
    parser.add_argument("--password-file", type=Path, help="a file holding the broker password")


def broker_option_problem(address: BrokerAddress, args: argparse.Namespace) -> str | None:
    """What is wrong with the broker options for `address`, or None."""
    if not address.tls and (args.ca_file or args.cert_file or args.key_file):
        return "--ca-file, --cert-file and --key-file need an mqtts:// URL"
    if (args.cert_file is None) != (args.key_file is None):
        return "--cert-file and --key-file go together"
    if args.password_file is not None and not args.username:
        # A password alone is never sent (MQTT pairs it with a user name): the broker would
        # see an anonymous client and say only "not authorized".
        return "--password-file needs --username"
    for flag, path in (
        ("--ca-file", args.ca_file),
        ("--cert-file", args.cert_file),
        ("--key-file", args.key_file),
        ("--password-file", args.password_file),
    ):
        if path is not None and not path.is_file():
            return f"{flag} {path}: no such file"
    # Loaded here as the link will, so a file that is no certificate is a bad option (exit 2),
    # not a broker that cannot be reached.
    from unit_controller.mqtt.settings import tls_files_problem

    return tls_files_problem(
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        names=("--ca-file", "--cert-file", "--key-file"),
    )


def broker_password(args: argparse.Namespace) -> str | None:
    """The password from --password-file (its first line, trimmed), or None."""
    path: Path | None = args.password_file
    return None if path is None else path.read_text(encoding="utf-8").strip()
