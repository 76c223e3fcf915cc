"""Each receiver-side rule of MQTT 3.1.1 / 5.0 rejects its violation with the right error."""

from __future__ import annotations

from typing import Any

import pytest

from roost.mqtt.codec import Decoder
from roost.mqtt.errors import (
    MalformedPacket,
    PacketTooLarge,
    ProtocolError,
    RemoteProtocolError,
    UnsupportedProtocolVersion,
)
from roost.mqtt.packets import ReasonCode

from .wire_helpers import client, connect_bytes, feed_bytewise, frame, props, server, string, u16

R = ReasonCode
BAD = MalformedPacket
PROTO = ProtocolError
UNSUPPORTED = UnsupportedProtocolVersion

# Decoder set-ups: which side decodes, and the version agreed (None: before CONNECT).
NEW = ("server", None)
S3, S4, S5 = (("server", v) for v in (3, 4, 5))
C4, C5 = (("client", v) for v in (4, 5))

PUB_A = string("a")
SUB_OK = string("a/b") + b"\x01"


def case(
    name: str,
    setup: tuple[str, int | None],
    data: bytes,
    error: type[RemoteProtocolError],
    reason: ReasonCode | None = None,
) -> Any:
    """A violation; the reason code defaults to the error class's own."""
    return pytest.param(setup, data, error, reason or error.reason_code, id=name)


def connect5(block: bytes, payload: bytes = string("c"), flags: int = 0x02) -> bytes:
    """A v5 CONNECT with the given property block and payload."""
    return frame(0x10, string("MQTT") + bytes((5, flags)) + u16(9) + block + payload)


def connect_level(name: str, level: int) -> bytes:
    return frame(0x10, string(name) + bytes((level, 0x02)) + u16(9) + string("c"))


def subscribe5(options: int, topic_filter: str = "a") -> bytes:
    return frame(0x82, u16(1) + b"\x00" + string(topic_filter) + bytes((options,)))


FRAMING = [
    case("first packet not CONNECT", NEW, b"\xc0\x00", PROTO),
    case("second CONNECT", S4, connect_bytes(4), PROTO),
    case("reserved type 0", S4, b"\x00\x00", BAD),
    case("AUTH in 3.1.1", S4, b"\xf0\x00", BAD),
    case("AUTH in 3.1", S3, b"\xf0\x00", BAD),
    case("CONNECT header flags", NEW, b"\x11" + connect_bytes(4)[1:], BAD),
    case("PUBREL flags 0", S4, frame(0x60, u16(1)), BAD),
    case("SUBSCRIBE flags 0", S4, frame(0x80, u16(1) + SUB_OK), BAD),
    case("UNSUBSCRIBE flags 0", S4, frame(0xA0, u16(1) + string("a")), BAD),
    case("PUBACK flags 2", S4, frame(0x42, u16(1)), BAD),
    case("PINGREQ flags 1", S4, b"\xc1\x00", BAD),
    case("DISCONNECT flags 8", S5, b"\xe8\x00", BAD),
    case("PUBLISH QoS 3", S4, frame(0x36, PUB_A + u16(1)), BAD),
    case("PUBLISH DUP at QoS 0", S4, frame(0x38, PUB_A), BAD),
    case("length of 5 bytes", S4, b"\x30\xff\xff\xff\xff\x01", BAD),
    case("length not shortest", S4, b"\xc0\x80\x00", BAD),
    case("server gets CONNACK", S4, b"\x20\x02\x00\x00", PROTO),
    case("server gets SUBACK", S4, frame(0x90, u16(1) + b"\x00"), PROTO),
    case("server gets UNSUBACK", S4, frame(0xB0, u16(1)), PROTO),
    case("server gets PINGRESP", S4, b"\xd0\x00", PROTO),
    case("client gets CONNECT", C4, connect_bytes(4), PROTO),
    case("client gets SUBSCRIBE", C4, frame(0x82, u16(1) + SUB_OK), PROTO),
    case("client gets UNSUBSCRIBE", C5, frame(0xA2, u16(1) + b"\x00" + string("a")), PROTO),
    case("client gets PINGREQ", C4, b"\xc0\x00", PROTO),
]

STRINGS = [
    case("topic not UTF-8", S4, frame(0x30, string(b"a\xff")), BAD),
    case("topic with U+0000", S4, frame(0x30, string(b"a\x00b")), BAD),
    case("topic with a surrogate", S4, frame(0x30, string(b"\xed\xa0\x80")), BAD),
    case("overlong UTF-8", S4, frame(0x30, string(b"\xc0\xaf")), BAD),
    case("topic past the end", S4, frame(0x30, u16(9) + b"ab"), BAD),
    case("topic length cut", S4, frame(0x30, b"\x00"), BAD),
    case("client id with U+0000", NEW, connect5(b"\x00", string(b"c\x00")), BAD),
    case(
        "user property not UTF-8",
        NEW,
        connect5(props(b"\x26" + string("k") + string(b"\xff"))),
        BAD,
    ),
]

PUBLISH = [
    case("topic with +", S4, frame(0x30, string("a/+")), PROTO, R.TOPIC_NAME_INVALID),
    case("topic with #", S5, frame(0x30, string("a/#") + b"\x00"), PROTO, R.TOPIC_NAME_INVALID),
    case("empty topic in 3.1.1", S4, frame(0x30, string("")), PROTO, R.TOPIC_NAME_INVALID),
    case("empty topic, no alias", S5, frame(0x30, string("") + b"\x00"), PROTO),
    case("packet id 0", S4, frame(0x32, PUB_A + u16(0)), PROTO),
    case("packet id cut", S4, frame(0x32, PUB_A + b"\x01"), BAD),
    case("client sends a sub id", S5, frame(0x30, PUB_A + props(b"\x0b\x01")), PROTO),
    case(
        "topic alias 0",
        S5,
        frame(0x30, PUB_A + props(b"\x23" + u16(0))),
        PROTO,
        R.TOPIC_ALIAS_INVALID,
    ),
    case("payload format 2", S5, frame(0x30, PUB_A + props(b"\x01\x02")), PROTO),
    case(
        "response topic with +",
        S5,
        frame(0x30, PUB_A + props(b"\x08" + string("r/+"))),
        PROTO,
        R.TOPIC_NAME_INVALID,
    ),
    case("sub id 0 to a client", C5, frame(0x30, PUB_A + props(b"\x0b\x00")), PROTO),
    case("properties past the end", S5, frame(0x30, PUB_A + b"\x05\x01"), BAD),
    case("properties missing", S5, frame(0x30, PUB_A), BAD),
]

CONNECT = [
    case("level 6", NEW, connect_level("MQTT", 6), UNSUPPORTED),
    case("level 2", NEW, connect_level("MQTT", 2), UNSUPPORTED),
    case("MQIsdp at level 4", NEW, connect_level("MQIsdp", 4), UNSUPPORTED),
    case("protocol name HTTP", NEW, connect_level("HTTP", 4), PROTO),
    case("reserved flag", NEW, connect_bytes(4, flags=0x03), BAD),
    case("will QoS 3", NEW, connect_bytes(4, flags=0x1E, tail=string("w") + string("p")), BAD),
    case("will QoS, no will", NEW, connect_bytes(4, flags=0x0A), BAD),
    case("will retain, no will", NEW, connect_bytes(4, flags=0x22), BAD),
    case("password, no user in 3.1.1", NEW, connect_bytes(4, flags=0x42, tail=string("pw")), BAD),
    case("password, no user in 3.1", NEW, connect_bytes(3, flags=0x42, tail=string("pw")), BAD),
    case("user name missing", NEW, connect_bytes(4, flags=0x82), BAD),
    case("trailing bytes", NEW, connect_bytes(4, tail=b"x"), BAD),
    case(
        "will topic with #",
        NEW,
        connect_bytes(4, flags=0x06, tail=string("w/#") + string("p")),
        PROTO,
        R.TOPIC_NAME_INVALID,
    ),
]

PROPERTIES = [
    case("receive maximum 0", NEW, connect5(props(b"\x21" + u16(0))), PROTO),
    case("maximum packet size 0", NEW, connect5(props(b"\x27" + bytes(4))), PROTO),
    case("request problem info 2", NEW, connect5(props(b"\x17\x02")), PROTO),
    case("request response info 2", NEW, connect5(props(b"\x19\x02")), PROTO),
    case(
        "session expiry twice", NEW, connect5(props(b"\x11" + bytes(4) + b"\x11" + bytes(4))), PROTO
    ),
    case("topic alias in CONNECT", NEW, connect5(props(b"\x23" + u16(1))), PROTO),
    case("will delay in CONNECT", NEW, connect5(props(b"\x18" + bytes(4))), PROTO),
    case("unknown property 0x05", NEW, connect5(props(b"\x05\x00")), BAD),
    case("property id not shortest", NEW, connect5(props(b"\x91\x00" + bytes(4))), BAD),
    case("property value cut", NEW, connect5(props(b"\x11\x00\x00")), BAD),
    case("property length past the end", NEW, connect5(b"\x7f"), BAD),
    case("auth data, no method", NEW, connect5(props(b"\x16" + string("x"))), PROTO),
    case("user property cut", NEW, connect5(props(b"\x26" + string("k"))), BAD),
    case(
        "receive maximum in a will",
        NEW,
        connect5(
            b"\x00", string("c") + props(b"\x21" + u16(5)) + string("w") + string("p"), flags=0x06
        ),
        PROTO,
    ),
]

ACKS = [
    case("PUBACK in 3.1.1 too long", S4, frame(0x40, u16(1) + b"\x00"), BAD),
    case("PUBACK id 0", S4, frame(0x40, u16(0)), PROTO),
    case("PUBACK too short", S4, frame(0x40, b"\x01"), BAD),
    case("PUBACK reason 0x01", S5, frame(0x40, u16(1) + b"\x01"), PROTO),
    case("PUBREL reason 0x10", S5, frame(0x62, u16(1) + b"\x10"), PROTO),
    case("PUBCOMP reason 0x80", S5, frame(0x70, u16(1) + b"\x80"), PROTO),
    case("PUBREC properties cut", S5, frame(0x50, u16(1) + b"\x00\x03\x1f"), BAD),
    case(
        "PUBACK with a topic alias",
        S5,
        frame(0x40, u16(1) + b"\x00" + props(b"\x23" + u16(1))),
        PROTO,
    ),
]

SUBSCRIPTIONS = [
    case("SUBSCRIBE without filters", S4, frame(0x82, u16(1)), PROTO),
    case("SUBSCRIBE without filters in v5", S5, frame(0x82, u16(1) + b"\x00"), PROTO),
    case("SUBSCRIBE id 0", S4, frame(0x82, u16(0) + SUB_OK), PROTO),
    case("options missing", S4, frame(0x82, u16(1) + string("a")), BAD),
    case("3.1.1 reserved option bits", S4, frame(0x82, u16(1) + string("a") + b"\x04"), BAD),
    case("3.1.1 QoS 3", S4, frame(0x82, u16(1) + string("a") + b"\x03"), BAD),
    case("v5 reserved option bits", S5, subscribe5(0x40), BAD),
    case("v5 QoS 3", S5, subscribe5(0x03), PROTO),
    case("retain handling 3", S5, subscribe5(0x30), PROTO),
    case("no local on a shared filter", S5, subscribe5(0x04, "$share/g/a"), PROTO),
    case("subscription id 0", S5, frame(0x82, u16(1) + props(b"\x0b\x00") + SUB_OK), PROTO),
    case(
        "subscription id twice",
        S5,
        frame(0x82, u16(1) + props(b"\x0b\x01\x0b\x02") + SUB_OK),
        PROTO,
    ),
    case(
        "subscription id of 5 bytes",
        S5,
        frame(0x82, u16(1) + props(b"\x0b\xff\xff\xff\xff\x01") + SUB_OK),
        BAD,
    ),
    *[
        case(
            f"filter {text!r}",
            S4,
            frame(0x82, u16(1) + string(text) + b"\x00"),
            PROTO,
            R.TOPIC_FILTER_INVALID,
        )
        for text in [
            "",
            "a/#/b",
            "a/b#",
            "a+/b",
            "+a",
            "#/",
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "$share/g/",
        ]
    ],
    case("UNSUBSCRIBE without filters", S4, frame(0xA2, u16(1)), PROTO),
    case(
        "UNSUBSCRIBE bad filter",
        S5,
        frame(0xA2, u16(1) + b"\x00" + string("a/#/")),
        PROTO,
        R.TOPIC_FILTER_INVALID,
    ),
    case("UNSUBSCRIBE id 0", S4, frame(0xA2, u16(0) + string("a")), PROTO),
]

OTHERS = [
    case("PINGREQ with a body", S4, b"\xc0\x01\x00", BAD),
    case("DISCONNECT in 3.1.1 with a body", S4, b"\xe0\x01\x00", BAD),
    case("DISCONNECT reason 0x01", S5, b"\xe0\x01\x01", PROTO),
    case("DISCONNECT trailing bytes", S5, b"\xe0\x03\x00\x00\x00", BAD),
    case(
        "DISCONNECT with a topic alias", S5, frame(0xE0, b"\x00" + props(b"\x23" + u16(1))), PROTO
    ),
    case("AUTH reason 0x05", S5, b"\xf0\x01\x05", PROTO),
]

# What a client-side decoder checks in what a server sends.
FROM_SERVER = [
    case("CONNACK reserved flags", C4, b"\x20\x02\x02\x00", BAD),
    case("CONNACK 3.1.1 code 6", C4, b"\x20\x02\x00\x06", PROTO),
    case("CONNACK v5 code 0x01", C5, b"\x20\x03\x00\x01\x00", PROTO),
    case("CONNACK present, refused", C4, b"\x20\x02\x01\x05", PROTO),
    case("CONNACK v5 without properties", C5, b"\x20\x02\x00\x00", BAD),
    case("CONNACK 3.1.1 too long", C4, b"\x20\x03\x00\x00\x00", BAD),
    case("CONNACK maximum QoS 2", C5, b"\x20\x05\x00\x00\x02\x24\x02", PROTO),
    case("SUBACK without codes", C4, frame(0x90, u16(1)), PROTO),
    case("SUBACK 3.1.1 code 0x87", C4, frame(0x90, u16(1) + b"\x87"), PROTO),
    case("SUBACK v5 code 0x03", C5, frame(0x90, u16(1) + b"\x00\x03"), PROTO),
    case("UNSUBACK 3.1.1 with codes", C4, frame(0xB0, u16(1) + b"\x00"), BAD),
    case("UNSUBACK v5 code 0x01", C5, frame(0xB0, u16(1) + b"\x00\x01"), PROTO),
    case("PINGRESP with a body", C4, b"\xd0\x01\x00", BAD),
    case(
        "DISCONNECT with session expiry",
        C5,
        frame(0xE0, b"\x00" + props(b"\x11" + bytes(4))),
        PROTO,
    ),
]


def _decoder(setup: tuple[str, int | None]) -> Decoder:
    side, version = setup
    if side == "client":
        assert version is not None
        return client(version)
    return server(version)


@pytest.mark.parametrize(
    ("setup", "data", "error", "reason"),
    FRAMING
    + STRINGS
    + PUBLISH
    + CONNECT
    + PROPERTIES
    + ACKS
    + SUBSCRIPTIONS
    + OTHERS
    + FROM_SERVER,
)
def test_violation_is_rejected_with_its_reason_code(
    setup: tuple[str, int | None],
    data: bytes,
    error: type[RemoteProtocolError],
    reason: ReasonCode,
) -> None:
    for feed in (Decoder.feed, feed_bytewise):
        decoder = _decoder(setup)
        with pytest.raises(error) as caught:
            feed(decoder, data)
        assert caught.value.reason_code == reason
        # A failed decoder stays failed, whatever comes next.
        with pytest.raises(error):
            decoder.feed(b"\xc0\x00")


def test_size_limit_is_checked_before_the_body_arrives() -> None:
    decoder = server(4, max_packet_size=64)
    assert decoder.feed(frame(0x30, string("a") + bytes(59))) != []  # 63 bytes: fine
    with pytest.raises(PacketTooLarge) as caught:
        decoder.feed(b"\x30\x3f")  # declares 65 bytes; no body sent yet
    assert caught.value.reason_code == R.PACKET_TOO_LARGE


def test_size_limit_can_be_lowered_after_connect() -> None:
    decoder = server(5)
    decoder.max_packet_size = 10
    with pytest.raises(PacketTooLarge):
        decoder.feed(b"\x30\xff\xff\x7f")


def test_packets_before_connect_are_refused_even_if_split() -> None:
    decoder = server(None)
    assert decoder.feed(b"") == []
    with pytest.raises(ProtocolError):
        decoder.feed(b"\x30")  # the first byte alone already says PUBLISH
