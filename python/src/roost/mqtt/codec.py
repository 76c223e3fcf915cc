"""Sans-IO MQTT framing: bytes in, packets out (`Decoder`, `decode_one`); packets in, bytes
out (`encode`). The fixed header is checked as soon as its first byte arrives, and the
packet size as soon as the remaining length is known, so a hostile peer can neither make
us buffer an oversized body nor wait for one behind a byte that is already wrong.
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


def _decode_at(
    buf: memoryview, pos: int, limit: int, *, version: int | None, server: bool, max_size: int
) -> tuple[Packet, int]:
    """Decode the packet starting at `pos`; return it and the position after it."""
    if pos >= limit:
        raise InsufficientData
    first = buf[pos]
    _check_header(first, version, server)
    cursor = pos + 1
    length = 0
    for shift in (0, 7, 14, 21):
        if cursor >= limit:
            raise InsufficientData
        byte = buf[cursor]
        cursor += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and shift:
                raise MalformedPacket("remaining length not in its shortest form")
            break
    else:
        raise MalformedPacket("remaining length longer than four bytes")
    end = cursor + length
    if end - pos > max_size:
        raise PacketTooLarge(f"packet of {end - pos} bytes exceeds the limit of {max_size}")
    if end > limit:
        raise InsufficientData
    body = BODIES[first >> 4]
    return body(buf, first & 0x0F, cursor, end, version=version or 0, server=server), end


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
    return _decode_at(buf, 0, len(buf), version=version, server=server, max_size=max_packet_size)


class Decoder:
    """Incremental decoder for one connection: feed it bytes, get complete packets.

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
        self._error: RemoteProtocolError | None = None

    def feed(self, data: bytes) -> list[Packet]:
        if self._error is not None:
            error = self._error
            raise type(error)(f"decoder already failed: {error}", error.reason_code)
        pending = self._pending
        if pending:
            pending += data
        view = memoryview(pending if pending else data)
        limit = len(view)
        pos = 0
        packets: list[Packet] = []
        try:
            while pos < limit:
                try:
                    packet, pos = _decode_at(
                        view,
                        pos,
                        limit,
                        version=self.version,
                        server=self.server,
                        max_size=self.max_packet_size,
                    )
                except InsufficientData:
                    break
                packets.append(packet)
                if self.version is None and isinstance(packet, Connect):
                    self.version = packet.protocol_version
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        finally:
            view.release()
        if pending:
            del pending[:pos]
        elif pos < limit:
            pending += data[pos:]
        return packets
