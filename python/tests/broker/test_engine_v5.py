"""MQTT 5 features: subscription ids, overlap, no local, aliases, sizes, expiry,
properties, shared subscriptions, session expiry, server DISCONNECT."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Client, World

from roost.mqtt.packets import (
    MQTT_5,
    MQTT_311,
    Disconnect,
    PropertyId,
    PubAck,
    Publish,
    ReasonCode,
    SubAck,
    Subscribe,
    Subscription,
)

P = PropertyId


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def sub(c: Client, *subs: Subscription, sub_id: int | None = None) -> None:
    props = {P.SUBSCRIPTION_IDENTIFIER: sub_id} if sub_id else {}
    c.send(Subscribe(1, subs, props))
    c.expect(SubAck)


def test_overlapping_subscriptions_give_one_copy_with_max_qos_and_all_ids(
        world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    sub(c, Subscription("a/+", 0), sub_id=1)
    sub(c, Subscription("a/#", 2), sub_id=2)
    sub(c, Subscription("a/b", 1))
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("a/b", b"x", 2, packet_id=1))
    [got] = c.publishes()
    assert got.qos == 2
    assert got.properties[P.SUBSCRIPTION_IDENTIFIER] == [1, 2]


def test_overlap_in_v311_gives_one_copy_at_max_qos(world: World) -> None:
    c, _ = world.connect("c", MQTT_311)
    sub(c, Subscription("a/+", 0), Subscription("a/#", 1))
    pub, _ = world.connect("p", MQTT_311)
    pub.send(Publish("a/b", b"x", 1, packet_id=1))
    assert [p.qos for p in c.publishes()] == [1]


def test_no_local(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    sub(c, Subscription("t", 0, no_local=True))
    c.send(Publish("t", b"mine"))
    assert c.publishes() == []
    other, _ = world.connect("o", MQTT_5)
    other.send(Publish("t", b"theirs"))
    assert [p.payload for p in c.publishes()] == [b"theirs"]


def test_no_local_on_shared_subscription_is_a_protocol_error(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    c.send(Subscribe(1, (Subscription("$share/g/t", 0, no_local=True),)))
    assert c.expect(Disconnect).reason_code == ReasonCode.PROTOCOL_ERROR


def test_incoming_topic_alias(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    sub(c, Subscription("long/topic/name", 0))
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("long/topic/name", b"1", properties={P.TOPIC_ALIAS: 3}),
             Publish("", b"2", properties={P.TOPIC_ALIAS: 3}))
    got = c.publishes()
    assert [(p.topic, p.payload) for p in got] == [("long/topic/name", b"1"),
                                                   ("long/topic/name", b"2")]
    assert all(P.TOPIC_ALIAS not in p.properties for p in got)


@pytest.mark.parametrize("alias", [0, 65])
def test_topic_alias_out_of_range(world: World, alias: int) -> None:
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("t", b"1", properties={P.TOPIC_ALIAS: alias}))
    assert pub.expect(Disconnect).reason_code == ReasonCode.TOPIC_ALIAS_INVALID


def test_unknown_topic_alias_is_a_protocol_error(world: World) -> None:
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("", b"1", properties={P.TOPIC_ALIAS: 1}))
    assert pub.expect(Disconnect).reason_code == ReasonCode.PROTOCOL_ERROR


def test_outgoing_topic_alias(world: World) -> None:
    c, _ = world.connect("c", MQTT_5, props={P.TOPIC_ALIAS_MAXIMUM: 1})
    sub(c, Subscription("#", 0))
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("a/b", b"1"), Publish("a/b", b"2"), Publish("c/d", b"3"))
    got = c.publishes()
    assert [(p.topic, p.properties.get(P.TOPIC_ALIAS)) for p in got] == [
        ("a/b", 1), ("", 1), ("c/d", None)]


def test_never_send_more_than_the_client_maximum_packet_size(world: World) -> None:
    c, _ = world.connect("c", MQTT_5, props={P.MAXIMUM_PACKET_SIZE: 64})
    sub(c, Subscription("t", 1))
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("t", b"x" * 100, 1, packet_id=1), Publish("t", b"small", 1, packet_id=2))
    assert [p.payload for p in c.publishes()] == [b"small"]
    assert len(world.broker.sessions["c"].inflight) == 1  # only "small", unacked
    assert world.broker.stats.dropped == 1


def test_packet_over_our_maximum_closes_with_0x95(tmp_path: Path) -> None:
    world = World(tmp_path, max_packet_size=128)
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("t", b"x" * 200))
    assert pub.expect(Disconnect).reason_code == ReasonCode.PACKET_TOO_LARGE
    assert pub.closed


def test_message_expiry_counts_down_and_drops_queued(world: World) -> None:
    props = {P.SESSION_EXPIRY_INTERVAL: 3600}
    c, _ = world.connect("c", MQTT_5, clean=False, props=props)
    sub(c, Subscription("t", 1))
    c.drop()
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("t", b"short", 1, packet_id=1, properties={P.MESSAGE_EXPIRY_INTERVAL: 5}),
             Publish("t", b"long", 1, packet_id=2, properties={P.MESSAGE_EXPIRY_INTERVAL: 50}))
    world.advance(10)
    c, _ = world.connect("c", MQTT_5, clean=False, props=props)
    [got] = c.publishes()
    assert got.payload == b"long"
    assert got.properties[P.MESSAGE_EXPIRY_INTERVAL] == 40


def test_properties_are_forwarded_untouched(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    sub(c, Subscription("req", 0))
    props = {
        P.PAYLOAD_FORMAT_INDICATOR: 1,
        P.CONTENT_TYPE: "application/json",
        P.RESPONSE_TOPIC: "reply/to/me",
        P.CORRELATION_DATA: b"\x01\x02",
        P.USER_PROPERTY: [("k", "v"), ("k", "w")],
    }
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("req", b"{}", properties=props))
    [got] = c.publishes()
    assert got.properties == props


def test_shared_subscription_gives_each_message_to_one_member(world: World) -> None:
    a, _ = world.connect("a", MQTT_5)
    b, _ = world.connect("b", MQTT_311)
    sub(a, Subscription("$share/g/job/#", 1))
    sub(b, Subscription("$share/g/job/#", 1))
    pub, _ = world.connect("p", MQTT_5)
    for i in range(10):
        pub.send(Publish("job/x", b"%d" % i, 1, packet_id=i + 1))
    got_a = [p.payload for p in a.publishes()]
    got_b = [p.payload for p in b.publishes()]
    assert sorted(got_a + got_b) == sorted(b"%d" % i for i in range(10))
    assert got_a and got_b


def test_shared_subscription_gets_no_retained(world: World) -> None:
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("job/x", b"r", retain=True))
    a, _ = world.connect("a", MQTT_5)
    sub(a, Subscription("$share/g/job/#", 1))
    assert a.publishes() == []


def test_session_expiry(world: World) -> None:
    props = {P.SESSION_EXPIRY_INTERVAL: 10}
    c, _ = world.connect("c", MQTT_5, clean=False, props=props)
    sub(c, Subscription("t", 1))
    c.drop()
    world.advance(5)
    c, ack = world.connect("c", MQTT_5, clean=False, props=props)
    assert ack.session_present
    c.drop()
    world.advance(11)
    assert "c" not in world.broker.sessions
    assert not world.broker.router.subscriptions("c")
    _, ack = world.connect("c", MQTT_5, clean=False, props=props)
    assert not ack.session_present


def test_disconnect_can_shorten_session_expiry(world: World) -> None:
    c, _ = world.connect("c", MQTT_5, clean=False, props={P.SESSION_EXPIRY_INTERVAL: 60})
    c.send(Disconnect(0, {P.SESSION_EXPIRY_INTERVAL: 0}))
    c.drop()
    assert "c" not in world.broker.sessions


def test_disconnect_may_not_raise_zero_expiry(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    c.send(Disconnect(0, {P.SESSION_EXPIRY_INTERVAL: 60}))
    assert c.expect(Disconnect).reason_code == ReasonCode.PROTOCOL_ERROR


def test_shutdown_tells_v5_clients(world: World) -> None:
    c5, _ = world.connect("c5", MQTT_5)
    c3, _ = world.connect("c3", MQTT_311)
    world.broker.shutdown(world.clock.now)
    assert c5.expect(Disconnect).reason_code == ReasonCode.SERVER_SHUTTING_DOWN
    assert c3.packets() == []
    assert c5.closed and c3.closed


def test_reason_string_on_protocol_error(world: World) -> None:
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("", b"1", properties={P.TOPIC_ALIAS: 1}))
    assert "alias" in pub.expect(Disconnect).properties[P.REASON_STRING]


def test_v5_qos1_ack_is_plain_success_with_subscribers(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    sub(c, Subscription("t", 0))
    c.send(Publish("t", b"x", 1, packet_id=5))
    packets = c.packets()
    acks = [p for p in packets if isinstance(p, PubAck)]
    assert [(a.packet_id, a.reason_code) for a in acks] == [(5, 0)]
