"""`roost broker run|check-config`."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from roost.broker import config as cfg
from roost.security import acl_cli, passwd_cli


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("broker", help="the MQTT broker")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run the broker")
    run.add_argument("--config", help="TOML configuration file")
    run.add_argument("--bind", action="append", metavar="HOST:PORT",
                     help="listen here (repeatable); port 0 picks a free port")
    run.add_argument("--allow-anonymous", action="store_true",
                     help="accept clients without credentials (loopback binds only)")
    run.add_argument("--data-dir", help="directory for the durable store")
    run.add_argument("--durability", choices=("batched", "strict"))
    run.add_argument("--max-queued-messages", type=int, metavar="N",
                     help="QoS 1/2 messages queued per client before new ones are dropped "
                          "(default 1000; 0: no limit)")
    run.add_argument("--acl-file", help="Mosquitto-syntax ACL file (reloaded on SIGHUP)")
    run.add_argument("--log-level", choices=cfg.LOG_LEVELS)
    run.set_defaults(func=_run)
    check = actions.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=_check)
    acl_cli.add_parser(actions)
    passwd_cli.add_parser(actions)


def _check(args: argparse.Namespace) -> int:
    try:
        config = cfg.load(args.file)
    except OSError as e:
        print(f"{args.file}: {e.strerror}", file=sys.stderr)
        return 1
    except cfg.ConfigError as e:
        print(f"{args.file}:{e.line}: {e}", file=sys.stderr)
        return 1
    return _check_files(config)


def _check_files(config: cfg.Config) -> int:
    """Load the ACL, password file and every listener's TLS files as the broker would;
    a bad one is reported as `FILE:LINE: reason` or `FILE: reason`."""
    from roost.broker.listeners import load_tls  # noqa: PLC0415 - keeps the CLI light
    from roost.broker.server import load_acl, load_passwords  # noqa: PLC0415
    from roost.security.errors import LineError  # noqa: PLC0415
    from roost.security.tls import TlsError  # noqa: PLC0415

    try:
        if config.acl_file is not None:
            load_acl(config.acl_file)
        if config.password_file is not None:
            load_passwords(config.password_file)
        metrics = [] if config.metrics is None else [config.metrics]
        for listener in [*config.listeners, *metrics]:
            if listener.tls is not None:
                load_tls(listener.tls)
        for listener in metrics:
            if not listener.loopback and listener.tls is None:
                print(f"warning: metrics on {listener} without tls", file=sys.stderr)
        if config.cluster is not None or config.bridges:
            from roost.broker.cluster_config import load_files  # noqa: PLC0415

            load_files(config.cluster, config.bridges)
    except OSError as e:
        print(f"{e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    except (LineError, TlsError) as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


def _build(args: argparse.Namespace) -> cfg.Config:
    config = cfg.load(args.config) if args.config else None
    if config is None:
        if not args.bind:
            raise cfg.ConfigError("give --config FILE or --bind HOST:PORT")
        config = cfg.Config(listeners=[cfg.parse_bind(b) for b in args.bind])
    elif args.bind:
        config = replace(config, listeners=[cfg.parse_bind(b) for b in args.bind])
    changes: dict[str, object] = {}
    if args.data_dir:
        changes["data_dir"] = Path(args.data_dir)
    if args.durability:
        changes["durability"] = args.durability
    if args.log_level:
        changes["log_level"] = args.log_level
    if args.acl_file:
        changes["acl_file"] = Path(args.acl_file)
    limits: dict[str, object] = {}
    if args.allow_anonymous:
        limits["allow_anonymous"] = True
    if args.max_queued_messages is not None:
        if args.max_queued_messages < 0:
            raise cfg.ConfigError("--max-queued-messages must be 0 or more")
        limits["max_queued_messages"] = args.max_queued_messages
    if limits:
        changes["settings"] = replace(config.settings, **limits)  # type: ignore[arg-type]
    config = replace(config, **changes)  # type: ignore[arg-type]
    cfg.check_exposure(config)
    return config


def _run(args: argparse.Namespace) -> int:
    try:
        config = _build(args)
    except OSError as e:
        print(f"roost broker: {args.config}: {e.strerror}", file=sys.stderr)
        return 1
    except cfg.ConfigError as e:
        where = f"{args.config}:{e.line}: " if args.config and e.line else ""
        print(f"roost broker: {where}{e}", file=sys.stderr)
        return 1
    if _check_files(config):
        return 1
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from roost.broker import server  # noqa: PLC0415 - keeps check-config light

    try:
        server.run(config)
    except OSError as e:  # a port in use, an unwritable data_dir
        print(f"roost broker: {e}", file=sys.stderr)
        return 1
    return 0
