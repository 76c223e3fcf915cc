"""Packets to bytes. `encode(packet, version)` writes the packet as `version` defines it:
fields 3.1.1 lacks (properties, ack reason codes) are left out for versions 3 and 4, and
v5 acks, DISCONNECT and AUTH use their short forms when nothing would follow.

A packet the protocol forbids (QoS 3, packet id 0, a wildcard in a PUBLISH topic, ...)
raises LocalProtocolError: that is our bug, not the peer's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from roost.mqtt import reasons
from roost.mqtt.errors import LocalProtocolError
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
    PropertyId,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
)
from roost.mqtt.properties import WILL, properties_field
from roost.mqtt.topic_syntax import valid_topic_filter, valid_topic_name
from roost.mqtt.wire import U16, bin_field, str_field, u16, varint

T = PacketType
_NO_PROPS = b"\x00"
_PROTOCOL_LEVELS = {3: "MQIsdp", 4: "MQTT", 5: "MQTT"}


def _frame(first: int, *parts: bytes) -> bytes:
    size = sum(map(len, parts))
    return b"".join((bytes((first,)), varint(size), *parts))


def _props(packet: Any, ptype: int) -> bytes:
    return properties_field(packet.properties, ptype) if packet.properties else _NO_PROPS


def _packet_id(packet_id: int | None) -> bytes:
    if not packet_id or packet_id > 0xFFFF:
        raise LocalProtocolError(f"invalid packet identifier {packet_id!r}")
    return U16.pack(packet_id)


def _reason(code: int, allowed: frozenset[int]) -> bytes:
    if code not in allowed:
        raise LocalProtocolError(f"reason code 0x{code:02x} is not valid in this packet")
    return bytes((code,))


def _qos(qos: int) -> int:
    if qos not in (0, 1, 2):
        raise LocalProtocolError(f"invalid QoS {qos!r}")
    return qos


def _topic(text: str, *, wildcards: bool) -> bytes:
    """A will topic (a name) or a subscription's topic filter, checked, as a string field."""
    if not (valid_topic_filter(text) if wildcards else valid_topic_name(text)):
        raise LocalProtocolError(f"invalid topic {'filter' if wildcards else 'name'} {text!r}")
    return str_field(text)


def _topic_missing(packet: Publish, version: int) -> bool:
    """Only a v5 topic alias may stand in for an empty topic."""
    return version != MQTT_5 or PropertyId.TOPIC_ALIAS not in packet.properties


def _publish(packet: Publish, version: int) -> bytes:
    topic = packet.topic
    if (
        "+" in topic
        or "#" in topic
        or "\x00" in topic
        or (not topic and _topic_missing(packet, version))
    ):
        raise LocalProtocolError(f"invalid PUBLISH topic {topic!r}")
    try:
        raw = topic.encode()
    except UnicodeEncodeError:
        raise LocalProtocolError("topic is not encodable as UTF-8") from None
    if len(raw) > 0xFFFF:
        raise LocalProtocolError("topic longer than 65535 bytes")
    qos = packet.qos
    packet_id = packet.packet_id
    if qos == 1 or qos == 2:  # noqa: PLR1714 - faster than a tuple test on the hot path
        if not packet_id or packet_id > 0xFFFF:
            raise LocalProtocolError(f"invalid packet identifier {packet_id!r}")
        ident = U16.pack(packet_id)
    elif qos or packet_id is not None or packet.dup:
        raise LocalProtocolError("invalid QoS, or a QoS 0 PUBLISH with a packet id or DUP")
    else:
        ident = b""
    props = b""
    if version == MQTT_5:
        props = properties_field(packet.properties, T.PUBLISH) if packet.properties else b"\x00"
    payload = packet.payload
    size = 2 + len(raw) + len(ident) + len(props) + len(payload)
    first = 0x30 | qos << 1 | packet.retain | packet.dup << 3
    fixed = bytes((first, size)) if size < 128 else bytes((first,)) + varint(size)
    return b"".join((fixed, U16.pack(len(raw)), raw, ident, props, payload))


def _connect(packet: Connect, version: int) -> bytes:
    level = packet.protocol_version
    if level != version or _PROTOCOL_LEVELS.get(level) != packet.protocol_name:
        raise LocalProtocolError(
            f"CONNECT {packet.protocol_name!r} level {level} cannot be sent as version {version}"
        )
    v5 = level == MQTT_5
    flags = 0x02 if packet.clean_start else 0
    payload = [str_field(packet.client_id)]
    will = packet.will
    if will is not None:
        flags |= 0x04 | _qos(will.qos) << 3 | will.retain << 5
        if v5:
            payload.append(_props(will, WILL))
        payload += (_topic(will.topic, wildcards=False), bin_field(will.payload))
    if packet.username is not None:
        flags |= 0x80
        payload.append(str_field(packet.username))
    if packet.password is not None:
        if packet.username is None and not v5:
            raise LocalProtocolError("MQTT 3.1.1 needs a user name to send a password")
        flags |= 0x40
        payload.append(bin_field(packet.password))
    header = str_field(packet.protocol_name) + bytes((level, flags)) + u16(packet.keepalive)
    if v5:
        header += _props(packet, T.CONNECT)
    return _frame(0x10, header, *payload)


def _connack(packet: ConnAck, version: int) -> bytes:
    if packet.session_present and packet.reason_code:
        raise LocalProtocolError("a refused connection has no session present")
    v5 = version == MQTT_5
    code = _reason(packet.reason_code, reasons.CONNACK if v5 else reasons.CONNACK_V3)
    body = bytes((packet.session_present,)) + code
    if v5:
        return _frame(0x20, body, _props(packet, T.CONNACK))
    return _frame(0x20, body)


def _ack(first: int, ptype: int, codes: frozenset[int]) -> Callable[[Any, int], bytes]:
    def encode_ack(packet: PubAck | PubRec | PubRel | PubComp, version: int) -> bytes:
        packet_id = _packet_id(packet.packet_id)
        if version != MQTT_5 or (not packet.reason_code and not packet.properties):
            return _frame(first, packet_id)
        code = _reason(packet.reason_code, codes)
        if not packet.properties:
            return _frame(first, packet_id, code)
        return _frame(first, packet_id, code, properties_field(packet.properties, ptype))

    return encode_ack


def _head(
    packet: Subscribe | Unsubscribe | SubAck | UnsubAck, version: int, ptype: int
) -> list[bytes]:
    """How SUBSCRIBE, UNSUBSCRIBE and their acks begin: packet id, then v5 properties."""
    parts = [_packet_id(packet.packet_id)]
    if version == MQTT_5:
        parts.append(_props(packet, ptype))
    return parts


def _subscribe(packet: Subscribe, version: int) -> bytes:
    if not packet.subscriptions:
        raise LocalProtocolError("SUBSCRIBE needs at least one subscription")
    parts = _head(packet, version, T.SUBSCRIBE)
    for sub in packet.subscriptions:
        options = _qos(sub.qos)
        if version == MQTT_5:
            options |= sub.no_local << 2 | sub.retain_as_published << 3
            options |= int(sub.retain_handling) << 4
        parts += (_topic(sub.topic_filter, wildcards=True), bytes((options,)))
    return _frame(0x82, *parts)


def _unsubscribe(packet: Unsubscribe, version: int) -> bytes:
    if not packet.topic_filters:
        raise LocalProtocolError("UNSUBSCRIBE needs at least one topic filter")
    parts = _head(packet, version, T.UNSUBSCRIBE)
    return _frame(0xA2, *parts, *(_topic(f, wildcards=True) for f in packet.topic_filters))


def _codes(codes: tuple[int, ...], allowed: frozenset[int]) -> bytes:
    if not codes:
        raise LocalProtocolError("an acknowledgement needs at least one reason code")
    return b"".join(_reason(code, allowed) for code in codes)


def _suback(packet: SubAck, version: int) -> bytes:
    allowed = reasons.SUBACK if version == MQTT_5 else reasons.SUBACK_V3
    codes = _codes(packet.reason_codes, allowed)
    return _frame(0x90, *_head(packet, version, T.SUBACK), codes)


def _unsuback(packet: UnsubAck, version: int) -> bytes:
    if version != MQTT_5:
        return _frame(0xB0, _packet_id(packet.packet_id))
    codes = _codes(packet.reason_codes, reasons.UNSUBACK)
    return _frame(0xB0, *_head(packet, version, T.UNSUBACK), codes)


def _reason_and_props(
    first: int, ptype: int, allowed: frozenset[int]
) -> Callable[[Any, int], bytes]:
    """DISCONNECT and AUTH: v5 drops trailing parts that carry nothing."""

    def encode_reason(packet: Disconnect | Auth, version: int) -> bytes:
        if version != MQTT_5:
            if ptype == T.AUTH:
                raise LocalProtocolError("AUTH exists only in MQTT 5")
            return _frame(first)
        code = _reason(packet.reason_code, allowed)
        if packet.properties:
            return _frame(first, code, properties_field(packet.properties, ptype))
        return _frame(first, code) if packet.reason_code else _frame(first)

    return encode_reason


_ENCODERS: dict[type[Any], Callable[[Any, int], bytes]] = {
    Publish: _publish,
    Connect: _connect,
    ConnAck: _connack,
    PubAck: _ack(0x40, T.PUBACK, reasons.PUBACK),
    PubRec: _ack(0x50, T.PUBREC, reasons.PUBACK),
    PubRel: _ack(0x62, T.PUBREL, reasons.PUBREL),
    PubComp: _ack(0x70, T.PUBCOMP, reasons.PUBREL),
    Subscribe: _subscribe,
    SubAck: _suback,
    Unsubscribe: _unsubscribe,
    UnsubAck: _unsuback,
    PingReq: lambda packet, version: b"\xc0\x00",
    PingResp: lambda packet, version: b"\xd0\x00",
    Disconnect: _reason_and_props(0xE0, T.DISCONNECT, reasons.DISCONNECT),
    Auth: _reason_and_props(0xF0, T.AUTH, reasons.AUTH),
}


def encode(packet: Packet, version: int) -> bytes:
    """Serialize `packet` for a connection speaking `version` (3, 4 or 5)."""
    encoder = _ENCODERS.get(type(packet))
    if encoder is None:
        raise LocalProtocolError(f"cannot encode {packet!r}")
    try:
        return encoder(packet, version)
    except (ValueError, TypeError, OverflowError, struct.error) as exc:
        # A field of the wrong type or range (a reason code of 300, a str payload...).
        raise LocalProtocolError(f"cannot encode {packet!r}: {exc}") from exc
