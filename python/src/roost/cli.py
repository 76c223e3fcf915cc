"""The `roost` console script: one entry point, one subcommand per component.

Each component registers its own sub-subcommands through a `register(subparsers)`
function, so this file stays a thin dispatcher.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from roost import __version__

Handler = Callable[[argparse.Namespace], int]


def _not_implemented(component: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        print(f"roost {component} {args.action}: not implemented yet", file=sys.stderr)
        return 2

    return run


def _stub(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
          actions: Sequence[str], help_text: str) -> None:
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("action", choices=actions)
    parser.set_defaults(func=_not_implemented(name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roost", description="Roost MQTT fleet tools")
    parser.add_argument("--version", action="version", version=f"roost {__version__}")
    sub = parser.add_subparsers(dest="component", required=True, metavar="COMPONENT")

    from roost.broker import cli as broker_cli

    broker_cli.register(sub)
    from roost.agent import cli as agent_cli  # noqa: PLC0415 (same lazy style as above)
    from roost.fleet import cli as fleet_cli  # noqa: PLC0415

    agent_cli.register(sub)
    fleet_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler = args.func
    return func(args)
