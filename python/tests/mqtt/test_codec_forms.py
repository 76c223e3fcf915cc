"""Exact wire forms: spec examples, v5 short forms, boundaries, and what encode refuses."""

from __future__ import annotations

import pytest

from roost.mqtt.codec import Decoder, decode_one, encode
from roost.mqtt.errors import InsufficientData, LocalProtocolError
from roost.mqtt.packets import (
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PropertyId,
    PubAck,
    Publish,
    PubRel,
    RetainHandling,
    SubAck,
    Subscribe,
    Subscription,
    UnsubAck,
    Will,
)

from .wire_helpers import client, connect_bytes, frame, props, server, string, u16

P = PropertyId


def test_a_3_1_1_connect_from_the_wire() -> None:
    wire = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c"
    decoder = server(None)
    assert decoder.feed(wire) == [Connect("c", 4, True, 60)]
    assert decoder.version == 4
    assert encode(Connect("c", 4, True, 60), 4) == wire


def test_a_3_1_connect_sets_version_3() -> None:
    decoder = server(None)
    (connect,) = decoder.feed(connect_bytes(3))
    assert connect == Connect("c", 3, True, 60, protocol_name="MQIsdp")
    assert decoder.version == 3


@pytest.mark.parametrize(
    ("wire", "packet"),
    [
        (b"\x40\x02\x00\x07", PubAck(7)),
        (b"\x40\x03\x00\x07\x10", PubAck(7, 0x10)),
        (b"\x40\x04\x00\x07\x10\x00", PubAck(7, 0x10)),
        (b"\x62\x03\x00\x07\x92", PubRel(7, 0x92)),
        (b"\xe0\x00", Disconnect()),
        (b"\xe0\x01\x04", Disconnect(0x04)),
        (b"\xe0\x02\x00\x00", Disconnect()),
        (b"\xf0\x00", Auth()),
    ],
)
def test_v5_short_forms(wire: bytes, packet: Packet) -> None:
    assert server(5).feed(wire) == [packet]
    # We write the shortest form that carries the same information.
    assert len(encode(packet, 5)) <= len(wire)


def test_v5_topic_alias_stands_in_for_an_empty_topic() -> None:
    wire = frame(0x30, string("") + props(b"\x23" + u16(3)) + b"hi")
    assert server(5).feed(wire) == [Publish("", b"hi", properties={P.TOPIC_ALIAS: 3})]


def test_v5_password_without_user_name_is_allowed() -> None:
    body = string("MQTT") + b"\x05\x42" + u16(0) + b"\x00" + string("c") + string("pw")
    assert server(None).feed(frame(0x10, body)) == [Connect("c", 5, True, 0, password=b"pw")]


def test_repeated_properties_keep_their_order() -> None:
    user = b"".join(
        b"\x26" + string(k) + string(v) for k, v in [("a", "1"), ("b", "2"), ("a", "3")]
    )
    wire = frame(0x30, string("t") + props(user + b"\x0b\x05\x0b\x81\x01"))
    (packet,) = client(5).feed(wire)
    assert packet == Publish(
        "t",
        properties={
            P.USER_PROPERTY: [("a", "1"), ("b", "2"), ("a", "3")],
            P.SUBSCRIPTION_IDENTIFIER: [5, 129],
        },
    )
    assert encode(packet, 5) == wire


def test_subscription_options_bits() -> None:
    sub = Subscription("a/+", 2, True, True, RetainHandling.DO_NOT_SEND)
    wire = frame(0x82, u16(9) + b"\x00" + string("a/+") + bytes((0b00101110,)))
    assert server(5).feed(wire) == [Subscribe(9, (sub,))]
    assert encode(Subscribe(9, (sub,)), 5) == wire
    # 3.1.1 has only the QoS bits.
    assert encode(Subscribe(9, (sub,)), 4)[-1] == 2


@pytest.mark.parametrize("size", [127, 128, 16_383, 16_384, 2_097_151, 2_097_152])
def test_remaining_length_boundaries(size: int) -> None:
    packet = Publish("t", bytes(size - 3))  # 2 + 1 bytes of topic, then the payload
    wire = encode(packet, 4)
    header = 2 + (size >= 128) + (size >= 16_384) + (size >= 2_097_152)
    assert len(wire) == header + size
    decoder = server(4)
    assert [p for i in range(0, len(wire), 4096) for p in decoder.feed(wire[i : i + 4096])] == [
        packet
    ]


def test_many_packets_in_one_read_and_one_packet_over_many() -> None:
    packets = [Publish(f"t/{n}", bytes([n]) * n, 1, packet_id=n + 1) for n in range(50)]
    wire = b"".join(encode(p, 5) for p in packets)
    assert server(5).feed(wire) == packets
    decoder = server(5)
    got = [p for i in range(0, len(wire), 7) for p in decoder.feed(wire[i : i + 7])]
    assert got == packets


def test_decode_one_reports_what_it_used() -> None:
    wire = encode(PubAck(1), 4) + b"\xc0"
    assert decode_one(memoryview(bytearray(wire)), 4) == (PubAck(1), 4)
    with pytest.raises(InsufficientData):
        decode_one(memoryview(wire)[4:], 4)
    with pytest.raises(InsufficientData):
        decode_one(memoryview(b""), 4)


def test_a_client_decoder_needs_a_version() -> None:
    with pytest.raises(LocalProtocolError):
        Decoder(server=False)
    with pytest.raises(LocalProtocolError):
        decode_one(memoryview(b"\xd0\x00"), None, server=False)


@pytest.mark.parametrize(
    ("packet", "version"),
    [
        (Publish("a", qos=3, packet_id=1), 4),
        (Publish("a", qos=1), 4),
        (Publish("a", qos=1, packet_id=0), 4),
        (Publish("a", qos=1, packet_id=65_536), 4),
        (Publish("a", packet_id=1), 4),
        (Publish("a", dup=True), 4),
        (Publish("a/+"), 4),
        (Publish("a\x00"), 4),
        (Publish("\ud800"), 4),
        (Publish(""), 4),
        (Publish(""), 5),
        (Publish("", properties={P.TOPIC_ALIAS: 1}), 4),
        (Publish("a" * 65_536), 4),
        (Publish("a", properties={P.RECEIVE_MAXIMUM: 1}), 5),
        (Publish("a", properties={P.TOPIC_ALIAS: [1, 2]}), 5),
        (Connect("c", 5), 4),
        (Connect("c", 3), 3),
        (Connect("c", 4, password=b"pw"), 4),
        (Connect("c", 4, will=Will("w/#", b"")), 4),
        (Subscribe(1, ()), 5),
        (Subscribe(1, (Subscription("a/#/b"),)), 5),
        (Auth(), 4),
        (Auth(0x05), 5),
        (Disconnect(properties={P.TOPIC_ALIAS: 1}), 5),
        (Disconnect(0x91), 5),
        (PubAck(1, 0x92), 5),
        (PubRel(1, 0x10), 5),
        (ConnAck(True, 0x80), 5),
        (ConnAck(False, 6), 4),
        (ConnAck(False, 300), 5),
        (SubAck(1, ()), 4),
        (SubAck(1, (0x87,)), 4),
        (UnsubAck(1, (0x01,)), 5),
        (Publish("a", "text"), 4),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_what_the_protocol_forbids(packet: Packet, version: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode(packet, version)


def test_v3_encoding_leaves_out_what_only_v5_has() -> None:
    props = {P.USER_PROPERTY: [("k", "v")]}
    assert encode(Publish("a", b"x", properties=props), 4) == b"\x30\x04\x00\x01ax"
    assert encode(PubAck(1, 0x10, {P.REASON_STRING: "no"}), 4) == b"\x40\x02\x00\x01"
    assert encode(Disconnect(0x8E), 4) == b"\xe0\x00"
    assert encode(UnsubAck(1, (0x11,)), 4) == b"\xb0\x02\x00\x01"
    # MQTT 3.1 frames everything but CONNECT as 3.1.1 does.
    assert encode(Subscribe(2, (Subscription("a/#", 1),)), 3) == encode(
        Subscribe(2, (Subscription("a/#", 1),)), 4
    )
