"""Each receiver-side rule of MQTT 3.1.1 / 5.0 rejects its violation with the right error."""

from __future__ import annotations

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
BAD = R.MALFORMED_PACKET
PROTO = R.PROTOCOL_ERROR

PUB_A = string("a")
SUB_OK = string("a/b") + b"\x01"

# (case id, side, version (None: before CONNECT), bytes, error class, reason code)
CASES: list[tuple[str, str, int | None, bytes, type[RemoteProtocolError], ReasonCode]] = [
    # Fixed header and framing
    ("first packet not CONNECT", "server", None, b"\xc0\x00", ProtocolError, PROTO),
    ("second CONNECT", "server", 4, connect_bytes(4), ProtocolError, PROTO),
    ("reserved type 0", "server", 4, b"\x00\x00", MalformedPacket, BAD),
    ("AUTH in 3.1.1", "server", 4, b"\xf0\x00", MalformedPacket, BAD),
    ("AUTH in 3.1", "server", 3, b"\xf0\x00", MalformedPacket, BAD),
    ("CONNECT header flags", "server", None, b"\x11" + connect_bytes(4)[1:], MalformedPacket, BAD),
    ("PUBREL flags 0", "server", 4, frame(0x60, u16(1)), MalformedPacket, BAD),
    ("SUBSCRIBE flags 0", "server", 4, frame(0x80, u16(1) + SUB_OK), MalformedPacket, BAD),
    ("UNSUBSCRIBE flags 0", "server", 4, frame(0xA0, u16(1) + string("a")), MalformedPacket, BAD),
    ("PUBACK flags 2", "server", 4, frame(0x42, u16(1)), MalformedPacket, BAD),
    ("PINGREQ flags 1", "server", 4, b"\xc1\x00", MalformedPacket, BAD),
    ("DISCONNECT flags 8", "server", 5, b"\xe8\x00", MalformedPacket, BAD),
    ("PUBLISH QoS 3", "server", 4, frame(0x36, PUB_A + u16(1)), MalformedPacket, BAD),
    ("PUBLISH DUP at QoS 0", "server", 4, frame(0x38, PUB_A), MalformedPacket, BAD),
    ("length of 5 bytes", "server", 4, b"\x30\xff\xff\xff\xff\x01", MalformedPacket, BAD),
    ("length not shortest", "server", 4, b"\xc0\x80\x00", MalformedPacket, BAD),
    ("server gets CONNACK", "server", 4, b"\x20\x02\x00\x00", ProtocolError, PROTO),
    ("server gets SUBACK", "server", 4, frame(0x90, u16(1) + b"\x00"), ProtocolError, PROTO),
    ("server gets UNSUBACK", "server", 4, frame(0xB0, u16(1)), ProtocolError, PROTO),
    ("server gets PINGRESP", "server", 4, b"\xd0\x00", ProtocolError, PROTO),
    ("client gets CONNECT", "client", 4, connect_bytes(4), ProtocolError, PROTO),
    ("client gets SUBSCRIBE", "client", 4, frame(0x82, u16(1) + SUB_OK), ProtocolError, PROTO),
    ("client gets UNSUBSCRIBE", "client", 5, frame(0xA2, u16(1) + b"\x00a"), ProtocolError, PROTO),
    ("client gets PINGREQ", "client", 4, b"\xc0\x00", ProtocolError, PROTO),
    # UTF-8 strings
    ("topic not UTF-8", "server", 4, frame(0x30, string(b"a\xff")), MalformedPacket, BAD),
    ("topic with U+0000", "server", 4, frame(0x30, string(b"a\x00b")), MalformedPacket, BAD),
    (
        "topic with surrogate",
        "server",
        4,
        frame(0x30, string(b"\xed\xa0\x80")),
        MalformedPacket,
        BAD,
    ),
    ("overlong UTF-8", "server", 4, frame(0x30, string(b"\xc0\xaf")), MalformedPacket, BAD),
    ("topic past the end", "server", 4, frame(0x30, u16(9) + b"ab"), MalformedPacket, BAD),
    ("topic length cut", "server", 4, frame(0x30, b"\x00"), MalformedPacket, BAD),
    (
        "client id with NUL",
        "server",
        None,
        frame(0x10, string("MQTT") + b"\x04\x02" + u16(9) + string(b"c\x00")),
        MalformedPacket,
        BAD,
    ),
    # PUBLISH
    ("topic with +", "server", 4, frame(0x30, string("a/+")), ProtocolError, R.TOPIC_NAME_INVALID),
    (
        "topic with #",
        "server",
        5,
        frame(0x30, string("a/#") + b"\x00"),
        ProtocolError,
        R.TOPIC_NAME_INVALID,
    ),
    (
        "empty topic 3.1.1",
        "server",
        4,
        frame(0x30, string("")),
        ProtocolError,
        R.TOPIC_NAME_INVALID,
    ),
    ("empty topic, no alias", "server", 5, frame(0x30, string("") + b"\x00"), ProtocolError, PROTO),
    ("PUBLISH id 0", "server", 4, frame(0x32, PUB_A + u16(0)), ProtocolError, PROTO),
    ("PUBLISH id cut", "server", 4, frame(0x32, PUB_A + b"\x01"), MalformedPacket, BAD),
    (
        "client sends sub id",
        "server",
        5,
        frame(0x30, PUB_A + props(b"\x0b\x01")),
        ProtocolError,
        PROTO,
    ),
    (
        "topic alias 0",
        "server",
        5,
        frame(0x30, PUB_A + props(b"\x23" + u16(0))),
        ProtocolError,
        R.TOPIC_ALIAS_INVALID,
    ),
    (
        "payload format 2",
        "server",
        5,
        frame(0x30, PUB_A + props(b"\x01\x02")),
        ProtocolError,
        PROTO,
    ),
    (
        "response topic +",
        "server",
        5,
        frame(0x30, PUB_A + props(b"\x08" + string("r/+"))),
        ProtocolError,
        R.TOPIC_NAME_INVALID,
    ),
    (
        "sub id 0 to client",
        "client",
        5,
        frame(0x30, PUB_A + props(b"\x0b\x00")),
        ProtocolError,
        PROTO,
    ),
    ("PUBLISH props past end", "server", 5, frame(0x30, PUB_A + b"\x05\x01"), MalformedPacket, BAD),
    ("PUBLISH props missing", "server", 5, frame(0x30, PUB_A), MalformedPacket, BAD),
    # CONNECT
    (
        "level 6",
        "server",
        None,
        frame(0x10, string("MQTT") + b"\x06\x02" + u16(9) + string("c")),
        UnsupportedProtocolVersion,
        R.UNSUPPORTED_PROTOCOL_VERSION,
    ),
    (
        "level 2",
        "server",
        None,
        frame(0x10, string("MQTT") + b"\x02\x02" + u16(9) + string("c")),
        UnsupportedProtocolVersion,
        R.UNSUPPORTED_PROTOCOL_VERSION,
    ),
    (
        "MQIsdp level 4",
        "server",
        None,
        frame(0x10, string("MQIsdp") + b"\x04\x02" + u16(9) + string("c")),
        UnsupportedProtocolVersion,
        R.UNSUPPORTED_PROTOCOL_VERSION,
    ),
    (
        "protocol name HTTP",
        "server",
        None,
        frame(0x10, string("HTTP") + b"\x04\x02" + u16(9) + string("c")),
        ProtocolError,
        PROTO,
    ),
    ("CONNECT reserved flag", "server", None, connect_bytes(4, flags=0x03), MalformedPacket, BAD),
    (
        "will QoS 3",
        "server",
        None,
        connect_bytes(4, flags=0x1E, tail=string("w") + string("p")),
        MalformedPacket,
        BAD,
    ),
    ("will QoS, no will", "server", None, connect_bytes(4, flags=0x0A), MalformedPacket, BAD),
    ("will retain, no will", "server", None, connect_bytes(4, flags=0x22), MalformedPacket, BAD),
    (
        "password, no user 3.1.1",
        "server",
        None,
        connect_bytes(4, flags=0x42, tail=string("pw")),
        MalformedPacket,
        BAD,
    ),
    (
        "password, no user 3.1",
        "server",
        None,
        connect_bytes(3, flags=0x42, tail=string("pw")),
        MalformedPacket,
        BAD,
    ),
    ("user name missing", "server", None, connect_bytes(4, flags=0x82), MalformedPacket, BAD),
    ("CONNECT trailing bytes", "server", None, connect_bytes(4, tail=b"x"), MalformedPacket, BAD),
    (
        "will topic with #",
        "server",
        None,
        connect_bytes(4, flags=0x06, tail=string("w/#") + string("p")),
        ProtocolError,
        R.TOPIC_NAME_INVALID,
    ),
    # v5 properties (in CONNECT: name, level 5, flags, keepalive, then properties)
    *[
        (
            name,
            "server",
            None,
            frame(0x10, string("MQTT") + b"\x05\x02" + u16(9) + block + string("c")),
            error,
            reason,
        )
        for name, block, error, reason in [
            ("receive maximum 0", props(b"\x21" + u16(0)), ProtocolError, PROTO),
            ("maximum packet size 0", props(b"\x27" + bytes(4)), ProtocolError, PROTO),
            ("request problem info 2", props(b"\x17\x02"), ProtocolError, PROTO),
            ("request response info 2", props(b"\x19\x02"), ProtocolError, PROTO),
            (
                "session expiry twice",
                props(b"\x11" + bytes(4) + b"\x11" + bytes(4)),
                ProtocolError,
                PROTO,
            ),
            ("topic alias in CONNECT", props(b"\x23" + u16(1)), ProtocolError, PROTO),
            ("unknown property 0x05", props(b"\x05\x00"), MalformedPacket, BAD),
            ("property id not shortest", props(b"\x91\x00" + bytes(4)), MalformedPacket, BAD),
            ("property value cut", props(b"\x11\x00\x00"), MalformedPacket, BAD),
            ("property length past end", b"\x7f", MalformedPacket, BAD),
            ("auth data, no method", props(b"\x16" + string("x")), ProtocolError, PROTO),
            ("user property cut", props(b"\x26" + string("k")), MalformedPacket, BAD),
        ]
    ],
    (
        "will delay in CONNECT",
        "server",
        None,
        frame(
            0x10, string("MQTT") + b"\x05\x02" + u16(9) + props(b"\x18" + bytes(4)) + string("c")
        ),
        ProtocolError,
        PROTO,
    ),
    (
        "receive maximum in will",
        "server",
        None,
        frame(
            0x10,
            string("MQTT")
            + b"\x05\x06"
            + u16(9)
            + b"\x00"
            + string("c")
            + props(b"\x21" + u16(5))
            + string("w")
            + string("p"),
        ),
        ProtocolError,
        PROTO,
    ),
    # Acknowledgements
    ("PUBACK 3.1.1 too long", "server", 4, frame(0x40, u16(1) + b"\x00"), MalformedPacket, BAD),
    ("PUBACK id 0", "server", 4, frame(0x40, u16(0)), ProtocolError, PROTO),
    ("PUBACK too short", "server", 4, frame(0x40, b"\x01"), MalformedPacket, BAD),
    ("PUBACK reason 0x01", "server", 5, frame(0x40, u16(1) + b"\x01"), ProtocolError, PROTO),
    ("PUBREL reason 0x10", "server", 5, frame(0x62, u16(1) + b"\x10"), ProtocolError, PROTO),
    ("PUBCOMP reason 0x80", "server", 5, frame(0x70, u16(1) + b"\x80"), ProtocolError, PROTO),
    ("PUBREC props cut", "server", 5, frame(0x50, u16(1) + b"\x00\x03\x1f"), MalformedPacket, BAD),
    (
        "PUBACK with topic alias",
        "server",
        5,
        frame(0x40, u16(1) + b"\x00" + props(b"\x23" + u16(1))),
        ProtocolError,
        PROTO,
    ),
    # SUBSCRIBE / UNSUBSCRIBE
    ("SUBSCRIBE without filters", "server", 4, frame(0x82, u16(1)), ProtocolError, PROTO),
    (
        "SUBSCRIBE without filters v5",
        "server",
        5,
        frame(0x82, u16(1) + b"\x00"),
        ProtocolError,
        PROTO,
    ),
    ("SUBSCRIBE id 0", "server", 4, frame(0x82, u16(0) + SUB_OK), ProtocolError, PROTO),
    ("options missing", "server", 4, frame(0x82, u16(1) + string("a")), MalformedPacket, BAD),
    (
        "3.1.1 reserved option bits",
        "server",
        4,
        frame(0x82, u16(1) + string("a") + b"\x04"),
        MalformedPacket,
        BAD,
    ),
    ("3.1.1 QoS 3", "server", 4, frame(0x82, u16(1) + string("a") + b"\x03"), MalformedPacket, BAD),
    (
        "v5 reserved option bits",
        "server",
        5,
        frame(0x82, u16(1) + b"\x00" + string("a") + b"\x40"),
        MalformedPacket,
        BAD,
    ),
    (
        "v5 QoS 3",
        "server",
        5,
        frame(0x82, u16(1) + b"\x00" + string("a") + b"\x03"),
        ProtocolError,
        PROTO,
    ),
    (
        "retain handling 3",
        "server",
        5,
        frame(0x82, u16(1) + b"\x00" + string("a") + b"\x30"),
        ProtocolError,
        PROTO,
    ),
    (
        "no local on shared",
        "server",
        5,
        frame(0x82, u16(1) + b"\x00" + string("$share/g/a") + b"\x04"),
        ProtocolError,
        PROTO,
    ),
    (
        "subscription id 0",
        "server",
        5,
        frame(0x82, u16(1) + props(b"\x0b\x00") + SUB_OK),
        ProtocolError,
        PROTO,
    ),
    (
        "subscription id twice",
        "server",
        5,
        frame(0x82, u16(1) + props(b"\x0b\x01\x0b\x02") + SUB_OK),
        ProtocolError,
        PROTO,
    ),
    (
        "subscription id 5 bytes",
        "server",
        5,
        frame(0x82, u16(1) + props(b"\x0b\xff\xff\xff\xff\x01") + SUB_OK),
        MalformedPacket,
        BAD,
    ),
    *[
        (
            f"filter {text!r}",
            "server",
            4,
            frame(0x82, u16(1) + string(text) + b"\x00"),
            ProtocolError,
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
    ("UNSUBSCRIBE without filters", "server", 4, frame(0xA2, u16(1)), ProtocolError, PROTO),
    (
        "UNSUBSCRIBE bad filter",
        "server",
        5,
        frame(0xA2, u16(1) + b"\x00" + string("a/#/")),
        ProtocolError,
        R.TOPIC_FILTER_INVALID,
    ),
    ("UNSUBSCRIBE id 0", "server", 4, frame(0xA2, u16(0) + string("a")), ProtocolError, PROTO),
    # PINGREQ, DISCONNECT, AUTH
    ("PINGREQ with a body", "server", 4, b"\xc0\x01\x00", MalformedPacket, BAD),
    ("DISCONNECT 3.1.1 with a body", "server", 4, b"\xe0\x01\x00", MalformedPacket, BAD),
    ("DISCONNECT reason 0x01", "server", 5, b"\xe0\x01\x01", ProtocolError, PROTO),
    ("DISCONNECT trailing", "server", 5, b"\xe0\x03\x00\x00\x00", MalformedPacket, BAD),
    (
        "DISCONNECT topic alias",
        "server",
        5,
        frame(0xE0, b"\x00" + props(b"\x23" + u16(1))),
        ProtocolError,
        PROTO,
    ),
    ("AUTH reason 0x05", "server", 5, b"\xf0\x01\x05", ProtocolError, PROTO),
    # What a client-side decoder checks in server packets
    ("CONNACK reserved flags", "client", 4, b"\x20\x02\x02\x00", MalformedPacket, BAD),
    ("CONNACK 3.1.1 code 6", "client", 4, b"\x20\x02\x00\x06", ProtocolError, PROTO),
    ("CONNACK v5 code 0x01", "client", 5, b"\x20\x03\x00\x01\x00", ProtocolError, PROTO),
    ("CONNACK present, refused", "client", 4, b"\x20\x02\x01\x05", ProtocolError, PROTO),
    ("CONNACK v5 no properties", "client", 5, b"\x20\x02\x00\x00", MalformedPacket, BAD),
    ("CONNACK 3.1.1 too long", "client", 4, b"\x20\x03\x00\x00\x00", MalformedPacket, BAD),
    ("CONNACK maximum QoS 2", "client", 5, b"\x20\x05\x00\x00\x02\x24\x02", ProtocolError, PROTO),
    ("SUBACK without codes", "client", 4, frame(0x90, u16(1)), ProtocolError, PROTO),
    ("SUBACK 3.1.1 code 0x87", "client", 4, frame(0x90, u16(1) + b"\x87"), ProtocolError, PROTO),
    ("SUBACK v5 code 0x03", "client", 5, frame(0x90, u16(1) + b"\x00\x03"), ProtocolError, PROTO),
    ("UNSUBACK 3.1.1 with codes", "client", 4, frame(0xB0, u16(1) + b"\x00"), MalformedPacket, BAD),
    ("UNSUBACK v5 code 0x01", "client", 5, frame(0xB0, u16(1) + b"\x00\x01"), ProtocolError, PROTO),
    ("PINGRESP with a body", "client", 4, b"\xd0\x01\x00", MalformedPacket, BAD),
    (
        "server DISCONNECT with session expiry",
        "client",
        5,
        frame(0xE0, b"\x00" + props(b"\x11" + bytes(4))),
        ProtocolError,
        PROTO,
    ),
]


def _decoder(side: str, version: int | None) -> Decoder:
    if side == "client":
        assert version is not None
        return client(version)
    return server(version)


@pytest.mark.parametrize(
    ("side", "version", "data", "error", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_violation_is_rejected_with_its_reason_code(
    side: str,
    version: int | None,
    data: bytes,
    error: type[RemoteProtocolError],
    reason: ReasonCode,
) -> None:
    for feed in (Decoder.feed, feed_bytewise):
        decoder = _decoder(side, version)
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
