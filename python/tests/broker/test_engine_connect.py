"""CONNECT/CONNACK, client ids, takeover, timeouts and keepalive, in memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import VERSIONS, World

from roost.broker.settings import Settings
from roost.mqtt.packets import (
    MQTT_5,
    MQTT_311,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    PropertyId,
    ReasonCode,
    Subscribe,
    Subscription,
)

P = PropertyId


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@VERSIONS
def test_connect_is_accepted(world: World, version: int) -> None:
    _, ack = world.connect("c1", version)
    assert (ack.reason_code, ack.session_present) == (0, False)


def test_v5_empty_client_id_gets_an_assigned_one(world: World) -> None:
    c, ack = world.connect("", MQTT_5)
    assigned = ack.properties[P.ASSIGNED_CLIENT_IDENTIFIER]
    assert assigned and c.conn.client_id == assigned
    _, other = world.connect("", MQTT_5)
    assert other.properties[P.ASSIGNED_CLIENT_IDENTIFIER] != assigned


def test_v311_empty_client_id_with_clean_session_is_accepted(world: World) -> None:
    _, ack = world.connect("", MQTT_311, clean=True)
    assert ack.reason_code == 0
    assert P.ASSIGNED_CLIENT_IDENTIFIER not in ack.properties


def test_v311_empty_client_id_with_persistent_session_is_rejected(world: World) -> None:
    c, ack = world.connect("", MQTT_311, clean=False)
    assert ack.reason_code == 2  # identifier rejected
    assert c.closed


@VERSIONS
def test_anonymous_refused_when_not_allowed(tmp_path: Path, version: int) -> None:
    world = World(tmp_path, allow_anonymous=False)
    c, ack = world.connect("c1", version)
    assert ack.reason_code == (ReasonCode.NOT_AUTHORIZED if version == MQTT_5 else 5)
    assert c.closed


@VERSIONS
def test_takeover_closes_the_old_connection(world: World, version: int) -> None:
    old, _ = world.connect("dup", version)
    new, ack = world.connect("dup", version)
    assert ack.reason_code == 0 and not new.closed
    assert old.closed
    if version == MQTT_5:
        assert old.expect(Disconnect).reason_code == ReasonCode.SESSION_TAKEN_OVER
    else:
        assert old.packets() == []
    old.drop()  # the old socket closing later must not disturb the new session
    new.send(PingReq())
    assert isinstance(new.expect(PingResp), PingResp)
    assert world.broker.sessions["dup"].conn is new.conn


@VERSIONS
def test_persistent_session_is_present_on_reconnect(world: World, version: int) -> None:
    props = {P.SESSION_EXPIRY_INTERVAL: 60} if version == MQTT_5 else {}
    c, ack = world.connect("p", version, clean=False, props=props)
    assert not ack.session_present
    c.drop()
    _, ack = world.connect("p", version, clean=False, props=props)
    assert ack.session_present
    _, ack = world.connect("p", version, clean=True, props=props)
    assert not ack.session_present


def test_connect_timeout_drops_a_silent_socket(tmp_path: Path) -> None:
    world = World(tmp_path, connect_timeout=5)
    silent = world.client()
    talker = world.client()
    world.advance(3)
    talker.send(Connect("t", MQTT_5))
    world.advance(3)
    assert silent.closed
    assert not talker.closed


@VERSIONS
def test_keepalive_allows_one_and_a_half_intervals(world: World, version: int) -> None:
    c, _ = world.connect("k", version, keepalive=10)
    world.advance(14)
    assert not c.closed
    c.send(PingReq())
    world.advance(14)
    assert not c.closed
    world.advance(2)
    assert c.closed
    if version == MQTT_5:
        c.expect(PingResp)
        assert c.expect(Disconnect).reason_code == ReasonCode.KEEP_ALIVE_TIMEOUT


def test_v5_server_keep_alive_caps_the_client(tmp_path: Path) -> None:
    world = World(tmp_path, max_keepalive=30)
    c, ack = world.connect("k", MQTT_5, keepalive=600)
    assert ack.properties[P.SERVER_KEEP_ALIVE] == 30
    world.advance(46)
    assert c.closed


def test_v5_connack_advertises_limits(tmp_path: Path) -> None:
    world = World(tmp_path, max_packet_size=4096, receive_maximum=10, topic_alias_maximum=5)
    _, ack = world.connect("c", MQTT_5)
    assert ack.properties[P.MAXIMUM_PACKET_SIZE] == 4096
    assert ack.properties[P.RECEIVE_MAXIMUM] == 10
    assert ack.properties[P.TOPIC_ALIAS_MAXIMUM] == 5


def test_v5_session_expiry_is_capped_and_reported(tmp_path: Path) -> None:
    world = World(tmp_path, max_session_expiry=100)
    _, ack = world.connect("c", MQTT_5, props={P.SESSION_EXPIRY_INTERVAL: 5000})
    assert ack.properties[P.SESSION_EXPIRY_INTERVAL] == 100


def test_max_connections(tmp_path: Path) -> None:
    world = World(tmp_path, max_connections=2)
    a, b, c = world.client(), world.client(), world.client()
    assert (a.closed, b.closed, c.closed) == (False, False, True)


def test_second_connect_is_a_protocol_error(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    c.send(Connect("c", MQTT_5))
    assert c.expect(Disconnect).reason_code == ReasonCode.PROTOCOL_ERROR
    assert c.closed


def test_enhanced_auth_is_refused(world: World) -> None:
    c, ack = world.connect("c", MQTT_5, props={P.AUTHENTICATION_METHOD: "SCRAM-SHA-1"})
    assert ack.reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD
    assert c.closed


def test_unsupported_protocol_level_gets_connack_1(world: World) -> None:
    c = world.client(MQTT_311)
    c.send_bytes(b"\x10\x0c\x00\x04MQTT\x07\x02\x00\x3c\x00\x00")
    assert c.conn.take_output() == b"\x20\x02\x00\x01"
    assert c.closed


def test_malformed_v5_connect_gets_connack_with_reason(world: World) -> None:
    c = world.client(MQTT_5)
    # A v5 CONNECT whose properties length runs past the packet.
    c.send_bytes(b"\x10\x0e\x00\x04MQTT\x05\x02\x00\x3c\x09\x11\x00\x00\x00")
    ack = c.expect(ConnAck)
    assert ack.reason_code >= 0x80
    assert c.closed


def test_settings_default_is_not_anonymous() -> None:
    assert Settings().allow_anonymous is False


def test_subscribe_before_connect_closes(world: World) -> None:
    c = world.client()
    c.send_bytes(b"\x82\x06\x00\x01\x00\x01a\x00")
    assert c.closed
    assert not world.broker.sessions


@VERSIONS
def test_v5_subscribe_after_connect_works(world: World, version: int) -> None:
    c, _ = world.connect("s", version)
    c.send(Subscribe(1, (Subscription("a", 1),)))
    assert world.broker.router.subscriptions("s")


def test_auth_packet_is_a_protocol_error(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    c.send(Auth(ReasonCode.REAUTHENTICATE))
    assert c.expect(Disconnect).reason_code == ReasonCode.PROTOCOL_ERROR
    assert c.closed
