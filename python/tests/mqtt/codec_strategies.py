"""Hypothesis strategies for valid MQTT packets, per protocol version and direction."""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import strategies as st

from roost.mqtt.packets import (
    MQTT_5,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
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
    RetainHandling,
    SubAck,
    Subscribe,
    Subscription,
    UnsubAck,
    Unsubscribe,
    Will,
)
from roost.mqtt.properties import BIN, BYTE, PAIR, SPECS, STR, U16, U32, VARINT, WILL

P = PropertyId
T = PacketType
VERSIONS = (3, 4, 5)

_chars = st.characters(codec="utf-8", exclude_characters="\x00")
strings = st.text(_chars, max_size=12)
blobs = st.binary(max_size=24)
packet_ids = st.integers(1, 0xFFFF)
qos_levels = st.integers(0, 2)
topic_names = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00+#"), min_size=1, max_size=20
)
_levels = st.text(st.characters(codec="utf-8", exclude_characters="\x00+#/"), max_size=6)
_plain_filters = st.builds(
    lambda levels, tail: "/".join([*levels, *tail]),
    st.lists(st.one_of(_levels, st.just("+")), min_size=1, max_size=4),
    st.sampled_from([(), ("#",)]),
).filter(bool)
_shared_filters = st.builds(
    lambda group, inner: f"$share/{group}/{inner}", _levels.filter(bool), _plain_filters
)
topic_filters = st.one_of(_plain_filters, _shared_filters)

CONNACK_CODES_V5 = [0x00, *range(0x80, 0x8B), 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C,
                    0x9D, 0x9F]  # fmt: skip
PUBACK_CODES = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]
PUBREL_CODES = [0x00, 0x92]
SUBACK_CODES_V5 = [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2]
UNSUBACK_CODES = [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91]
DISCONNECT_CODES = [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F,
                    0x90, *range(0x93, 0xA3)]  # fmt: skip
AUTH_CODES = [0x00, 0x18, 0x19]

_NONZERO = {P.RECEIVE_MAXIMUM, P.MAXIMUM_PACKET_SIZE, P.TOPIC_ALIAS, P.SUBSCRIPTION_IDENTIFIER}


def _value(key: PropertyId, where: int) -> st.SearchStrategy[Any]:
    kind = SPECS[key][0]
    low = 1 if key in _NONZERO else 0
    if key is P.RESPONSE_TOPIC:
        return topic_names
    if kind == PAIR:
        return st.lists(st.tuples(strings, strings), min_size=1, max_size=3)
    if kind == VARINT and where == T.PUBLISH:
        return st.lists(st.integers(1, 268_435_455), min_size=1, max_size=3)
    return {
        BYTE: st.integers(0, 1),
        U16: st.integers(low, 0xFFFF),
        U32: st.integers(low, 0xFFFF_FFFF),
        VARINT: st.integers(1, 268_435_455),
        STR: strings,
        BIN: blobs,
    }[kind]


def _fix_auth(props: Properties) -> Properties:
    if P.AUTHENTICATION_DATA in props and P.AUTHENTICATION_METHOD not in props:
        props[P.AUTHENTICATION_METHOD] = "SCRAM"
    return props


@cache
def properties(where: int, *, exclude: frozenset[PropertyId] = frozenset()) -> Any:
    optional = {
        key: _value(key, where)
        for key in PropertyId
        if where in SPECS[key][1] and key not in exclude
    }
    return st.fixed_dictionaries({}, optional=optional).map(_fix_auth)


def _props(version: int, where: int, **kw: Any) -> Any:
    return properties(where, **kw) if version == MQTT_5 else st.just({})


def _codes(version: int, codes: list[int]) -> Any:
    return st.sampled_from(codes) if version == MQTT_5 else st.just(0)


@cache
def connects(version: int) -> Any:
    def build(
        *,
        client_id: str,
        clean: bool,
        keepalive: int,
        username: str | None,
        password: bytes | None,
        will: Will | None,
        props: Properties,
    ) -> Connect:
        if version != MQTT_5 and username is None:
            password = None
        name = "MQIsdp" if version == 3 else "MQTT"
        return Connect(client_id, version, clean, keepalive, username, password, will, props, name)

    wills = st.builds(Will, topic_names, blobs, qos_levels, st.booleans(), _props(version, WILL))
    return st.builds(
        build,
        client_id=strings,
        clean=st.booleans(),
        keepalive=st.integers(0, 0xFFFF),
        username=st.none() | strings,
        password=st.none() | blobs,
        will=st.none() | wills,
        props=_props(version, T.CONNECT),
    )


@cache
def publishes(version: int, *, from_client: bool) -> Any:
    exclude = frozenset({P.SUBSCRIPTION_IDENTIFIER}) if from_client else frozenset()

    def build(
        *,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        dup: bool,
        pid: int,
        props: Properties,
    ) -> Publish:
        if version == MQTT_5 and P.TOPIC_ALIAS in props and dup:
            topic = ""  # an alias may stand in for the topic
        return Publish(topic, payload, qos, retain, dup and qos > 0, pid if qos else None, props)

    return st.builds(
        build,
        topic=topic_names,
        payload=blobs,
        qos=qos_levels,
        retain=st.booleans(),
        dup=st.booleans(),
        pid=packet_ids,
        props=_props(version, T.PUBLISH, exclude=exclude),
    )


def _acks(version: int, kind: Any, ptype: int, codes: list[int]) -> Any:
    return st.builds(kind, packet_ids, _codes(version, codes), _props(version, ptype))


@cache
def subscriptions(version: int) -> Any:
    def build(topic_filter: str, qos: int, no_local: bool, rap: bool, rh: int) -> Subscription:
        if version != MQTT_5:
            return Subscription(topic_filter, qos)
        no_local = no_local and not topic_filter.startswith("$share/")
        return Subscription(topic_filter, qos, no_local, rap, RetainHandling(rh))

    return st.builds(
        build, topic_filters, qos_levels, st.booleans(), st.booleans(), st.integers(0, 2)
    )


def _both_ways(version: int, *, from_client: bool) -> list[Any]:
    """Packets either side may send, PUBLISH aside."""
    # Only a client's DISCONNECT may carry a session expiry interval.
    exclude = frozenset() if from_client else frozenset({P.SESSION_EXPIRY_INTERVAL})
    disconnect_props = _props(version, T.DISCONNECT, exclude=exclude)
    options = [
        _acks(version, PubAck, T.PUBACK, PUBACK_CODES),
        _acks(version, PubRec, T.PUBREC, PUBACK_CODES),
        _acks(version, PubRel, T.PUBREL, PUBREL_CODES),
        _acks(version, PubComp, T.PUBCOMP, PUBREL_CODES),
        st.builds(Disconnect, _codes(version, DISCONNECT_CODES), disconnect_props),
    ]
    if version == MQTT_5:
        options.append(st.builds(Auth, st.sampled_from(AUTH_CODES), properties(T.AUTH)))
    return options


@cache
def client_packets(version: int) -> Any:
    """Packets a client sends, CONNECT excluded (it is only valid first)."""
    options = [
        publishes(version, from_client=True),
        *_both_ways(version, from_client=True),
        st.builds(
            Subscribe,
            packet_ids,
            st.lists(subscriptions(version), min_size=1, max_size=3).map(tuple),
            _props(version, T.SUBSCRIBE),
        ),
        st.builds(
            Unsubscribe,
            packet_ids,
            st.lists(topic_filters, min_size=1, max_size=3).map(tuple),
            _props(version, T.UNSUBSCRIBE),
        ),
        st.just(PingReq()),
    ]
    return st.one_of(options)


def _connacks(version: int) -> Any:
    def build(present: bool, code: int, props: Properties) -> ConnAck:
        return ConnAck(present and not code, code, props)

    codes = st.sampled_from(CONNACK_CODES_V5) if version == MQTT_5 else st.integers(0, 5)
    return st.builds(build, st.booleans(), codes, _props(version, T.CONNACK))


@cache
def server_packets(version: int) -> Any:
    v5 = version == MQTT_5
    suback_codes = SUBACK_CODES_V5 if v5 else [0, 1, 2, 0x80]
    options = [
        _connacks(version),
        publishes(version, from_client=False),
        *_both_ways(version, from_client=False),
        st.builds(
            SubAck,
            packet_ids,
            st.lists(st.sampled_from(suback_codes), min_size=1, max_size=4).map(tuple),
            _props(version, T.SUBACK),
        ),
        st.just(PingResp()),
    ]
    if v5:
        codes = st.lists(st.sampled_from(UNSUBACK_CODES), min_size=1, max_size=4).map(tuple)
        options.append(st.builds(UnsubAck, packet_ids, codes, properties(T.UNSUBACK)))
    else:
        options.append(st.builds(UnsubAck, packet_ids))
    return st.one_of(options)


@cache
def sessions(version: int) -> Any:
    """What a client sends on one connection: CONNECT, then a few packets."""
    return st.builds(
        lambda connect, rest: [connect, *rest],
        connects(version),
        st.lists(client_packets(version), max_size=5),
    )


@cache
def any_packet() -> Any:
    """(version, from_client, packet) for any packet either side may send."""
    return st.one_of(
        [
            st.tuples(st.just(v), st.just(client), side(v))
            for v in VERSIONS
            for client, side in ((True, _client_side), (False, server_packets))
        ]
    )


def _client_side(version: int) -> Any:
    return connects(version) | client_packets(version)
