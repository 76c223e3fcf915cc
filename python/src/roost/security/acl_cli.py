"""`roost broker acl-test`: which rule of an ACL file decides one access, and why.

Exit status: 0 allow, 1 deny, 2 the file cannot be read or parsed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from roost.broker.topics import valid_topic_filter, valid_topic_name
from roost.security.acl import Access, Acl, AclError

HELP = "show which ACL rule allows or denies one client access to one topic"


def _arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--acl", required=True, type=Path, help="ACL file (Mosquitto syntax)")
    parser.add_argument("--client", required=True, help="MQTT client id")
    parser.add_argument("--user", default=None, help="username (omit for anonymous)")
    parser.add_argument("--topic", required=True, help="topic name, or filter for subscribe")
    parser.add_argument(
        "--access", required=True, choices=[a.value for a in Access], help="kind of access"
    )
    parser.set_defaults(func=run)
    return parser


def add_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `acl-test` under `roost broker`; the handler is in `args.func`."""
    _arguments(actions.add_parser("acl-test", help=HELP, description=HELP))


def run(args: argparse.Namespace) -> int:
    path: Path = args.acl
    try:
        acl = Acl.parse(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError, AclError) as exc:
        print(f"acl-test: {exc}", file=sys.stderr)
        return 2
    access = Access(args.access)
    valid = valid_topic_filter if access is Access.SUBSCRIBE else valid_topic_name
    if not valid(args.topic):
        print(f"acl-test: {args.topic!r} is not a valid topic for {access.value}", file=sys.stderr)
        return 2
    decision = acl.check(args.client, args.user, args.topic, access)
    print(decision)
    return 0 if decision.allowed else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _arguments(argparse.ArgumentParser(prog="roost broker acl-test", description=HELP))
    return run(parser.parse_args(argv))
