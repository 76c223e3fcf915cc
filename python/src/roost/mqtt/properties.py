"""MQTT 5.0 properties (section 2.2.2): which packet may carry which property, in what
wire type, and the receiver-side checks on duplicates and value ranges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from roost.mqtt.errors import LocalProtocolError, MalformedPacket, ProtocolError
from roost.mqtt.packets import PacketType, Properties, PropertyId, ReasonCode
from roost.mqtt.topic_syntax import valid_topic_name
from roost.mqtt.wire import (
    bin_field,
    read_bin,
    read_str,
    read_u8,
    read_u16,
    read_u32,
    read_varint,
    str_field,
    u16,
    u32,
    varint,
)

WILL = 0  # pseudo packet type: the will properties inside CONNECT

P = PropertyId
T = PacketType
_ACKS = (T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP)
_MESSAGE = (T.PUBLISH, WILL)

# Wire types.
BYTE, U16, U32, VARINT, STR, BIN, PAIR = range(7)

# identifier -> (wire type, packet types allowed, the enum member, the identifier byte)
SPECS: dict[int, tuple[int, frozenset[int], PropertyId, bytes]] = {
    int(ident): (kind, frozenset(int(t) for t in where), ident, bytes((ident,)))
    for ident, kind, where in (
        (P.PAYLOAD_FORMAT_INDICATOR, BYTE, _MESSAGE),
        (P.MESSAGE_EXPIRY_INTERVAL, U32, _MESSAGE),
        (P.CONTENT_TYPE, STR, _MESSAGE),
        (P.RESPONSE_TOPIC, STR, _MESSAGE),
        (P.CORRELATION_DATA, BIN, _MESSAGE),
        (P.SUBSCRIPTION_IDENTIFIER, VARINT, (T.PUBLISH, T.SUBSCRIBE)),
        (P.SESSION_EXPIRY_INTERVAL, U32, (T.CONNECT, T.CONNACK, T.DISCONNECT)),
        (P.ASSIGNED_CLIENT_IDENTIFIER, STR, (T.CONNACK,)),
        (P.SERVER_KEEP_ALIVE, U16, (T.CONNACK,)),
        (P.AUTHENTICATION_METHOD, STR, (T.CONNECT, T.CONNACK, T.AUTH)),
        (P.AUTHENTICATION_DATA, BIN, (T.CONNECT, T.CONNACK, T.AUTH)),
        (P.REQUEST_PROBLEM_INFORMATION, BYTE, (T.CONNECT,)),
        (P.WILL_DELAY_INTERVAL, U32, (WILL,)),
        (P.REQUEST_RESPONSE_INFORMATION, BYTE, (T.CONNECT,)),
        (P.RESPONSE_INFORMATION, STR, (T.CONNACK,)),
        (P.SERVER_REFERENCE, STR, (T.CONNACK, T.DISCONNECT)),
        (
            P.REASON_STRING,
            STR,
            (T.CONNACK, *_ACKS, T.SUBACK, T.UNSUBACK, T.DISCONNECT, T.AUTH),
        ),
        (P.RECEIVE_MAXIMUM, U16, (T.CONNECT, T.CONNACK)),
        (P.TOPIC_ALIAS_MAXIMUM, U16, (T.CONNECT, T.CONNACK)),
        (P.TOPIC_ALIAS, U16, (T.PUBLISH,)),
        (P.MAXIMUM_QOS, BYTE, (T.CONNACK,)),
        (P.RETAIN_AVAILABLE, BYTE, (T.CONNACK,)),
        (P.USER_PROPERTY, PAIR, (*T, WILL)),
        (P.MAXIMUM_PACKET_SIZE, U32, (T.CONNECT, T.CONNACK)),
        (P.WILDCARD_SUBSCRIPTION_AVAILABLE, BYTE, (T.CONNACK,)),
        (P.SUBSCRIPTION_IDENTIFIER_AVAILABLE, BYTE, (T.CONNACK,)),
        (P.SHARED_SUBSCRIPTION_AVAILABLE, BYTE, (T.CONNACK,)),
    )
}

_FLAGS = frozenset(
    {
        P.PAYLOAD_FORMAT_INDICATOR,
        P.REQUEST_PROBLEM_INFORMATION,
        P.REQUEST_RESPONSE_INFORMATION,
        P.MAXIMUM_QOS,
        P.RETAIN_AVAILABLE,
        P.WILDCARD_SUBSCRIPTION_AVAILABLE,
        P.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        P.SHARED_SUBSCRIPTION_AVAILABLE,
    }
)
_NONZERO = frozenset(
    {P.RECEIVE_MAXIMUM, P.MAXIMUM_PACKET_SIZE, P.SUBSCRIPTION_IDENTIFIER, P.TOPIC_ALIAS}
)
_CHECKED = _FLAGS | _NONZERO | {P.RESPONSE_TOPIC}


def _read_pair(buf: bytes, pos: int, end: int) -> tuple[tuple[str, str], int]:
    name, pos = read_str(buf, pos, end)
    value, pos = read_str(buf, pos, end)
    return (name, value), pos


_READERS: tuple[Callable[[bytes, int, int], tuple[Any, int]], ...] = (
    read_u8,
    read_u16,
    read_u32,
    read_varint,
    read_str,
    read_bin,
    _read_pair,
)


def _check_value(key: PropertyId, value: Any) -> None:
    if key in _FLAGS and value > 1:
        raise ProtocolError(f"{key.name} must be 0 or 1, got {value}")
    if key in _NONZERO and value == 0:
        reason = ReasonCode.TOPIC_ALIAS_INVALID if key is P.TOPIC_ALIAS else None
        raise ProtocolError(f"{key.name} must not be 0", reason)
    if key is P.RESPONSE_TOPIC and not valid_topic_name(value):
        raise ProtocolError("invalid RESPONSE_TOPIC", ReasonCode.TOPIC_NAME_INVALID)


def read_properties(buf: bytes, pos: int, end: int, where: int) -> tuple[Properties, int]:
    """Decode a property block for packet type `where` (or WILL)."""
    if pos < end and buf[pos] < 0x80:  # lengths under 128 take one byte
        size = buf[pos]
        pos += 1
    else:
        size, pos = read_varint(buf, pos, end)
    stop = pos + size
    if stop > end:
        raise MalformedPacket("property length runs past the end of the packet")
    props: Properties = {}
    while pos < stop:
        ident = buf[pos]
        if ident < 0x80:  # every identifier defined fits in one byte
            pos += 1
        else:
            ident, pos = read_varint(buf, pos, stop)
        spec = SPECS.get(ident)
        if spec is None:
            raise MalformedPacket(f"unknown property identifier 0x{ident:02x}")
        kind, allowed, key, _ = spec
        if where not in allowed:
            raise ProtocolError(f"property {key.name} is not allowed in this packet")
        value, pos = _READERS[kind](buf, pos, stop)
        if kind == PAIR:
            props.setdefault(key, []).append(value)
            continue
        if key in _CHECKED:
            _check_value(key, value)
        if key is P.SUBSCRIPTION_IDENTIFIER and where == T.PUBLISH:
            # A delivery matching several subscriptions carries one identifier each.
            props.setdefault(key, []).append(value)
        elif key in props:
            raise ProtocolError(f"property {key.name} appears twice")
        else:
            props[key] = value
    return props, pos


def _write(kind: int, value: Any) -> bytes:
    if kind == BYTE:
        if not 0 <= value <= 255:
            raise LocalProtocolError(f"{value} does not fit in a byte")
        return bytes((value,))
    if kind == U16:
        return u16(value)
    if kind == U32:
        return u32(value)
    if kind == VARINT:
        return varint(value)
    if kind == STR:
        return str_field(value)
    return bin_field(bytes(value))


def properties_field(props: Properties, where: int) -> bytes:
    """Encode a property block, length prefix included."""
    if not props:
        return b"\x00"
    parts: list[bytes] = []
    for key, value in props.items():
        spec = SPECS.get(key)
        if spec is None or where not in spec[1]:
            raise LocalProtocolError(f"property {key!r} is not allowed in this packet")
        kind = spec[0]
        ident = spec[3]
        if kind == PAIR:
            parts.extend(ident + str_field(k) + str_field(v) for k, v in value)
        elif isinstance(value, list):
            if key is not P.SUBSCRIPTION_IDENTIFIER or where != T.PUBLISH:
                raise LocalProtocolError(f"property {key!r} takes a single value")
            parts.extend(ident + varint(v) for v in value)
        else:
            parts.append(ident + _write(kind, value))
    body = b"".join(parts)
    return varint(len(body)) + body
