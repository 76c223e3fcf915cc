"""`roost agent run --config FILE` and `roost agent check-config FILE`."""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys

from roost import sdnotify
from roost.agent.config import ConfigError, load


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("agent", help="the device agent (runs on every Pi)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run the agent")
    run.add_argument("--config", required=True, help="TOML configuration file")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    run.set_defaults(func=_run)
    check = actions.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    try:
        load(args.file, need_credentials=False)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.file}: ok")
    return 0


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        sdnotify.notify(f"STATUS=config error: {err}")  # systemctl status shows why
        return 1
    # paho and the runner only when actually running: check-config stays light
    from roost.agent.runner import Agent  # noqa: PLC0415

    try:
        agent = Agent(cfg)
    except (OSError, sqlite3.Error) as err:
        print(f"{cfg.state_dir}: cannot open the queue: {err}", file=sys.stderr)
        return 1
    return agent.run()
