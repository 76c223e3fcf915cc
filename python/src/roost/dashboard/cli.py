"""`roost fleet serve`: the fleet dashboard. Registered by `roost.fleet.cli`."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from roost import sdnotify
from roost.fleet.status import Access
from roost.security.errors import LineError
from roost.security.passwd import PasswordFile

DEFAULT_BIND = "127.0.0.1:8088"


class UsageError(Exception):
    """A bad option; the message names it."""


def add_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = actions.add_parser("serve", help="web dashboard of the fleet (live)")
    serve.add_argument("--broker", required=True, action="append", metavar="HOST:PORT",
                       help="a broker node; repeat for each node to see every node's $SYS")
    serve.add_argument("--tls-ca", help="CA certificate (enables TLS)")
    serve.add_argument("--tls-cert", help="client certificate (mutual TLS)")
    serve.add_argument("--tls-key", help="client key (mutual TLS)")
    serve.add_argument("--username", help="the dashboard's read-only service account")
    serve.add_argument("--password-file", type=Path, help="first line is the password")
    serve.add_argument("--client-id",
                       help="MQTT client id (default a random one); where the broker wants "
                            "the certificate's CN as client id, give that CN and one --broker")
    serve.add_argument("--bind", default=DEFAULT_BIND, metavar="HOST:PORT",
                       help=f"HTTP address (default {DEFAULT_BIND}; port 0 picks a free one)")
    serve.add_argument("--auth-file", type=Path,
                       help="mosquitto_passwd-format users for HTTP basic auth; "
                            "required to bind anything but loopback")
    serve.add_argument("--site", help="only this site")
    serve.add_argument("--inventory-file", type=Path,
                       help="client ids expected in the fleet, one a line ('never seen' until "
                            "they report)")
    serve.add_argument("--stale-after", type=float, default=180.0, metavar="SECONDS",
                       help="offline after this long without a message (default 180: three "
                            "missed status reports at the agent's default interval)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    serve.set_defaults(func=run)


def split(text: str, option: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"{option} {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def first_line(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError) as err:
        raise UsageError(f"{option} {path}: {err or 'empty file'}") from err


def users(path: Path | None, bind_host: str) -> PasswordFile | None:
    if path is None:
        if not loopback(bind_host):
            raise UsageError(f"--bind {bind_host}: not a loopback address; the fleet's state "
                             "is not for everyone: give --auth-file (or bind 127.0.0.1 and "
                             "put the load balancer with authentication in front)")
        return None
    try:
        found = PasswordFile.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, LineError) as err:
        raise UsageError(f"--auth-file: {err}") from err
    if not found.hashes:
        raise UsageError(f"--auth-file {path}: no users")
    return found


def inventory(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--inventory-file: {err}") from err
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        bind = split(args.bind, "--bind")
        auth = users(args.auth_file, bind[0])
        expected = inventory(args.inventory_file)
        password = first_line(args.password_file, "--password-file") if args.password_file \
            else None
        if args.client_id is not None and len(args.broker) > 1:
            raise UsageError(f"--client-id {args.client_id!r} with {len(args.broker)} --broker: "
                             "nodes of one cluster would take the session from each other; "
                             "give one --broker (the load balancer) or no --client-id")
        nodes = [Access(*split(b, "--broker"), args.tls_ca, args.tls_cert, args.tls_key,
                        args.username, password, args.client_id) for b in args.broker]
        if args.stale_after <= 0:
            raise UsageError("--stale-after must be positive")
    except UsageError as err:
        print(f"roost fleet serve: {err}", file=sys.stderr)
        return 2
    # the HTTP and MQTT parts only when serving: `roost fleet status` stays light
    from roost.dashboard.app import App  # noqa: PLC0415

    app = App(nodes, args.site, expected, args.stale_after)
    try:
        host, port = app.listen(bind, auth)
    except OSError as err:
        print(f"roost fleet serve: --bind {args.bind}: {err}", file=sys.stderr)
        return 2
    where = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    sys.stderr.write(f"roost dashboard listening on {where}\n")
    sys.stderr.flush()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    sdnotify.notify("READY=1", f"STATUS=serving {where}")
    try:
        app.serve()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0
