"""The arguments of `unit-controller keygen|sign|send` (operator.py carries them out).

Imports nothing of the signing or MQTT libraries: building the command line stays cheap.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unit_controller.cli.broker_options import add_broker_arguments
from unit_controller.mqtt.address import DEFAULT_ROOT, valid_root, valid_unit_id
from unit_controller.mqtt.operator_name import operator_name


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type from a check that raises ValueError naming the problem."""

    def parse(text: str) -> str:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


_operator_name = _checked(operator_name)


def add_operator_commands(sub: Any) -> None:
    """The three subcommands, on the CLI's subparsers."""
    keygen = sub.add_parser("keygen", help="make an operator key for signed remote commands")
    keygen.add_argument("key", type=Path, help="where to write the private key (mode 0600)")
    keygen.add_argument(
        "--name",
        required=True,
        type=_operator_name,
        help="the operator's name (the `by` field): letters, digits, _ . @ -",
    )
    for name, helptext in (
        ("sign", "print a signed command payload"),
        ("send", "publish a signed command and wait for its result"),
    ):
        parser = sub.add_parser(
            name,
            help=helptext,
            epilog=(
                "exit 0: carried out; 1: refused, or not sent; 4: sent, but no result within "
                "--timeout-s (it may have been carried out)"
                if name == "send"
                else None
            ),
        )
        parser.add_argument("name", metavar="COMMAND", help="e.g. hold, start, ack")
        parser.add_argument(
            "--unit",
            required=True,
            type=_checked(valid_unit_id),
            help="the unit id (its certificate CN)",
        )
        parser.add_argument("--key", type=Path, required=True, help="the private key file")
        parser.add_argument(
            "--by", required=True, type=_operator_name, help="the operator name of that key"
        )
        parser.add_argument(
            "--args", default="{}", help='command args as JSON, e.g. \'{"recipe": "smoke"}\''
        )
        parser.add_argument(
            "--life-s", type=float, default=60.0, help="seconds until it expires (default 60)"
        )
        if name == "send":
            parser.add_argument("--url", required=True, help="mqtt://host[:port] or mqtts://…")
            parser.add_argument(
                "--root",
                default=DEFAULT_ROOT,
                type=_checked(valid_root),
                help=f"the units' topic root (default {DEFAULT_ROOT})",
            )
            add_broker_arguments(parser)
            parser.add_argument(
                "--timeout-s",
                type=float,
                default=30.0,
                help="seconds to wait for the unit's cmd_result (default 30)",
            )
