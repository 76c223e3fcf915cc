"""`roost fleet status`: a table (or JSON) of the Pis the broker knows about."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from roost.fleet.status import Access, Pi, read

COLUMNS = ("SITE", "CLIENT", "STATE", "LAST SEEN", "VERSION", "TEMP", "QUEUE")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("fleet", help="operator view of the fleet")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="online/offline, last seen, temperature, queue")
    status.add_argument("--broker", required=True, metavar="HOST:PORT")
    status.add_argument("--site", help="only this site")
    status.add_argument("--tls-ca", help="CA certificate (enables TLS)")
    status.add_argument("--tls-cert", help="client certificate (mutual TLS)")
    status.add_argument("--tls-key", help="client key (mutual TLS)")
    status.add_argument("--username")
    status.add_argument("--password-file", type=Path, help="first line is the password")
    status.add_argument("--wait", type=float, default=3.0,
                        help="seconds to collect retained messages at most (default 3)")
    status.add_argument("--json", action="store_true", help="JSON list for scripts")
    status.set_defaults(func=_status)
    from roost.dashboard import cli as dashboard_cli  # noqa: PLC0415 (`fleet serve`)

    dashboard_cli.add_parser(actions)


def _status(args: argparse.Namespace) -> int:
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit():
        print(f"--broker {args.broker!r}: expected HOST:PORT", file=sys.stderr)
        return 2
    password = None
    if args.password_file:
        try:
            password = args.password_file.read_text().splitlines()[0]
        except (OSError, IndexError) as err:
            print(f"--password-file: {err}", file=sys.stderr)
            return 2
    access = Access(host.strip("[]"), int(port), args.tls_ca, args.tls_cert, args.tls_key,
                    args.username, password)
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
