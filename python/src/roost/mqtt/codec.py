"""Sans-IO MQTT framing: bytes in, packets out (`Decoder`, `decode_one`); packets in, bytes
out (`encode`). The fixed header is checked as soon as its first byte arrives, and the
packet size as soon as the remaining length is known, so a hostile peer can neither make
us buffer an oversized body nor wait for one behind a byte that is already wrong.

Bodies are decoded from `bytes`, not memoryviews: slicing and decoding bytes is about
twice as fast in CPython, and a payload slice is then already the object we keep.
"""

from __future__ import annotations

from roost.mqtt.bodies import BODIES
from roost.mqtt.encoder import encode
from roost.mqtt.errors import (
    InsufficientData,
    LocalProtocolError,
    MalformedPacket,
    PacketTooLarge,
    ProtocolError,
    RemoteProtocolError,
)
from roost.mqtt.packets import MQTT_5, Connect, Packet, PacketType
from roost.mqtt.wire import read_varint

__all__ = ["MAX_PACKET_SIZE", "Decoder", "decode_one", "encode"]

# 1 type byte + 4 length bytes + the largest remaining length (268,435,455).
MAX_PACKET_SIZE = 268_435_460

T = PacketType
# Fixed-header flags each type must carry (PUBLISH is checked on its own).
_FLAGS = tuple(0b0010 if t in (T.PUBREL, T.SUBSCRIBE, T.UNSUBSCRIBE) else 0 for t in range(16))
_FROM_CLIENT = frozenset(
    {T.CONNECT, T.PUBLISH, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBSCRIBE,
     T.UNSUBSCRIBE, T.PINGREQ, T.DISCONNECT, T.AUTH}
)  # fmt: skip
_FROM_SERVER = frozenset(
    {T.CONNACK, T.PUBLISH, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBACK,
     T.UNSUBACK, T.PINGRESP, T.DISCONNECT, T.AUTH}
)  # fmt: skip

# First bytes of a PUBLISH whose flags need no further check: QoS 0-2, no DUP at QoS 0.
_PUBLISH_FAST = tuple(
    b >> 4 == T.PUBLISH and b & 0b0110 != 0b0110 and b & 0b1110 != 0b1000 for b in range(256)
)


def _check_header(first: int, version: int | None, server: bool) -> None:
    kind = first >> 4
    flags = first & 0x0F
    if kind == T.PUBLISH:
        if flags & 0b0110 == 0b0110:
            raise MalformedPacket("PUBLISH with QoS 3")
        if flags & 0b1110 == 0b1000:
            raise MalformedPacket("DUP set on a QoS 0 PUBLISH")
    elif kind == 0 or (kind == T.AUTH and version is not None and version != MQTT_5):
        raise MalformedPacket(f"reserved packet type {kind}")
    elif flags != _FLAGS[kind]:
        raise MalformedPacket(f"invalid fixed-header flags for {T(kind).name}")
    if server:
        if version is None:
            if kind != T.CONNECT:
                raise ProtocolError("the first packet must be CONNECT")
        elif kind == T.CONNECT:
            raise ProtocolError("second CONNECT")
        elif kind not in _FROM_CLIENT:
            raise ProtocolError(f"a client cannot send {T(kind).name}")
    elif kind not in _FROM_SERVER:
        raise ProtocolError(f"a server cannot send {T(kind).name}")


def _frame(
    buf: bytes | memoryview,
    pos: int,
    limit: int,
    *,
    version: int | None,
    server: bool,
    max_size: int,
) -> tuple[int, int]:
    """Check the fixed header at `pos`; return where the body starts and the packet ends.

    Raises InsufficientData only while the fixed header itself is incomplete; the
    caller compares the returned end with what it holds.
    """
    first = buf[pos]
    # The hot path: a PUBLISH after CONNECT only needs its QoS and DUP bits checked.
    if first >> 4 != T.PUBLISH or version is None or first & 0b0110 == 0b0110:
        _check_header(first, version, server)
    elif first & 0b1110 == 0b1000:
        raise MalformedPacket("DUP set on a QoS 0 PUBLISH")
    if pos + 1 >= limit:
        raise InsufficientData
    length = buf[pos + 1]
    if length < 0x80:  # most packets: a one-byte remaining length
        cursor = pos + 2
    else:
        length, cursor = read_varint(buf, pos + 1, limit, InsufficientData)
    end = cursor + length
    if end - pos > max_size:
        raise _too_large(end - pos, max_size)
    return cursor, end


def _too_large(size: int, max_size: int) -> PacketTooLarge:
    return PacketTooLarge(f"packet of {size} bytes exceeds the limit of {max_size}")


def decode_one(
    buf: memoryview,
    version: int | None,
    *,
    server: bool = True,
    max_packet_size: int = MAX_PACKET_SIZE,
) -> tuple[Packet, int]:
    """Decode the first packet in `buf`; return it and the number of bytes it used.

    `version` None means "before CONNECT" (server side). Raises InsufficientData when
    `buf` holds only part of a packet, a RemoteProtocolError when the bytes are bad.
    """
    if version is None and not server:
        raise LocalProtocolError("a client-side decode needs the protocol version")
    limit = len(buf)
    if not limit:
        raise InsufficientData
    start, end = _frame(buf, 0, limit, version=version, server=server, max_size=max_packet_size)
    if end > limit:
        raise InsufficientData
    data = bytes(buf[:end])
    body = BODIES[data[0] >> 4]
    return body(data, data[0] & 0x0F, start, end, version=version or 0, server=server), end


class Decoder:
    """Incremental decoder for one connection: feed it bytes, get complete packets.

    Server side (the broker), `version` starts as None and is set by the first packet,
    which must be CONNECT (3: MQTT 3.1, 4: 3.1.1, 5: 5.0); a second CONNECT is an error.
    Client side, the caller passes the version it connected with. `max_packet_size`
    may be changed at any time and applies from the next fixed header on.

    After a RemoteProtocolError it stays failed: the connection must be closed. Packets
    decoded earlier in the failing `feed` call are dropped with it.
    """

    def __init__(
        self,
        *,
        max_packet_size: int = MAX_PACKET_SIZE,
        server: bool = True,
        version: int | None = None,
    ) -> None:
        if not server and version is None:
            raise LocalProtocolError("a client-side decoder needs the protocol version")
        self.max_packet_size = max_packet_size
        self.server = server
        self.version = version
        self._pending = bytearray()
        self._need = 0  # bytes the packet at the head of _pending needs, when known
        self._error: RemoteProtocolError | None = None

    def feed(self, data: bytes) -> list[Packet]:
        if self._error is not None:
            error = self._error
            raise type(error)(f"decoder already failed: {error}", error.reason_code)
        pending = self._pending
        if pending:
            pending += data
            # A large packet arrives in many reads: wait for all of it before copying.
            if len(pending) < self._need:
                return []
            source = bytes(pending)
        else:
            source = data if type(data) is bytes else bytes(data)
        try:
            packets, pos = self._decode(source)
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        pending[:] = source[pos:]
        return packets

    def _decode(self, source: bytes) -> tuple[list[Packet], int]:
        packets: list[Packet] = []
        limit = len(source)
        pos = 0
        self._need = 0
        server = self.server
        version = self.version
        max_size = self.max_packet_size
        while pos < limit:
            first = source[pos]
            if _PUBLISH_FAST[first] and version and pos + 1 < limit and source[pos + 1] < 0x80:
                # The hot path, framed inline: a well-flagged PUBLISH under 130 bytes.
                start = pos + 2
                end = start + source[pos + 1]
                if end - pos > max_size:
                    raise _too_large(end - pos, max_size)
            else:
                try:
                    start, end = _frame(
                        source, pos, limit, version=version, server=server, max_size=max_size
                    )
                except InsufficientData:
                    break
            if end > limit:
                self._need = end - pos
                break
            packet = BODIES[first >> 4](
                source, first & 0x0F, start, end, version=version or 0, server=server
            )
            packets.append(packet)
            pos = end
            if version is None and isinstance(packet, Connect):
                version = self.version = packet.protocol_version
        return packets, pos
