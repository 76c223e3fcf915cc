"""A raw-socket MQTT client from hand-built bytes, for what paho will not do.

paho always acks, never sends malformed bytes and never publishes to a wildcard topic; these
tests need a client that misbehaves on purpose. The bytes are built here from the spec, not
with roost's codec, so a codec bug cannot hide a broker bug.
"""

from __future__ import annotations

import socket
import struct

from .brokers import Broker
from .clients import WAIT

CONNACK, PUBLISH, PUBACK, PUBREC, PUBCOMP, SUBACK, DISCONNECT = 2, 3, 4, 5, 7, 9, 14


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """The variable byte integer at pos, and the position after it."""
    value = 0
    for shift in range(0, 28, 7):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ValueError("variable byte integer longer than 4 bytes")


def utf8(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def prop(pid: int, value: int, size: int) -> bytes:
    """One integer property: size 1, 2 or 4 bytes (section 2.2.2.2)."""
    return bytes([pid]) + value.to_bytes(size, "big")


def connect(client_id: str, version: int = 5, props: bytes = b"", *, keepalive: int = 30,
            will: tuple[str, bytes] | None = None, clean: bool = True) -> bytes:
    flags = (0x02 if clean else 0) | (0x04 if will else 0)
    head = utf8("MQTT") + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        head += varint(len(props)) + props
    tail = utf8(client_id)
    if will:
        tail += (b"\x00" if version == 5 else b"") + utf8(will[0])
        tail += struct.pack("!H", len(will[1])) + will[1]
    return frame(0x10, head + tail)


def publish(topic: str, payload: bytes, *, version: int = 5, qos: int = 0, pid: int = 0,
            props: bytes = b"") -> bytes:
    body = utf8(topic) + (struct.pack("!H", pid) if qos else b"")
    if version == 5:
        body += varint(len(props)) + props
    return frame(0x30 | qos << 1, body + payload)


def subscribe(topic: str, qos: int, pid: int, version: int = 5) -> bytes:
    props = b"\x00" if version == 5 else b""
    return frame(0x82, struct.pack("!H", pid) + props + utf8(topic) + bytes([qos]))


def puback(pid: int) -> bytes:
    return frame(0x40, struct.pack("!H", pid))


def pubrel(pid: int) -> bytes:
    return frame(0x62, struct.pack("!H", pid))


class RawClient:
    def __init__(self, broker: Broker) -> None:
        self.sock = socket.create_connection((broker.host, broker.port), timeout=WAIT)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, need: int) -> bool:
        while len(self.buf) < need:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return False
            self.buf += chunk
        return True

    def read(self, timeout: float = WAIT) -> tuple[int, int, bytes] | None:
        """Next packet as (type, flags, body); None when the broker closed the connection.

        Raises TimeoutError when nothing complete arrives within timeout.
        """
        self.sock.settimeout(timeout)
        for need in range(2, 6):  # the type byte and 1-4 bytes of remaining length
            if not self._fill(need):
                return None
            if not self.buf[need - 1] & 0x80:
                break
        length, i = varint_at(self.buf, 1)
        if not self._fill(i + length):
            return None
        first, body = self.buf[0], self.buf[i:i + length]
        self.buf = self.buf[i + length:]
        return first >> 4, first & 0x0F, body

    def expect(self, kind: int) -> bytes:
        packet = self.read()
        assert packet is not None, f"connection closed while waiting for type {kind}"
        assert packet[0] == kind, f"expected packet type {kind}, got {packet[0]}"
        return packet[2]

    def handshake(self, client_id: str, version: int = 5, props: bytes = b"", *,
                  keepalive: int = 30, will: tuple[str, bytes] | None = None,
                  clean: bool = True) -> bytes:
        """CONNECT and check the CONNACK accepted us; returns the CONNACK body."""
        self.send(connect(client_id, version, props, keepalive=keepalive, will=will, clean=clean))
        body = self.expect(CONNACK)
        assert body[1] == 0, f"CONNACK refused: {body[1]:#x}"
        return body

    def closed(self, timeout: float = WAIT) -> list[tuple[int, int, bytes]]:
        """Read until the broker closes the connection; returns what it sent first."""
        got: list[tuple[int, int, bytes]] = []
        for _ in range(100):
            packet = self.read(timeout)
            if packet is None:
                return got
            got.append(packet)
        raise AssertionError("broker kept sending and never closed")

    def close(self) -> None:
        self.sock.close()


def publish_fields(flags: int, body: bytes, version: int = 5) -> tuple[str, int, bytes]:
    """(topic, packet id or 0, payload) of a received PUBLISH body."""
    n = struct.unpack_from("!H", body)[0]
    topic, pos = body[2:2 + n].decode(), 2 + n
    pid = 0
    if flags & 0x06:
        pid = struct.unpack_from("!H", body, pos)[0]
        pos += 2
    if version == 5:
        plen, pos = varint_at(body, pos)
        pos += plen  # skip the properties
    return topic, pid, body[pos:]
