"""PROXY protocol end to end: raw sockets play the load balancer (v1, v2, malformed,
missing, untrusted), and a real HAProxy ends TLS and forwards the verified CN
(`send-proxy-v2-ssl-cn`) to a broker listener with `proxy_tls_identity = true`: in clear,
or re-encrypted with the load balancer's own certificate (the kit's termination mode)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.mqtt.codec import encode
from roost.mqtt.packets import MQTT_5, Connect
from security.certs import Issued, client_context, issue

from .broker import WAIT, Broker, Client, haproxy, tls_table
from .pki import Pki

V1, UNTRUSTED, HAPROXIED, REENCRYPTED = 0, 1, 2, 3


@dataclass
class Lab:
    ca: Issued
    device: Issued
    broker: Broker
    haproxy_port: int
    reencrypt_port: int


def _config(directory: Path, ca: Issued, server: Issued) -> Path:
    config = directory / "broker.toml"
    config.write_text(f"""\
[[listener]]
name = "lb-v1"
bind = "127.0.0.1:0"
proxy_protocol = "v1"
trusted_proxies = ["127.0.0.1"]
allow_anonymous = true

[[listener]]
name = "lb-elsewhere"
bind = "127.0.0.1:0"
proxy_protocol = "any"
trusted_proxies = ["10.0.0.0/8"]
allow_anonymous = true

[[listener]]
name = "lb-tls"
bind = "127.0.0.1:0"
proxy_protocol = "v2"
trusted_proxies = ["127.0.0.1/32"]
proxy_tls_identity = true

[[listener]]
name = "lb-reencrypted"
bind = "127.0.0.1:0"
{tls_table(ca, server)}
proxy_protocol = "v2"
trusted_proxies = ["127.0.0.1/32"]
proxy_tls_identity = true
""")
    return config


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Lab]:
    if not shutil.which("haproxy"):
        pytest.skip("apt-get install haproxy")
    tmp = tmp_path_factory.mktemp("proxy")
    ca, device = pki.ca, pki.device
    lb = issue(ca, "node:lb-1", server=True, client_too=True)
    broker = Broker(_config(tmp, ca, pki.server), listeners=4)
    front = f"ssl crt {lb.bundle()} ca-file {ca.cert_path} verify required"
    (tmp / "re").mkdir()
    back = f"ssl crt {lb.bundle()} ca-file {ca.cert_path} verify required verifyhost localhost"
    try:
        with haproxy(tmp, broker.ports[HAPROXIED], "send-proxy-v2-ssl-cn", front) as port, \
                haproxy(tmp / "re", broker.ports[REENCRYPTED],
                        f"{back} send-proxy-v2-ssl-cn", front) as again:
            yield Lab(ca, device, broker, port, again)
    finally:
        assert broker.stop() == 0


def _reason(answer: bytes) -> int | None:
    """The reason code of a v5 CONNACK (its properties are short), None if no CONNACK."""
    return answer[3] if answer[:1] == b"\x20" and len(answer) >= 4 else None


def _exchange(port: int, header: bytes, client_id: str = "raw") -> bytes:
    """Send header + CONNECT; what the broker answers before it closes (b"" if nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(header + encode(Connect(client_id), MQTT_5))
        try:
            return s.recv(4)
        except ConnectionResetError:
            return b""


def test_v1_header_from_a_trusted_proxy_names_the_real_client(lab: Lab) -> None:
    header = b"PROXY TCP4 203.0.113.7 127.0.0.1 4242 1883\r\n"
    assert _reason(_exchange(lab.broker.ports[V1], header, "behind-lb")) == 0
    assert lab.broker.wait_log(r"connected 'behind-lb' from 203\.0\.113\.7:4242 \(MQTT 5")


def test_header_split_across_packets_is_reassembled(lab: Lab) -> None:
    header = b"PROXY TCP6 2001:db8::5 ::1 5000 1883\r\n"
    with socket.create_connection(("127.0.0.1", lab.broker.ports[V1]), timeout=WAIT) as s:
        for i in range(0, len(header), 7):
            s.sendall(header[i:i + 7])
        s.sendall(encode(Connect("split"), MQTT_5))
        assert _reason(s.recv(4)) == 0
    assert lab.broker.wait_log(r"connected 'split' from \[2001:db8::5\]:5000")


@pytest.mark.parametrize(("name", "header"), [
    ("missing", b""),
    ("malformed", b"PROXY TCP4 300.1.2.3 127.0.0.1 1 2\r\n"),
    ("garbage", b"PROXIMITY ALERT\r\n"),
    ("v2 on a v1 listener", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"
     b"\xcb\x00\x71\x07\x7f\x00\x00\x01\x10\x92\x07\x5b"),
])
def test_listener_requiring_proxy_closes_bad_or_missing_headers(
        lab: Lab, name: str, header: bytes) -> None:
    assert _exchange(lab.broker.ports[V1], header, f"bad-{name}") == b""


def test_header_from_an_untrusted_address_is_refused(lab: Lab) -> None:
    header = b"PROXY TCP4 10.0.0.9 127.0.0.1 4242 1883\r\n"
    assert _exchange(lab.broker.ports[UNTRUSTED], header, "spoofer") == b""
    assert lab.broker.wait_log("not a trusted proxy on lb-elsewhere")


def test_haproxy_forwards_the_verified_cn_as_identity(lab: Lab) -> None:
    client = Client(lab.haproxy_port, "pi-0001", context=client_context(lab.ca, lab.device))
    try:
        assert client.accepted, client.result
        sock = client.client.socket()
        assert isinstance(sock, socket.socket)
        local = sock.getsockname()
        assert lab.broker.wait_log(
            rf"connected 'pi-0001' from 127\.0\.0\.1:{local[1]} \(MQTT 5, user 'pi-0001'\)")
    finally:
        client.close()


def test_haproxy_cn_must_match_the_client_id(lab: Lab) -> None:
    client = Client(lab.haproxy_port, "pi-0002", context=client_context(lab.ca, lab.device))
    client.close()
    assert client.result == 0x87
    assert lab.broker.wait_log("client id 'pi-0002' is not its certificate identity 'pi-0001'")


def test_haproxied_listener_without_a_certificate_is_anonymous_and_refused(lab: Lab) -> None:
    # HAProxy requires certificates, so play it: a v2 header without SSL TLVs.
    header = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"
              b"\xcb\x00\x71\x07\x7f\x00\x00\x01\x10\x92\x07\x5b")
    assert _reason(_exchange(lab.broker.ports[HAPROXIED], header, "no-cert")) == 0x87


def test_reencrypted_haproxy_forwards_the_verified_cn(lab: Lab) -> None:
    """The broker's TLS peer is the load balancer; the client is the CN it verified."""
    client = Client(lab.reencrypt_port, "pi-0001", context=client_context(lab.ca, lab.device))
    try:
        assert client.accepted, client.result
        assert lab.broker.wait_log(r"connected 'pi-0001' from 127\.0\.0\.1:\d+ \(MQTT 5, "
                                   r"user 'pi-0001'\)")
    finally:
        client.close()
    wrong = Client(lab.reencrypt_port, "pi-0002", context=client_context(lab.ca, lab.device))
    wrong.close()
    assert wrong.result == 0x87  # the forwarded CN, not the LB's, must be the client id


def test_reencrypted_listener_refuses_a_device_that_bypasses_the_proxy(lab: Lab) -> None:
    # A Pi's own certificate straight to the broker port: no PROXY header, closed.
    direct = Client(lab.broker.ports[REENCRYPTED], "pi-0001",
                    context=client_context(lab.ca, lab.device))
    direct.close()
    assert not direct.accepted
