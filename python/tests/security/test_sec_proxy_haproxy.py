"""Real HAProxy headers (send-proxy, send-proxy-v2, send-proxy-v2-ssl-cn, health checks)
read from a plain loopback socket and parsed by `parse_proxy`."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.mqtt.errors import InsufficientData
from roost.security.proxy import ProxyInfo, parse_proxy

from .certs import Issued, client_context, issue, make_ca
from .procs import HOST, daemon

pytestmark = pytest.mark.skipif(not shutil.which("haproxy"), reason="apt-get install haproxy")

ROUTES = {  # frontend name: (bind options, server options)
    "v1": ("", "send-proxy"),
    "v2": ("", "send-proxy-v2"),
    "tls": ("ssl crt {bundle} ca-file {ca} verify optional", "send-proxy-v2-ssl-cn"),
    "check": ("", "send-proxy-v2 check check-send-proxy inter 100ms"),
}


@dataclass
class Route:
    front: socket.socket  # HAProxy accepts here (inherited fd)
    target: socket.socket  # the test plays the broker here


@dataclass
class Lab:
    routes: dict[str, Route]
    ca: Issued
    device: Issued
    log: Path

    def address(self, name: str) -> tuple[str, int]:
        host, port = self.routes[name].front.getsockname()[:2]
        return host, port


def _config(routes: dict[str, Route], ca: Issued, server: Issued) -> str:
    lines = [
        "global",
        "  log stderr format raw local0 info",
        "defaults",
        "  mode tcp",
        "  log global",
        "  timeout connect 5s",
        "  timeout client 20s",
        "  timeout server 20s",
    ]
    for name, (bind_options, options) in ROUTES.items():
        route = routes[name]
        bind = bind_options.format(bundle=server.bundle(), ca=ca.cert_path)
        target = route.target.getsockname()[1]
        lines += [
            f"frontend fe_{name}",
            f"  bind fd@{route.front.fileno()} {bind}",
            f"  default_backend be_{name}",
            f"backend be_{name}",
            f"  server s1 {HOST}:{target} {options}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("haproxy")
    ca = make_ca(tmp)
    server, device = issue(ca, "localhost", server=True), issue(ca, "pi-0001")
    routes = {}
    for name in ROUTES:
        front, target = socket.create_server((HOST, 0)), socket.create_server((HOST, 0))
        front.set_inheritable(True)
        target.settimeout(15)
        routes[name] = Route(front, target)
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(_config(routes, ca, server))
    fds = [r.front.fileno() for r in routes.values()]
    try:
        with daemon(["haproxy", "-f", str(cfg), "-db"], tmp / "log", pass_fds=fds):
            yield Lab(routes, ca, device, tmp / "log")
    finally:
        for route in routes.values():
            route.front.close()
            route.target.close()


def receive(lab: Lab, name: str, payload_size: int) -> tuple[ProxyInfo, bytes]:
    """Accept what HAProxy forwards, parse the header, return it with the payload."""
    try:
        conn, _ = lab.routes[name].target.accept()
    except TimeoutError:
        pytest.fail(f"nothing forwarded; haproxy log: {lab.log.read_text()[-2000:]}")
    with conn:
        conn.settimeout(10)
        data = b""
        while True:
            try:
                info, used = parse_proxy(data)
                break
            except InsufficientData:
                chunk = conn.recv(4096)
                assert chunk, "connection closed inside the header"
                data += chunk
        while len(data) - used < payload_size:
            chunk = conn.recv(4096)
            assert chunk, "connection closed before the payload"
            data += chunk
        return info, data[used:]


def test_send_proxy_v1(lab: Lab) -> None:
    with socket.create_connection(lab.address("v1"), timeout=10) as client:
        client.sendall(b"\x10hello")
        info, payload = receive(lab, "v1", 6)
        assert info.version == 1
        assert (info.source_addr, info.source_port) == client.getsockname()
        assert (info.dest_addr, info.dest_port) == lab.address("v1")
        assert payload == b"\x10hello"


def test_send_proxy_v2(lab: Lab) -> None:
    with socket.create_connection(lab.address("v2"), timeout=10) as client:
        client.sendall(b"\x10hello")
        info, payload = receive(lab, "v2", 6)
        assert info.version == 2 and not info.local and not info.ssl
        assert (info.source_addr, info.source_port) == client.getsockname()
        assert (info.dest_addr, info.dest_port) == lab.address("v2")
        assert payload == b"\x10hello"


def test_send_proxy_v2_ssl_cn_with_client_certificate(lab: Lab) -> None:
    context = client_context(lab.ca, lab.device)
    with (
        socket.create_connection(lab.address("tls"), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as client,
    ):
        client.sendall(b"hello")
        info, payload = receive(lab, "tls", 5)
        assert info.ssl and info.ssl_verified
        assert info.ssl_cn == "pi-0001"
        assert (info.source_addr, info.source_port) == client.getsockname()
        assert payload == b"hello"  # TLS ends at HAProxy: the broker reads plain MQTT


def test_send_proxy_v2_ssl_without_client_certificate(lab: Lab) -> None:
    context = client_context(lab.ca)
    with (
        socket.create_connection(lab.address("tls"), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as client,
    ):
        client.sendall(b"hello")
        info, payload = receive(lab, "tls", 5)
        assert info.ssl and not info.ssl_verified and info.ssl_cn is None
        assert payload == b"hello"


def test_health_check_sends_local(lab: Lab) -> None:
    info, payload = receive(lab, "check", 0)
    assert info.local and info.source_addr is None
    assert payload == b""
