"""`roost broker ...` subcommands."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("broker", help="the MQTT broker")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run the broker")
    run.add_argument("--config", help="TOML configuration file")
    run.set_defaults(func=_not_yet)
    check = actions.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=_not_yet)


def _not_yet(args: argparse.Namespace) -> int:
    print(f"roost broker {args.action}: not implemented yet", file=sys.stderr)
    return 2
