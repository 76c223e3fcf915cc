"""Sans-IO PROXY protocol v1 and v2 (HAProxy's proxy-protocol.txt) for listeners behind a
load balancer: bytes in, the client's real address and TLS identity out.

`parse_proxy` raises `InsufficientData` until the whole header is buffered and `ProxyError`
for anything malformed; the caller closes the connection on ProxyError. Only peers that
`ProxyPolicy.trusted` accepts may send a header at all.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from roost.mqtt.errors import InsufficientData

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEADER = 16

PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_CN = 0x22
PP2_CLIENT_SSL = 0x01
PP2_CLIENT_CERT_CONN = 0x02  # a certificate was presented on this connection

_FAMILIES = {0x1: (4, 12), 0x2: (16, 36), 0x3: (0, 216)}  # AF: (address size, block size)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyError(ValueError):
    """The PROXY header is malformed or unsupported: close the connection."""


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    source_addr: str | None  # None: use the socket's own peer (LOCAL, UNKNOWN, AF_UNIX)
    source_port: int | None
    dest_addr: str | None
    dest_port: int | None
    ssl: bool = False  # the client spoke TLS to the proxy
    ssl_verified: bool = False  # ... and presented a certificate the proxy verified
    ssl_cn: str | None = None  # that certificate's CN (HAProxy `send-proxy-v2-ssl-cn`)
    local: bool = False  # the proxy's own connection, e.g. a health check
    version: int = 2


def parse_proxy(buf: bytes | memoryview) -> tuple[ProxyInfo, int]:
    """Parse the header at the start of buf; returns it and how many bytes it took."""
    view = memoryview(buf)
    head = bytes(view[: len(V2_SIGNATURE)])
    if head == V2_SIGNATURE:
        return _parse_v2(view)
    if head.startswith(V1_PREFIX):
        return _parse_v1(bytes(view[:V1_MAX]))
    if V2_SIGNATURE.startswith(head) or V1_PREFIX.startswith(head):
        raise InsufficientData("partial PROXY signature")
    raise ProxyError("no PROXY protocol header")


def _parse_v1(data: bytes) -> tuple[ProxyInfo, int]:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX or b"\n" in data:
            raise ProxyError("PROXY v1 line too long or not ended by CRLF")
        raise InsufficientData("partial PROXY v1 line")
    try:
        fields = data[:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyError("PROXY v1 line is not ASCII") from None
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return ProxyInfo(None, None, None, None, version=1), end + 2
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyError("PROXY v1 needs TCP4|TCP6 SRC DST SPORT DPORT")
    version = 4 if fields[1] == "TCP4" else 6
    src, dst = (_v1_address(f, version) for f in fields[2:4])
    sport, dport = (_v1_port(f) for f in fields[4:6])
    return ProxyInfo(src, sport, dst, dport, version=1), end + 2


def _v1_address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyError(f"bad address {text!r} in PROXY v1") from None
    if address.version != version:
        raise ProxyError(f"{text!r} is not an IPv{version} address")
    return str(address)


def _v1_port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[0] == "0"):
        raise ProxyError(f"bad port {text!r} in PROXY v1")
    port = int(text)
    if port > 65535:
        raise ProxyError(f"bad port {text!r} in PROXY v1")
    return port


def _parse_v2(view: memoryview) -> tuple[ProxyInfo, int]:
    if len(view) < V2_HEADER:
        raise InsufficientData("partial PROXY v2 header")
    version_command, family_protocol, length = struct.unpack_from("!BBH", view, 12)
    if version_command >> 4 != 2:
        raise ProxyError(f"PROXY v2 header with version {version_command >> 4}")
    command = version_command & 0xF
    if command > 1:
        raise ProxyError(f"PROXY v2 command {command} is neither LOCAL nor PROXY")
    total = V2_HEADER + length
    if len(view) < total:
        raise InsufficientData("partial PROXY v2 header")
    body = view[V2_HEADER:total]
    family, protocol = family_protocol >> 4, family_protocol & 0xF
    if command == 0:  # LOCAL: the proxy speaks for itself; the block is ignored
        return ProxyInfo(None, None, None, None, local=True), total
    if family == 0:  # UNSPEC: nothing after the header is defined, so nothing is read
        return ProxyInfo(None, None, None, None), total
    if family not in _FAMILIES or protocol != 1:
        raise ProxyError(f"PROXY v2 family/protocol {family_protocol:#04x} not supported")
    size, block = _FAMILIES[family]
    if length < block:
        raise ProxyError("PROXY v2 address block is shorter than its family needs")
    addresses = _v2_addresses(body, family, size)
    ssl, verified, cn = _ssl_tlv(_tlvs(body[block:]).get(PP2_TYPE_SSL))
    return ProxyInfo(*addresses, ssl=ssl, ssl_verified=verified, ssl_cn=cn), total


def _v2_addresses(
    body: memoryview, family: int, size: int
) -> tuple[str | None, int | None, str | None, int | None]:
    if family == 0x3:  # AF_UNIX: no address worth reporting for MQTT clients
        return None, None, None, None
    make = ipaddress.IPv4Address if family == 0x1 else ipaddress.IPv6Address
    src = str(make(bytes(body[:size])))
    dst = str(make(bytes(body[size : 2 * size])))
    sport, dport = struct.unpack_from("!HH", body, 2 * size)
    return src, sport, dst, dport


def _tlvs(data: memoryview) -> dict[int, memoryview]:
    """Type-length-value records; unknown types (ALPN, AUTHORITY, NOOP...) are kept unread."""
    found: dict[int, memoryview] = {}
    at = 0
    while at < len(data):
        if len(data) - at < 3:
            raise ProxyError("truncated PROXY v2 TLV")
        kind, size = data[at], int.from_bytes(data[at + 1 : at + 3], "big")
        if at + 3 + size > len(data):
            raise ProxyError(f"PROXY v2 TLV {kind:#04x} runs past the header")
        found.setdefault(kind, data[at + 3 : at + 3 + size])
        at += 3 + size
    return found


def _ssl_tlv(value: memoryview | None) -> tuple[bool, bool, str | None]:
    if value is None:
        return False, False, None
    if len(value) < 5:
        raise ProxyError("PROXY v2 SSL TLV shorter than its client and verify fields")
    client, verify = struct.unpack_from("!BI", value)
    cn = None
    raw = _tlvs(value[5:]).get(PP2_SUBTYPE_SSL_CN)
    if raw is not None:
        try:
            cn = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ProxyError("PROXY v2 SSL CN is not UTF-8") from None
    ssl = bool(client & PP2_CLIENT_SSL)
    verified = ssl and bool(client & PP2_CLIENT_CERT_CONN) and verify == 0
    return ssl, verified, cn


class ProxyPolicy:
    """Which peers may send PROXY headers: the load balancers, nobody else."""

    def __init__(self, trusted: Iterable[IPNetwork | str]) -> None:
        self.networks = [ipaddress.ip_network(n) for n in trusted]

    def trusted(self, peer_ip: str | IPAddress) -> bool:
        address = ipaddress.ip_address(peer_ip)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports ::ffff:10.0.0.5
        return any(address in network for network in self.networks)
