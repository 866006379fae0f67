"""`unit-controller keygen|sign|send`: an operator's tools for signed remote commands.

`keygen` makes a key and prints the `[[mqtt.operators]]` entry for the unit's config; `sign`
prints a signed command payload for any MQTT client; `send` publishes one and waits for its
`cmd_result`. Their arguments are in operator_arguments.py: this module loads the signing
library, so only these commands import it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import ssl
import sys
import time
import uuid
from typing import Any

from unit_controller.cli.broker_options import broker_option_problem, broker_password
from unit_controller.cli.exits import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNKNOWN
from unit_controller.json_limits import JsonRefused, parse_json
from unit_controller.mqtt.address import parse_broker_url
from unit_controller.mqtt.commands import REMOTE_COMMANDS
from unit_controller.mqtt.signing import load_private_key, new_private_key, public_key_text, sign


def run_operator_command(args: argparse.Namespace) -> int:
    """Carry out keygen, sign or send; the exit code."""
    try:
        if args.command == "keygen":
            return _keygen(args)
        payload = _signed(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.command == "sign":
        print(json.dumps(payload, separators=(",", ":")))
        return 0
    return asyncio.run(_send(args, payload))


def _keygen(args: argparse.Namespace) -> int:
    try:
        public = new_private_key(args.key)
    except FileExistsError:
        raise ValueError(f"{args.key} exists: a key is never overwritten") from None
    except OSError as exc:
        raise ValueError(f"cannot write {args.key}: {exc.strerror or exc}") from None
    print(f"# private key in {args.key}; add this to the unit's config:")
    print("[[mqtt.operators]]")
    print(f'name = "{args.name}"')
    print(f'public_key = "{public_key_text(public)}"')
    return 0


def _signed(args: argparse.Namespace) -> dict[str, Any]:
    if args.name not in REMOTE_COMMANDS:
        raise ValueError(
            f"unknown remote command {args.name!r}; they are {', '.join(sorted(REMOTE_COMMANDS))}"
        )
    if not (math.isfinite(args.life_s) and 0 < args.life_s <= 600):
        raise ValueError("--life-s must be more than 0 and at most 600")
    try:
        command_args = parse_json(args.args, max_bytes=2048, what="--args")
    except JsonRefused as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(command_args, dict):
        raise ValueError("--args must be a JSON object")
    key = load_private_key(args.key)
    now = int(time.time() * 1000)
    document = {
        "id": str(uuid.uuid4()),
        "ts": now,
        "exp": now + int(args.life_s * 1000),
        "by": args.by,
        "args": command_args,
    }
    return sign(key, unit=args.unit, name=args.name, document=document)


async def _send(args: argparse.Namespace, payload: dict[str, Any]) -> int:
    import aiomqtt

    try:
        address = parse_broker_url(args.url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = broker_option_problem(address, args)
    if problem is None and not (math.isfinite(args.timeout_s) and 0 < args.timeout_s <= 3600):
        # Else a 0 s wait fails the connect and reads as the broker's fault.
        problem = "--timeout-s must be more than 0 and at most 3600"
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    tls = None
    if address.tls:
        tls = ssl.create_default_context(cafile=args.ca_file)
        if args.cert_file:
            tls.load_cert_chain(args.cert_file, args.key_file)
    base = f"{args.root}/{args.unit}"
    delivered = False
    try:
        # MQTT 5: a broker that refuses the command (its ACL) says so in the PUBACK, which
        # 3.1.1 cannot; else it reads as a unit that never answered.
        async with aiomqtt.Client(
            address.host,
            address.port,
            tls_context=tls,
            username=args.username,
            password=broker_password(args),
            timeout=args.timeout_s,
            protocol=aiomqtt.ProtocolVersion.V5,
        ) as client:
            granted = await client.subscribe(f"{base}/cmd_result", qos=1)
            refused = [str(code) for code in granted if getattr(code, "is_failure", False)]
            if refused:
                print(
                    f"error: the broker refused the subscription to {base}/cmd_result "
                    f"({refused[0]}), so no result could be read: the command was not sent",
                    file=sys.stderr,
                )
                return EXIT_REFUSED
            from unit_controller.mqtt.direct_publisher import DirectPublisher, PublishRefused

            async with asyncio.timeout(args.timeout_s):
                try:
                    await DirectPublisher(client).publish(
                        f"{base}/cmd/{args.name}", json.dumps(payload).encode(), 1
                    )
                except PublishRefused as exc:
                    print(f"error: {exc}: the command did not reach {args.unit}", file=sys.stderr)
                    return EXIT_REFUSED
                delivered = True
                async for message in client.messages:
                    result = _result(message.payload)
                    if result is not None and result.get("id") == payload["id"]:
                        print(json.dumps(result))
                        return 0 if result.get("ok") is True else EXIT_REFUSED
    except TimeoutError:
        if not delivered:
            print(
                f"error: the broker did not acknowledge the command within {args.timeout_s:g} s",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        # What is known: the broker took it. Not whether the unit carried it out: it may be
        # offline or on Sparkplug, or this client may not read cmd_result (a broker's ACL may
        # grant the subscription and deliver nothing).
        print(
            f"error: no cmd_result from {args.unit} within {args.timeout_s:g} s: the broker took "
            "the command, and it may have been carried out (check the unit's status before "
            'sending it again); the unit may be offline or on Sparkplug (payload = "sparkplug"), '
            "or this client may not read cmd_result (the broker's ACL)",
            file=sys.stderr,
        )
        return EXIT_UNKNOWN
    except aiomqtt.MqttError as exc:
        print(f"error: broker {address.url}: {address.failure(exc)}", file=sys.stderr)
    return EXIT_REFUSED


def _result(raw: object) -> dict[str, Any] | None:
    """A cmd_result message as an object, or None for anything else on the topic (a stray
    retained message, garbage): skipped, never a crash."""
    if not isinstance(raw, bytes | str):
        return None
    try:
        result = json.loads(raw)
    except ValueError:
        return None
    return result if isinstance(result, dict) else None
