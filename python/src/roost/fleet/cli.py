"""`roost fleet status`: a table (or JSON) of the Pis the broker knows about.
`roost fleet command`: one request to one Pi, and its answer, under a deadline."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from roost.fleet import command
from roost.fleet.status import Access, Pi, read

COLUMNS = ("SITE", "CLIENT", "STATE", "LAST SEEN", "VERSION", "TEMP", "QUEUE")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("fleet", help="operator view of the fleet")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="online/offline, last seen, temperature, queue")
    _connection_options(status)
    status.add_argument("--site", help="only this site")
    status.add_argument("--wait", type=float, default=3.0,
                        help="seconds to collect retained messages at most (default 3)")
    status.add_argument("--json", action="store_true", help="JSON list for scripts")
    status.set_defaults(func=_status)
    cmd = actions.add_parser(
        "command", help="send one command to a Pi and wait for its answer",
        description="Send a command as an MQTT 5 request that expires after --timeout, and "
        "print the answer: the Pi's, or the broker's error when the request could not be "
        "delivered. Exit 0: ok; 1: an error answer; 3: no answer in time (the Pi's "
        "retained status is shown); 2: bad usage or no connection.")
    cmd.add_argument("client_id", metavar="CLIENT-ID")
    cmd.add_argument("name", metavar="NAME", help="the command, e.g. ping, set-interval")
    cmd.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                     help="an argument; VALUE is read as JSON when it parses (5, true), "
                     "else as text; repeatable")
    cmd.add_argument("--timeout", type=float, default=30.0, metavar="S",
                     help="seconds the request lives (its Message Expiry Interval); the "
                     f"answer is awaited {command.GRACE:.0f} s longer (default 30)")
    cmd.add_argument("--site", help="the Pi's site (default: from its retained status)")
    _connection_options(cmd)
    cmd.set_defaults(func=_command)
    from roost.dashboard import cli as dashboard_cli  # noqa: PLC0415 (`fleet serve`)

    dashboard_cli.add_parser(actions)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, metavar="HOST:PORT")
    parser.add_argument("--tls-ca", help="CA certificate (enables TLS)")
    parser.add_argument("--tls-cert", help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", help="client key (mutual TLS)")
    parser.add_argument("--username")
    parser.add_argument("--password-file", type=Path, help="first line is the password")


def _access(args: argparse.Namespace) -> Access | None:
    """The connection options as an Access; None (after saying why) if they are bad."""
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit():
        print(f"--broker {args.broker!r}: expected HOST:PORT", file=sys.stderr)
        return None
    password = None
    if args.password_file:
        try:
            password = args.password_file.read_text().splitlines()[0]
        except (OSError, IndexError) as err:
            print(f"--password-file: {err}", file=sys.stderr)
            return None
    return Access(host.strip("[]"), int(port), args.tls_ca, args.tls_cert, args.tls_key,
                  args.username, password)


def _command(args: argparse.Namespace) -> int:
    access = _access(args)
    if access is None:
        return 2
    who = args.client_id
    try:
        out = command.send(access, who, args.name, command.parse_args(args.arg),
                           timeout=args.timeout, site=args.site)
    except (OSError, ConnectionError, command.CommandError) as err:
        print(f"roost fleet command: {err}", file=sys.stderr)
        return 2
    if out.reply is not None:
        print(json.dumps(out.reply))
        if out.reply.get("ok") is True:
            return 0
        source = f"the broker answered for {who}" if out.by_broker else f"{who} answered"
        print(f"roost fleet command: {source} with an error: {out.reply.get('error')}",
              file=sys.stderr)
        return 1
    if out.puback == command.NO_SUBSCRIBERS:
        why = (f"nobody is subscribed to {who}'s commands: it has no session on the "
               "broker, so the request went nowhere")
    else:
        why = f"no answer from {who} within {out.waited:.0f} s"
    print(f"roost fleet command: {why}; {command.describe_status(who, out.status)}",
          file=sys.stderr)
    return 3


def _status(args: argparse.Namespace) -> int:
    access = _access(args)
    if access is None:
        return 2
    try:
        pis = read(access, args.site, args.wait)
    except (OSError, ConnectionError) as err:
        print(f"roost fleet status: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([pi.as_dict() for pi in pis], indent=2))
    else:
        print(table(pis, time.time()))
    return 0


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    secs = max(0, int(now - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs}s ago"


def table(pis: list[Pi], now: float) -> str:
    rows = [COLUMNS] + [
        (pi.site, pi.client_id, pi.state, _ago(pi.last_seen, now), pi.version or "-",
         f"{pi.temperature:.1f}C" if isinstance(pi.temperature, int | float) else "-",
         "-" if pi.queue_depth is None else str(pi.queue_depth))
        for pi in pis
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)
