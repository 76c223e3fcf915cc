"""Decoders for the variable header and payload of each packet type.

Each takes (buffer, fixed-header flags, body start, body end, version, server side?) and
returns the packet; the body is complete, so running short is malformed. The fixed header
(type, flags, direction, length) was already checked by `roost.mqtt.codec`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Protocol

from roost.mqtt import reasons
from roost.mqtt.errors import (
    MalformedPacket,
    ProtocolError,
    RemoteProtocolError,
    UnsupportedProtocolVersion,
)
from roost.mqtt.packets import (
    MQTT_5,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    PingReq,
    PingResp,
    Properties,
    PropertyId,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    RetainHandling,
    SubAck,
    Subscribe,
    Subscription,
    UnsubAck,
    Unsubscribe,
    Will,
)
from roost.mqtt.properties import WILL, read_properties
from roost.mqtt.topic_syntax import is_shared, valid_topic_filter, valid_topic_name
from roost.mqtt.wire import read_bin, read_str, read_u8, read_u16


class BodyDecoder(Protocol):
    def __call__(
        self, buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool
    ) -> Packet: ...


T = PacketType
_new = object.__new__
_PROTOCOLS = {"MQTT": (4, 5), "MQIsdp": (3,)}


def _end_check(pos: int, end: int) -> None:
    if pos != end:
        raise MalformedPacket("unexpected bytes after the end of the packet")


def _packet_id(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    packet_id, pos = read_u16(buf, pos, end)
    if not packet_id:
        raise ProtocolError("packet identifier 0")
    return packet_id, pos


def _reason(buf: bytes, pos: int, end: int, allowed: frozenset[int]) -> tuple[int, int]:
    code, pos = read_u8(buf, pos, end)
    if code not in allowed:
        raise ProtocolError(f"reason code 0x{code:02x} is not valid in this packet")
    return code, pos


def _check_auth(props: Properties) -> None:
    if PropertyId.AUTHENTICATION_DATA in props and PropertyId.AUTHENTICATION_METHOD not in props:
        raise ProtocolError("authentication data without an authentication method")


def _topic_name(topic: str) -> str:
    if not valid_topic_name(topic):
        raise ProtocolError(f"invalid topic name {topic!r}", ReasonCode.TOPIC_NAME_INVALID)
    return topic


def _topic_filter(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    topic_filter, pos = read_str(buf, pos, end)
    if not valid_topic_filter(topic_filter):
        raise ProtocolError(
            f"invalid topic filter {topic_filter!r}", ReasonCode.TOPIC_FILTER_INVALID
        )
    return topic_filter, pos


def connect(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
    name, pos = read_str(buf, pos, end)
    if name not in _PROTOCOLS:
        raise ProtocolError(f"unknown protocol name {name!r}")
    level, pos = read_u8(buf, pos, end)
    if level not in _PROTOCOLS[name]:
        raise UnsupportedProtocolVersion(f"unsupported protocol level {level} for {name}")
    bits, pos = read_u8(buf, pos, end)
    will_flag = bits & 0x04
    will_qos = bits >> 3 & 3
    will_retain = bits & 0x20
    has_password = bits & 0x40
    has_username = bits & 0x80
    if bits & 0x01:
        raise MalformedPacket("CONNECT reserved flag is set")
    if will_qos == 3:
        raise MalformedPacket("will QoS 3")
    if not will_flag and (will_qos or will_retain):
        raise MalformedPacket("will QoS or retain set without a will")
    if level < MQTT_5 and has_password and not has_username:
        raise MalformedPacket("password without user name")
    keepalive, pos = read_u16(buf, pos, end)
    props: Properties = {}
    if level == MQTT_5:
        props, pos = read_properties(buf, pos, end, T.CONNECT)
        _check_auth(props)
    client_id, pos = read_str(buf, pos, end)
    will = None
    if will_flag:
        will_props: Properties = {}
        if level == MQTT_5:
            will_props, pos = read_properties(buf, pos, end, WILL)
        will_topic, pos = read_str(buf, pos, end)
        will_payload, pos = read_bin(buf, pos, end)
        will = Will(_topic_name(will_topic), will_payload, will_qos, bool(will_retain), will_props)
    username = password = None
    if has_username:
        username, pos = read_str(buf, pos, end)
    if has_password:
        password, pos = read_bin(buf, pos, end)
    _end_check(pos, end)
    return Connect(
        client_id, level, bool(bits & 0x02), keepalive, username, password, will, props, name
    )


def connack(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
    ack_flags, pos = read_u8(buf, pos, end)
    if ack_flags & 0xFE:
        raise MalformedPacket("CONNACK reserved flags are set")
    code, pos = read_u8(buf, pos, end)
    props: Properties = {}
    if version == MQTT_5:
        if code not in reasons.CONNACK:
            raise ProtocolError(f"reason code 0x{code:02x} is not valid in CONNACK")
        props, pos = read_properties(buf, pos, end, T.CONNACK)
        _check_auth(props)
    elif code not in reasons.CONNACK_V3:
        raise ProtocolError(f"CONNACK return code {code} is reserved")
    if code and ack_flags:
        raise ProtocolError("session present on a refused connection")
    _end_check(pos, end)
    return ConnAck(bool(ack_flags), code, props)


# A frozen dataclass assigns each field through object.__setattr__, which costs more than
# the rest of PUBLISH decoding; writing through the slot descriptors stores the same values
# at half the cost. Publish has no __post_init__ for this to skip.
assert not hasattr(Publish, "__post_init__")
_SET_TOPIC, _SET_PAYLOAD, _SET_QOS, _SET_RETAIN, _SET_DUP, _SET_ID, _SET_PROPS = (
    getattr(Publish, f.name).__set__ for f in fields(Publish)
)


def _bad_topic(topic: str) -> RemoteProtocolError:
    if "\x00" in topic:
        return MalformedPacket("string contains U+0000")
    return ProtocolError("wildcard in a PUBLISH topic", ReasonCode.TOPIC_NAME_INVALID)


def publish(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
    if pos + 2 > end:
        raise MalformedPacket("PUBLISH ends inside the topic length")
    stop = pos + 2 + (buf[pos] << 8 | buf[pos + 1])
    if stop > end:
        raise MalformedPacket("PUBLISH topic runs past the end of the packet")
    try:
        topic = buf[pos + 2 : stop].decode()
    except UnicodeDecodeError:
        raise MalformedPacket("topic is not well-formed UTF-8") from None
    if "+" in topic or "#" in topic or "\x00" in topic:
        raise _bad_topic(topic)
    pos = stop
    qos = flags >> 1 & 3
    packet_id = None
    if qos:
        if pos + 2 > end:
            raise MalformedPacket("PUBLISH ends inside the packet identifier")
        packet_id = buf[pos] << 8 | buf[pos + 1]
        if not packet_id:
            raise ProtocolError("packet identifier 0")
        pos += 2
    props: Properties = {}
    if version == MQTT_5:
        if pos < end and not buf[pos]:
            pos += 1  # the common case: no properties
        else:
            props, pos = read_properties(buf, pos, end, T.PUBLISH)
            if server and PropertyId.SUBSCRIPTION_IDENTIFIER in props:
                raise ProtocolError("a client PUBLISH carries a subscription identifier")
        if not topic and PropertyId.TOPIC_ALIAS not in props:
            raise ProtocolError("empty topic without a topic alias")
    elif not topic:
        raise ProtocolError("empty PUBLISH topic", ReasonCode.TOPIC_NAME_INVALID)
    packet = _new(Publish)
    _SET_TOPIC(packet, topic)
    _SET_PAYLOAD(packet, buf[pos:end])
    _SET_QOS(packet, qos)
    _SET_RETAIN(packet, (flags & 1) == 1)
    _SET_DUP(packet, (flags & 8) == 8)
    _SET_ID(packet, packet_id)
    _SET_PROPS(packet, props)
    return packet


def _ack(kind: type[PubAck | PubRec | PubRel | PubComp], codes: frozenset[int]) -> BodyDecoder:
    ptype = {PubAck: T.PUBACK, PubRec: T.PUBREC, PubRel: T.PUBREL, PubComp: T.PUBCOMP}[kind]

    def decode(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
        packet_id, pos = _packet_id(buf, pos, end)
        code = 0
        props: Properties = {}
        # v5 short forms: no reason code means success, no property length means none.
        if version == MQTT_5 and pos < end:
            code, pos = _reason(buf, pos, end, codes)
            if pos < end:
                props, pos = read_properties(buf, pos, end, ptype)
        _end_check(pos, end)
        return kind(packet_id, code, props)

    return decode


def _head(buf: bytes, pos: int, end: int, version: int, ptype: int) -> tuple[int, Properties, int]:
    """How SUBSCRIBE, UNSUBSCRIBE and their acks begin: packet id, then v5 properties."""
    packet_id, pos = _packet_id(buf, pos, end)
    props: Properties = {}
    if version == MQTT_5:
        props, pos = read_properties(buf, pos, end, ptype)
    return packet_id, props, pos


def _subscription(topic_filter: str, options: int, version: int) -> Subscription:
    qos = options & 3
    if version != MQTT_5:
        if options & 0xFC or qos == 3:
            raise MalformedPacket("invalid subscription options")
        return Subscription(topic_filter, qos)
    if options & 0xC0:
        raise MalformedPacket("subscription options reserved bits are set")
    if qos == 3:
        raise ProtocolError("subscription QoS 3")
    handling = options >> 4 & 3
    if handling == 3:
        raise ProtocolError("retain handling 3")
    no_local = (options & 4) == 4
    if no_local and is_shared(topic_filter):
        raise ProtocolError("no local on a shared subscription")
    return Subscription(topic_filter, qos, no_local, (options & 8) == 8, RetainHandling(handling))


def subscribe(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
    packet_id, props, pos = _head(buf, pos, end, version, T.SUBSCRIBE)
    subs = []
    while pos < end:
        topic_filter, pos = _topic_filter(buf, pos, end)
        options, pos = read_u8(buf, pos, end)
        subs.append(_subscription(topic_filter, options, version))
    if not subs:
        raise ProtocolError("SUBSCRIBE without a topic filter")
    return Subscribe(packet_id, tuple(subs), props)


def unsubscribe(
    buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool
) -> Packet:
    packet_id, props, pos = _head(buf, pos, end, version, T.UNSUBSCRIBE)
    filters = []
    while pos < end:
        topic_filter, pos = _topic_filter(buf, pos, end)
        filters.append(topic_filter)
    if not filters:
        raise ProtocolError("UNSUBSCRIBE without a topic filter")
    return Unsubscribe(packet_id, tuple(filters), props)


def _codes(buf: bytes, pos: int, end: int, allowed: frozenset[int]) -> tuple[int, ...]:
    codes = tuple(buf[pos:end])
    if not codes:
        raise ProtocolError("acknowledgement without reason codes")
    for code in codes:
        if code not in allowed:
            raise ProtocolError(f"reason code 0x{code:02x} is not valid in this packet")
    return codes


def suback(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
    packet_id, props, pos = _head(buf, pos, end, version, T.SUBACK)
    allowed = reasons.SUBACK if version == MQTT_5 else reasons.SUBACK_V3
    return SubAck(packet_id, _codes(buf, pos, end, allowed), props)


def unsuback(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
    packet_id, props, pos = _head(buf, pos, end, version, T.UNSUBACK)
    if version == MQTT_5:
        return UnsubAck(packet_id, _codes(buf, pos, end, reasons.UNSUBACK), props)
    _end_check(pos, end)
    return UnsubAck(packet_id)


def _empty(kind: type[PingReq | PingResp]) -> BodyDecoder:
    def decode(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
        _end_check(pos, end)
        return kind()

    return decode


def _reason_and_props(
    buf: bytes, pos: int, end: int, ptype: int, codes: frozenset[int]
) -> tuple[int, Properties]:
    """The v5 DISCONNECT / AUTH body: both parts optional (remaining length 0 or 1)."""
    code = 0
    props: Properties = {}
    if pos < end:
        code, pos = _reason(buf, pos, end, codes)
        if pos < end:
            props, pos = read_properties(buf, pos, end, ptype)
    _end_check(pos, end)
    return code, props


def disconnect(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
    if version != MQTT_5:
        _end_check(pos, end)
        return Disconnect()
    code, props = _reason_and_props(buf, pos, end, T.DISCONNECT, reasons.DISCONNECT)
    if not server and PropertyId.SESSION_EXPIRY_INTERVAL in props:
        raise ProtocolError("a server DISCONNECT carries a session expiry interval")
    return Disconnect(code, props)


def auth(buf: bytes, flags: int, pos: int, end: int, *, version: int, server: bool) -> Packet:
    code, props = _reason_and_props(buf, pos, end, T.AUTH, reasons.AUTH)
    _check_auth(props)
    return Auth(code, props)


# Indexed by packet type; 0 is reserved and rejected before any body is read.
BODIES: tuple[BodyDecoder, ...] = (
    connect,
    connect,
    connack,
    publish,
    _ack(PubAck, reasons.PUBACK),
    _ack(PubRec, reasons.PUBACK),
    _ack(PubRel, reasons.PUBREL),
    _ack(PubComp, reasons.PUBREL),
    subscribe,
    suback,
    unsubscribe,
    unsuback,
    _empty(PingReq),
    _empty(PingResp),
    disconnect,
    auth,
)
