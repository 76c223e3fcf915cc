"""PROXY protocol in front of a TLS listener (HAProxy in TLS passthrough: `mode tcp`,
`send-proxy-v2`): the header comes in clear, then the client's own TLS handshake with
the broker, so the client certificate (and the CRL) still decide who it is, and the
address the header names is the one the broker logs.

Raw sockets play the load balancer (the header and the ClientHello in one segment, as
HAProxy may send them; untrusted, malformed, missing headers), and a real HAProxy with a
paho client behind it shows the whole path."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.mqtt.codec import encode
from roost.mqtt.packets import MQTT_5, Connect
from roost.security.proxy import V2_SIGNATURE
from security.certs import Issued, client_context, issue, make_ca

from .broker import WAIT, Broker, Client, haproxy, tls_table
from .pki import Pki

pytestmark = pytest.mark.skipif(not shutil.which("haproxy"), reason="apt-get install haproxy")
PASSTHROUGH, ELSEWHERE = 0, 1


@dataclass
class Lab:
    ca: Issued
    device: Issued
    revoked: Issued
    broker: Broker
    haproxy_port: int

    def context(self, client: Issued | None) -> ssl.SSLContext:
        return client_context(self.ca, client)


def _config(directory: Path, ca: Issued, server: Issued, crl: Path) -> Path:
    config = directory / "broker.toml"
    config.write_text(f"""\
[[listener]]
name = "passthrough"
bind = "127.0.0.1:0"
{tls_table(ca, server, crl=crl)}
proxy_protocol = "v2"
trusted_proxies = ["127.0.0.1/32"]

[[listener]]
name = "lb-elsewhere"
bind = "127.0.0.1:0"
{tls_table(ca, server)}
proxy_protocol = "any"
trusted_proxies = ["10.0.0.0/8"]
""")
    return config


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("proxytls")
    broker = Broker(_config(tmp, pki.ca, pki.server, pki.crl), listeners=2)
    try:  # TLS passthrough: no ssl on the frontend, the broker ends TLS
        with haproxy(tmp, broker.ports[PASSTHROUGH], "send-proxy-v2") as port:
            yield Lab(pki.ca, pki.device, pki.revoked, broker, port)
    finally:
        assert broker.stop() == 0


def v2_header(source: str, port: int, version: int = 2) -> bytes:
    """A PROXY v2 PROXY/TCP4 header, as HAProxy's send-proxy-v2 writes it."""
    addresses = ipaddress.IPv4Address(source).packed + bytes([127, 0, 0, 1])
    return (V2_SIGNATURE + bytes([version << 4 | 1, 0x11]) + struct.pack("!H", 12)
            + addresses + struct.pack("!HH", port, 8883))


class Tls:
    """TLS over a socket through memory BIOs, so the first segment can carry `prefix`
    (the PROXY header) and the ClientHello together."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, prefix: bytes) -> None:
        context.check_hostname = False
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=False)
        pending = prefix
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(pending + self.outgoing.read())
                pending = b""
                self._fill()
        sock.sendall(self.outgoing.read())

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the broker")
        self.incoming.write(data)

    def exchange(self, data: bytes, size: int) -> bytes:
        """Send data, return the first `size` plaintext bytes of the answer."""
        self.obj.write(data)
        self.sock.sendall(self.outgoing.read())
        answer = b""
        while len(answer) < size:
            try:
                answer += self.obj.read(size - len(answer))
            except ssl.SSLWantReadError:
                self._fill()
        return answer


def _connack(lab: Lab, port: int, header: bytes, client: Issued | None,
             client_id: str) -> bytes:
    """header, then TLS, then CONNECT: the CONNACK's first 4 bytes; raises ssl.SSLError or
    ConnectionError when the broker closes first."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        tls = Tls(sock, lab.context(client), header)
        return tls.exchange(encode(Connect(client_id), MQTT_5), 4)


def _refused(lab: Lab, port: int, header: bytes, client: Issued | None = None) -> bool:
    try:
        answer = _connack(lab, port, header, client or lab.device, "pi-0001")
    except (ssl.SSLError, ConnectionError):
        return True
    return answer[:1] != b"\x20" or answer[3] != 0


def test_header_then_handshake_names_the_client_by_certificate_and_proxy(lab: Lab) -> None:
    header = v2_header("198.51.100.7", 4242)
    answer = _connack(lab, lab.broker.ports[PASSTHROUGH], header, lab.device, "pi-0001")
    assert answer[:1] == b"\x20" and answer[3] == 0
    assert lab.broker.wait_log(
        r"connected 'pi-0001' from 198\.51\.100\.7:4242 \(MQTT 5, user 'pi-0001'\)")


def test_header_split_byte_by_byte_before_the_handshake(lab: Lab) -> None:
    header = v2_header("198.51.100.8", 4343)
    with socket.create_connection(("127.0.0.1", lab.broker.ports[PASSTHROUGH]),
                                  timeout=WAIT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(header) - 1):
            sock.sendall(header[i:i + 1])
        tls = Tls(sock, lab.context(lab.device), header[-1:])
        answer = tls.exchange(encode(Connect("pi-0001"), MQTT_5), 4)
    assert answer[3] == 0
    assert lab.broker.wait_log(r"connected 'pi-0001' from 198\.51\.100\.8:4343")


def test_client_certificate_still_decides_behind_the_proxy(lab: Lab, tmp_path: Path) -> None:
    header = v2_header("198.51.100.9", 4444)
    answer = _connack(lab, lab.broker.ports[PASSTHROUGH], header, lab.device, "pi-0002")
    assert answer[3] == 0x87  # the CN is pi-0001
    assert _refused(lab, lab.broker.ports[PASSTHROUGH], header, lab.revoked)  # the CRL
    rogue_ca = make_ca(tmp_path, cn="Rogue CA")
    assert _refused(lab, lab.broker.ports[PASSTHROUGH], header,
                    issue(rogue_ca, "pi-0001", name="rogue"))


def test_header_from_an_untrusted_address_is_refused(lab: Lab) -> None:
    assert _refused(lab, lab.broker.ports[ELSEWHERE], v2_header("198.51.100.10", 1))
    assert lab.broker.wait_log("not a trusted proxy on lb-elsewhere")


def test_bare_client_hello_where_proxy_is_required_is_refused(lab: Lab) -> None:
    assert _refused(lab, lab.broker.ports[PASSTHROUGH], b"")
    assert lab.broker.wait_log("no PROXY protocol header")


@pytest.mark.parametrize(("header", "reason"), [
    (b"PROXY TCP4 198.51.100.11 127.0.0.1 1 2\r\n", "PROXY v1 where v2 is configured"),
    (v2_header("198.51.100.12", 1, version=3), "PROXY v2 header with version 3"),
    (V2_SIGNATURE + b"\x21\x11\x00\x00", "PROXY v2 address block is shorter"),
    (V2_SIGNATURE + b"\x21\x11\xff\xff", "PROXY header too long"),
    (b"PROXIMITY ALERT\r\n", "no PROXY protocol header"),
], ids=["v1-on-v2", "bad-version", "no-address", "too-long", "garbage"])
def test_malformed_header_is_refused(lab: Lab, header: bytes, reason: str) -> None:
    assert _refused(lab, lab.broker.ports[PASSTHROUGH], header)
    assert lab.broker.wait_log(rf"closing 127\.0\.0\.1:\d+: {reason}")


def test_haproxy_passthrough_with_paho_and_a_client_certificate(lab: Lab) -> None:
    client = Client(lab.haproxy_port, "pi-0001", context=lab.context(lab.device))
    try:
        assert client.accepted, client.result
        sock = client.client.socket()
        assert isinstance(sock, (socket.socket, ssl.SSLSocket))
        local = sock.getsockname()
        assert lab.broker.wait_log(
            rf"connected 'pi-0001' from 127\.0\.0\.1:{local[1]} \(MQTT 5, user 'pi-0001'\)")
    finally:
        client.close()
