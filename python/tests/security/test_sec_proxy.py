"""PROXY protocol v1/v2 from hand-built bytes, fuzzing, and the trusted-peer policy."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.mqtt.errors import InsufficientData
from roost.security.proxy import (
    V2_SIGNATURE,
    ProxyError,
    ProxyInfo,
    ProxyPolicy,
    parse_proxy,
)

PROXY, LOCAL = 0x21, 0x20
TCP4, TCP6, UNIX, UNSPEC, UDP4 = 0x11, 0x21, 0x31, 0x00, 0x12


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


def v2(
    command: int = PROXY, family: int = TCP4, block: bytes | None = None, tlvs: bytes = b""
) -> bytes:
    if block is None:
        block = bytes([10, 0, 0, 7, 192, 168, 1, 2]) + struct.pack("!HH", 40000, 8883)
    body = block + tlvs
    return V2_SIGNATURE + bytes([command, family]) + struct.pack("!H", len(body)) + body


def ssl_tlv(client: int, verify: int, cn: bytes | None = None) -> bytes:
    subs = tlv(0x21, b"TLSv1.3") + (tlv(0x22, cn) if cn is not None else b"")
    return tlv(0x20, struct.pack("!BI", client, verify) + subs)


def test_v1_tcp4_and_the_bytes_after_it() -> None:
    data = b"PROXY TCP4 203.0.113.9 10.0.0.1 51234 1883\r\n\x10\x0c"
    info, used = parse_proxy(data)
    assert info == ProxyInfo("203.0.113.9", 51234, "10.0.0.1", 1883, version=1)
    assert data[used:] == b"\x10\x0c"


def test_v1_tcp6_and_unknown() -> None:
    info, _ = parse_proxy(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n")
    assert (info.source_addr, info.dest_port) == ("2001:db8::1", 65535)
    info, used = parse_proxy(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nrest")
    assert info.source_addr is None and used == len(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")
    assert parse_proxy(b"PROXY UNKNOWN\r\n")[0].source_addr is None


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n",  # LF only
        b"PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n",
        b"PROXY TCP4 10.0.0.1  10.0.0.2 1 2\r\n",  # two spaces
        b"PROXY TCP4 2001:db8::1 10.0.0.2 1 2\r\n",  # family mismatch
        b"PROXY TCP6 10.0.0.1 10.0.0.2 1 2\r\n",
        b"PROXY TCP4 10.0.0.999 10.0.0.2 1 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 -1 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n",
        b"PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 1 \xff\r\n",
        b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n",  # longer than 107 bytes
        b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c",  # a plain MQTT CONNECT
        b"GET / HTTP/1.1\r\n",
    ],
)
def test_v1_malformed(line: bytes) -> None:
    with pytest.raises(ProxyError):
        parse_proxy(line)


def test_every_prefix_is_insufficient() -> None:
    for header in (b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n", v2(tlvs=ssl_tlv(7, 0, b"pi"))):
        for end in range(len(header)):
            with pytest.raises(InsufficientData):
                parse_proxy(header[:end])
        assert parse_proxy(memoryview(header + b"more"))[1] == len(header)


def test_v2_inet_and_inet6() -> None:
    info, used = parse_proxy(v2() + b"\x10")
    assert info == ProxyInfo("10.0.0.7", 40000, "192.168.1.2", 8883)
    assert used == 16 + 12
    block = ipaddress.IPv6Address("2001:db8::7").packed + bytes(16) + struct.pack("!HH", 5, 6)
    info, _ = parse_proxy(v2(family=TCP6, block=block))
    assert (info.source_addr, info.dest_addr, info.source_port) == ("2001:db8::7", "::", 5)


def test_v2_local_health_check_and_unspec() -> None:
    info, used = parse_proxy(v2(command=LOCAL, family=UNSPEC, block=b""))
    assert info.local and info.source_addr is None and used == 16
    info, _ = parse_proxy(v2(family=UNSPEC, block=b"ignored"))
    assert not info.local and info.source_addr is None
    info, _ = parse_proxy(v2(family=UNIX, block=bytes(216)))
    assert info.source_addr is None


def test_v2_ssl_tlvs() -> None:
    alpn = tlv(0x01, b"mqtt") + tlv(0x04, b"\x00" * 3)  # skipped: ALPN, NOOP
    info, _ = parse_proxy(v2(tlvs=alpn + ssl_tlv(0x07, 0, "pi-0001é".encode())))
    assert info.ssl and info.ssl_verified and info.ssl_cn == "pi-0001é"
    info, _ = parse_proxy(v2(tlvs=ssl_tlv(0x01, 0)))  # TLS, but no client certificate
    assert info.ssl and not info.ssl_verified and info.ssl_cn is None
    info, _ = parse_proxy(v2(tlvs=ssl_tlv(0x03, 1, b"pi-0001")))  # certificate failed
    assert info.ssl and not info.ssl_verified and info.ssl_cn == "pi-0001"
    info, _ = parse_proxy(v2(tlvs=alpn))
    assert not info.ssl and info.ssl_cn is None


@pytest.mark.parametrize(
    "header",
    [
        V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12),  # version 1
        V2_SIGNATURE + b"\x22\x11\x00\x0c" + bytes(12),  # command 2
        v2(block=bytes(8)),  # INET block too short
        v2(family=UDP4),
        v2(family=0x41),
        v2(tlvs=b"\x20\x00"),  # truncated TLV
        v2(tlvs=tlv(0x01, b"h2")[:-1] + b"\xff\xff"),  # TLV longer than the header
        v2(tlvs=tlv(0x20, b"\x01\x00")),  # SSL TLV without verify field
        v2(tlvs=ssl_tlv(0x07, 0, b"\xff\xfe")),  # CN not UTF-8
    ],
)
def test_v2_malformed(header: bytes) -> None:
    with pytest.raises(ProxyError):
        parse_proxy(header)


@given(st.binary(max_size=300))
def test_fuzz_any_bytes(data: bytes) -> None:
    _parse_or_refuse(data)


@given(
    st.sampled_from([b"PROXY ", b"PROXY TCP4 ", V2_SIGNATURE, v2()[:16], v2(tlvs=ssl_tlv(7, 0))]),
    st.binary(max_size=200),
)
def test_fuzz_after_a_valid_start(start: bytes, tail: bytes) -> None:
    _parse_or_refuse(start + tail)


def _parse_or_refuse(data: bytes) -> None:
    try:
        info, used = parse_proxy(data)
    except (ProxyError, InsufficientData):
        return
    assert 0 < used <= len(data)
    assert isinstance(info, ProxyInfo)


def test_policy_trusts_only_the_load_balancers() -> None:
    policy = ProxyPolicy(["10.0.0.0/29", ipaddress.ip_network("2001:db8::/64")])
    assert policy.trusted("10.0.0.5")
    assert policy.trusted(ipaddress.ip_address("10.0.0.7"))
    assert policy.trusted("::ffff:10.0.0.5")  # seen through a dual-stack socket
    assert policy.trusted("2001:db8::42")
    assert not policy.trusted("10.0.0.8")
    assert not policy.trusted("::ffff:10.0.0.8")
    assert not policy.trusted("127.0.0.1")
    assert not ProxyPolicy([]).trusted("10.0.0.5")
