"""A failed TLS handshake is logged once with the client's address and OpenSSL's reason
(then at most once a minute per address) and counted in roost_tls_failures."""

from __future__ import annotations

import re
import socket
import ssl
import time
import urllib.request
from pathlib import Path

from security.certs import Issued, client_context, issue, make_ca

from .broker import METRICS, WAIT, Broker, Client, tls_table
from .pki import Pki

FAILED = r"TLS handshake with 127\.0\.0\.1:{port} on devices failed: {reason}"


def _failures(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=WAIT) as answer:
        text = answer.read().decode()
    match = re.search(r"^roost_tls_failures_total (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))


def _wait_failures(port: int, count: int) -> float:
    deadline = time.monotonic() + WAIT
    while (seen := _failures(port)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def _handshake(port: int, context: ssl.SSLContext) -> int:
    """Try a handshake; returns the local port it came from."""
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        local: int = raw.getsockname()[1]
        try:
            with context.wrap_socket(raw) as tls:
                tls.recv(1)  # TLS 1.3: the server's verdict on our certificate comes now
        except (ssl.SSLError, OSError):
            pass
    return local


def _start(tmp_path: Path, ca: Issued, server: Issued, limits: str = "") -> tuple[Broker, int, int]:
    """A broker with one mutual-TLS listener and metrics: (broker, metrics port, MQTT port)."""
    config = tmp_path / "broker.toml"
    config.write_text(f"""\
metrics = {{ bind = "127.0.0.1:0" }}
{limits}
[[listener]]
name = "devices"
bind = "127.0.0.1:0"
{tls_table(ca, server)}
""")
    broker = Broker(config)
    match = METRICS.search(broker.text)
    assert match, broker.text
    return broker, int(match.group(1)), broker.ports[0]


def test_certificate_from_another_ca_is_logged_once_and_counted(tmp_path: Path,
                                                               pki: Pki) -> None:
    ca, server, device = pki.ca, pki.server, pki.device
    rogue: Issued = issue(make_ca(tmp_path, cn="Rogue CA", name="rogue-ca"), "pi-0001",
                          name="rogue")
    broker, http, mqtt = _start(tmp_path, ca, server)
    try:
        assert _failures(http) == 0
        port = _handshake(mqtt, client_context(ca, rogue))
        assert broker.wait_log(FAILED.format(
            port=port, reason="certificate verify failed: unable to get local issuer"))
        assert _wait_failures(http, 1) == 1
        _handshake(mqtt, client_context(ca, rogue))  # again within the minute: counted only
        _handshake(mqtt, client_context(ca))  # no certificate at all: counted only
        assert _wait_failures(http, 3) == 3
        good = Client(mqtt, "pi-0001", context=client_context(ca, device))
        good.close()
        assert good.accepted, good.result
        assert len(re.findall(r"TLS handshake with", broker.text)) == 1
        assert "Traceback" not in broker.text
    finally:
        assert broker.stop() == 0


def test_handshakes_in_progress_are_bounded(tmp_path: Path, pki: Pki) -> None:
    """max_handshakes: beyond it a connection waits in the backlog, unanswered, while the
    broker keeps serving; it gets its handshake once a slot is free."""
    ca, server, device = pki.ca, pki.server, pki.device
    broker, http, mqtt = _start(tmp_path, ca, server,
                                "[limits]\nmax_handshakes = 2\nconnect_timeout = 60")
    try:
        silent = [socket.create_connection(("127.0.0.1", mqtt), timeout=WAIT)
                  for _ in range(2)]  # they hold both slots: no ClientHello
        context = client_context(ca, device)
        context.check_hostname = False
        with socket.create_connection(("127.0.0.1", mqtt), timeout=2) as raw:
            try:
                context.wrap_socket(raw)
                raise AssertionError("a third handshake was answered past max_handshakes")
            except TimeoutError:
                pass
        assert _failures(http) == 0  # the loop still serves
        for s in silent:
            s.close()
        good = Client(mqtt, "pi-0001", context=client_context(ca, device))
        good.close()
        assert good.accepted, good.result
        assert "Traceback" not in broker.text
    finally:
        assert broker.stop() == 0
