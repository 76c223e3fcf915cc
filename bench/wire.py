"""Pre-encoded MQTT 3.1.1 frames for the load generator, and a counting-only frame parser.

The generator must cost far less than the broker it measures, so nothing here decodes a
packet in full: publishers stamp a sequence number into frames that Roost's codec encoded
once, up front, and subscribers read only the fixed header and that number.

Every PUBLISH payload starts with PAYLOAD_HEAD: publisher index, sequence number and the
send time (time.monotonic_ns, one clock for all processes on Linux), padded to 64 bytes.
"""

from __future__ import annotations

import struct

from roost.mqtt.codec import encode
from roost.mqtt.packets import (
    MQTT_311,
    Connect,
    Disconnect,
    PubAck,
    Publish,
    Subscribe,
    Subscription,
)

PAYLOAD_SIZE = 64
PAYLOAD_HEAD = struct.Struct(">HIQ")  # publisher, seq, sent_ns
PUBACK_FRAMES = [b""] + [encode(PubAck(pid), MQTT_311) for pid in range(1, 65536)]
DISCONNECT = encode(Disconnect(), MQTT_311)


def connect(client_id: str, keepalive: int = 300) -> bytes:
    return encode(Connect(client_id, MQTT_311, keepalive=keepalive), MQTT_311)


def subscribe(topic_filter: str, qos: int) -> bytes:
    return encode(Subscribe(1, (Subscription(topic_filter, qos),)), MQTT_311)


class PublishBatch:
    """A bytearray of `size` PUBLISH frames to one topic; stamp() rewrites ids and numbers."""

    def __init__(self, topic: str, qos: int, size: int, publisher: int) -> None:
        one = encode(Publish(topic, bytes(PAYLOAD_SIZE), qos, packet_id=1 if qos else None),
                     MQTT_311)
        self.frame_len = len(one)
        self.payload_at = len(one) - PAYLOAD_SIZE
        self.pid_at = self.payload_at - 2  # 3.1.1: the packet id sits right before the payload
        self.buf = bytearray(one * size)
        self.qos = qos
        self.publisher = publisher

    def stamp(self, count: int, first_seq: int, now_ns: int) -> memoryview:
        """Fill the first count frames with seq first_seq.. and packet id seq % 65535 + 1."""
        buf, n = self.buf, self.frame_len
        for i in range(count):
            off = i * n
            seq = first_seq + i
            if self.qos:
                struct.pack_into(">H", buf, off + self.pid_at, seq % 65535 + 1)
            PAYLOAD_HEAD.pack_into(buf, off + self.payload_at, self.publisher, seq, now_ns)
        return memoryview(buf)[: count * n]


class FrameCounter:
    """Splits a byte stream into frames; reports PUBLISH heads and other packet types."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> tuple[list[tuple[int, int, int, int]], list[tuple[int, int]]]:
        """-> (publishes as (packet id, publisher, seq, sent_ns), others as (type, id))."""
        buf = self.buf
        buf += data
        pubs: list[tuple[int, int, int, int]] = []
        others: list[tuple[int, int]] = []
        pos, end = 0, len(buf)
        unpack = PAYLOAD_HEAD.unpack_from
        while end - pos >= 2:
            first = buf[pos]
            length, shift, i = 0, 0, pos + 1
            while i < end:  # remaining length: 1-4 bytes
                b = buf[i]
                i += 1
                length |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            else:
                break  # header not complete yet
            stop = i + length
            if stop > end:
                break
            kind = first >> 4
            if kind == 3:
                p = i + 2 + (buf[i] << 8 | buf[i + 1])
                pid = 0
                if first & 0x06:
                    pid = buf[p] << 8 | buf[p + 1]
                    p += 2
                pub, seq, sent = unpack(buf, p)
                pubs.append((pid, pub, seq, sent))
            else:
                pid = buf[i] << 8 | buf[i + 1] if length >= 2 else 0
                others.append((kind, pid))
            pos = stop
        del buf[:pos]
        return pubs, others
