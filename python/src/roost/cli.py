"""The `roost` console script: one entry point, one subcommand per component.

Each component registers its own sub-subcommands through a `register(subparsers)`
function, so this file stays a thin dispatcher.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from roost import __version__
from roost.agent import cli as agent_cli
from roost.broker import cli as broker_cli
from roost.fleet import cli as fleet_cli

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roost", description="Roost MQTT fleet tools")
    parser.add_argument("--version", action="version", version=f"roost {__version__}")
    sub = parser.add_subparsers(dest="component", required=True, metavar="COMPONENT")

    broker_cli.register(sub)
    agent_cli.register(sub)
    fleet_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler = args.func
    return func(args)
