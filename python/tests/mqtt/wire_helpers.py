"""Hand-built wire bytes for codec tests, independent of the encoder under test."""

from __future__ import annotations

from roost.mqtt.codec import MAX_PACKET_SIZE, Decoder
from roost.mqtt.packets import Connect, Packet


def frame(first: int, body: bytes) -> bytes:
    """A packet with a one-byte remaining length (bodies in these tests stay short)."""
    assert len(body) < 128
    return bytes((first, len(body))) + body


def u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return u16(len(raw)) + raw


def props(*items: bytes) -> bytes:
    body = b"".join(items)
    assert len(body) < 128
    return bytes((len(body),)) + body


def connect_bytes(version: int, flags: int = 0x02, tail: bytes = b"") -> bytes:
    """CONNECT with client id "c", the given flag byte and extra payload bytes."""
    name = "MQIsdp" if version == 3 else "MQTT"
    head = string(name) + bytes((version, flags)) + u16(60)
    if version == 5:
        head += b"\x00"
    return frame(0x10, head + string("c") + tail)


def server(version: int | None, max_packet_size: int = MAX_PACKET_SIZE) -> Decoder:
    """A broker-side decoder, already past CONNECT when `version` is given."""
    decoder = Decoder(max_packet_size=max_packet_size)
    if version is not None:
        (connect,) = decoder.feed(connect_bytes(version))
        assert isinstance(connect, Connect)
    return decoder


def client(version: int) -> Decoder:
    return Decoder(server=False, version=version)


def feed_bytewise(decoder: Decoder, data: bytes) -> list[Packet]:
    return [p for i in range(len(data)) for p in decoder.feed(data[i : i + 1])]
