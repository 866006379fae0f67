"""`unit-controller fleet`: the command line's options into a fleet view (fleet/watch.py)."""

from __future__ import annotations

import argparse
import sys

from unit_controller.cli.broker_options import broker_option_problem
from unit_controller.cli.exits import EXIT_BAD_INPUT
from unit_controller.mqtt.address import parse_broker_url, valid_root


def run_fleet_command(args: argparse.Namespace) -> int:
    """Check the options, then watch (or take one snapshot of) the fleet."""
    try:
        address = parse_broker_url(args.mqtt)
        root = valid_root(args.root)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = broker_option_problem(address, args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from unit_controller.fleet.watch import FleetOptions, run_fleet

    options = FleetOptions(
        address=address,
        root=root,
        once=args.once,
        as_json=args.json,
        wait_s=args.wait_s,
        refresh_s=args.refresh_s,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        username=args.username,
        password_file=args.password_file,
        stats_file=args.stats_file,
    )
    return run_fleet(options)
