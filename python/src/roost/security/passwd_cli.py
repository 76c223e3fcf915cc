"""`roost broker passwd FILE USER`: add, change or delete a user in a password file that
Mosquitto's `mosquitto_passwd` could also have written. The password is read from stdin
(first line) when it is not a terminal, so it never appears in `ps` or shell history.
Comment lines in the file are not kept.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from roost.security.passwd import DEFAULT_ITERATIONS, PasswdError, PasswordFile

HELP = "add, change or delete a user in a mosquitto_passwd-format password file"


def _arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("file", type=Path, help="password file (created with mode 0600)")
    parser.add_argument("user")
    parser.add_argument("--delete", action="store_true", help="remove the user")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.set_defaults(func=run)
    return parser


def add_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `passwd` under `roost broker`; the handler is in `args.func`."""
    _arguments(actions.add_parser("passwd", help=HELP, description=HELP))


def _password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Reenter password: ") != first:
        raise ValueError("the passwords do not match")
    return first


def _save(path: Path, text: str) -> None:
    """Write beside the file and rename, so a reading broker never sees half a file."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp makes it 0600
        out.write(text)
    os.replace(temp, path)


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        users = PasswordFile.parse(text, str(path))
        if args.delete:
            if args.user not in users.hashes:
                raise ValueError(f"no user {args.user!r} in {path}")
            users.remove(args.user)
        else:
            password = _password()
            if not password:
                raise ValueError("empty password")
            users.set(args.user, password, args.iterations)
        _save(path, users.render())
    except (OSError, UnicodeDecodeError, PasswdError, ValueError) as exc:
        print(f"passwd: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _arguments(argparse.ArgumentParser(prog="roost broker passwd", description=HELP))
    return run(parser.parse_args(argv))
