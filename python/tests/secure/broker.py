"""A real `roost broker run --config` for the end-to-end security tests, and paho clients
that report how their CONNECT ended."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from roost.security.passwd import hash_password
from security.procs import daemon

if TYPE_CHECKING:
    from security.certs import Issued

LISTENING = re.compile(r"roost broker listening on 127\.0\.0\.1:(\d+)")
METRICS = re.compile(r"roost broker metrics on 127\.0\.0\.1:(\d+)")
WAIT = 20.0  # bound on every wait; a loaded machine is slow, a broken broker never answers
V5 = MQTTProtocolVersion.MQTTv5
V311 = MQTTProtocolVersion.MQTTv311


PASSWORD = "s3cret"  # the dashboard service account's, in every password file here


def tls_table(ca: Issued, server: Issued, **extra: object) -> str:
    """A listener's `tls = {...}` line: TOML inline tables must fit on one line."""
    items = [f'cert = "{server.cert_path}"', f'key = "{server.key_path}"',
             f'ca = "{ca.cert_path}"']
    for key, value in extra.items():
        items.append(f"{key} = " + (str(value).lower() if isinstance(value, bool)
                                    else f'"{value}"'))
    return "tls = { " + ", ".join(items) + " }"


def write_passwd(directory: Path, password: str = PASSWORD) -> Path:
    passwd = directory / "passwd"
    passwd.write_text(f"dashboard:{hash_password(password)}\n")
    return passwd


@contextmanager
def haproxy(directory: Path, backend: int, server: str, bind: str = "") -> Iterator[int]:
    """A real HAProxy (`mode tcp`) on a free loopback port, `bind` options on its frontend,
    `server` options on its one server 127.0.0.1:backend; yields the frontend's port."""
    front = socket.create_server(("127.0.0.1", 0))
    front.set_inheritable(True)  # HAProxy binds fd@N: no port race
    cfg = directory / "haproxy.cfg"
    cfg.write_text(f"""\
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind fd@{front.fileno()} {bind}
  default_backend be
backend be
  server roost 127.0.0.1:{backend} {server}
""")
    try:
        with daemon(["haproxy", "-f", str(cfg), "-db"], directory / "haproxy.log",
                    pass_fds=[front.fileno()]):
            yield front.getsockname()[1]
    finally:
        front.close()


class Broker:
    """Started from a config file; `ports` in listener order, `log` is its stderr."""

    def __init__(self, config: Path, listeners: int = 1) -> None:
        self.log_path = config.with_suffix(".log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "roost", "broker", "run", "--config", str(config)],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self.ports: list[int] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.wait_log(LISTENING, listeners), f"broker did not start: {self.text}"
        self.ports = [int(m.group(1)) for m in map(LISTENING.search, self.lines) if m]

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self.changed:
                self.lines.append(raw.decode(errors="replace"))
                self.changed.notify_all()

    @property
    def text(self) -> str:
        with self.changed:
            return "".join(self.lines)

    def wait_log(self, pattern: re.Pattern[str] | str, count: int = 1) -> bool:
        """Wait until `count` log lines match `pattern`."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + WAIT
        with self.changed:
            while sum(1 for line in self.lines if regex.search(line)) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return sum(1 for line in self.lines if regex.search(line)) >= count
                self.changed.wait(min(left, 0.5))
            return True

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(WAIT)
            self.log_path.write_text(self.text)


class Client:
    """A paho client; `result` is the CONNACK reason (int) or an exception text when the
    TLS handshake or the socket failed."""

    def __init__(self, port: int, client_id: str, *, protocol: MQTTProtocolVersion = V5,
                 context: ssl.SSLContext | None = None, username: str | None = None,
                 password: str | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol)
        self.client.reconnect_delay_set(60, 120)  # never reconnect within a test
        if context is not None:
            context.check_hostname = False  # the server certificate names localhost
            self.client.tls_set_context(context)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.done = threading.Event()
        self.gone = threading.Event()
        self.result: int | str | None = None
        self.disconnect_reason: int | None = None
        self.messages: list[mqtt.MQTTMessage] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        try:
            self.client.connect("127.0.0.1", port, keepalive=60)
        except (OSError, ssl.SSLError) as e:
            self.result = f"{type(e).__name__}: {e}"
            self.done.set()
            return
        self.client.loop_start()
        self.done.wait(WAIT)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: object, props: object) -> None:
        self.result = int(getattr(reason, "value", reason))  # type: ignore[call-overload]
        self.done.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: object, props: object) -> None:
        if self.result is None:
            self.result = f"closed: {reason}"
            self.done.set()
        self.disconnect_reason = int(getattr(reason, "value", reason))  # type: ignore[call-overload]
        self.gone.set()

    @property
    def accepted(self) -> bool:
        return self.result == 0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
