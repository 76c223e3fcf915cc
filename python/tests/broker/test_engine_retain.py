"""Retained messages, retain handling, retain as published, `$` topics, unsubscribe."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import VERSIONS, Client, World

from roost.mqtt.packets import (
    MQTT_5,
    PropertyId,
    PubAck,
    Publish,
    ReasonCode,
    RetainHandling,
    SubAck,
    Subscribe,
    Subscription,
    UnsubAck,
    Unsubscribe,
)

P = PropertyId


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def sub(c: Client, *subs: Subscription, props: dict[PropertyId, int] | None = None) -> SubAck:
    c.send(Subscribe(1, subs, props or {}))
    return c.expect(SubAck)


def retain(world: World, topic: str, payload: bytes, qos: int = 0) -> None:
    pub, _ = world.connect("retainer", MQTT_5)
    pub.send(Publish(topic, payload, qos, retain=True, packet_id=1 if qos else None))
    pub.packets()


@VERSIONS
def test_retained_set_replace_clear(world: World, version: int) -> None:
    retain(world, "r/a", b"one", 1)
    retain(world, "r/a", b"two")
    retain(world, "r/b", b"bee")
    retain(world, "r/b", b"")
    c, _ = world.connect("c", version)
    sub(c, Subscription("r/#", 1))
    [got] = c.publishes()
    assert (got.topic, got.payload, got.retain, got.qos) == ("r/a", b"two", True, 0)


@VERSIONS
def test_retained_survives_restart(world: World, version: int) -> None:
    retain(world, "r/a", b"kept", 1)
    world.restart()
    c, _ = world.connect("c", version)
    sub(c, Subscription("r/a", 1))
    assert [(p.payload, p.qos) for p in c.publishes()] == [(b"kept", 1)]


def test_retain_handling(world: World) -> None:
    retain(world, "r/x", b"v")
    c, _ = world.connect("c", MQTT_5)
    sub(c, Subscription("r/x", 0, retain_handling=RetainHandling.SEND_IF_NEW))
    assert len(c.publishes()) == 1
    sub(c, Subscription("r/x", 0, retain_handling=RetainHandling.SEND_IF_NEW))
    assert c.publishes() == []
    sub(c, Subscription("r/x", 0, retain_handling=RetainHandling.SEND_ON_SUBSCRIBE))
    assert len(c.publishes()) == 1
    sub(c, Subscription("r/+", 0, retain_handling=RetainHandling.DO_NOT_SEND))
    assert c.publishes() == []


@VERSIONS
def test_live_retain_flag_follows_retain_as_published(world: World, version: int) -> None:
    c, _ = world.connect("c", version)
    sub(c, Subscription("a", 0), Subscription("b", 0, retain_as_published=version == MQTT_5))
    pub, _ = world.connect("p", version)
    pub.send(Publish("a", b"1", retain=True), Publish("b", b"2", retain=True))
    assert [(p.topic, p.retain) for p in c.publishes()] == [
        ("a", False), ("b", version == MQTT_5)]


@VERSIONS
def test_dollar_topics_are_not_matched_by_leading_wildcards(world: World,
                                                             version: int) -> None:
    c, _ = world.connect("c", version)
    sub(c, Subscription("#", 0), Subscription("+/x", 0))
    d, _ = world.connect("d", version)
    sub(d, Subscription("$app/#", 0))
    pub, _ = world.connect("p", version)
    pub.send(Publish("$app/x", b"1"), Publish("app/x", b"2"))
    assert [p.payload for p in c.publishes()] == [b"2"]
    assert [p.payload for p in d.publishes()] == [b"1"]


@VERSIONS
def test_filter_over_the_level_limit_is_refused_in_suback(tmp_path: Path,
                                                          version: int) -> None:
    world = World(tmp_path, max_topic_levels=3)
    c, _ = world.connect("c", version)
    ack = sub(c, Subscription("a/b/c/d", 1), Subscription("a/b/c", 1))
    bad = ReasonCode.TOPIC_FILTER_INVALID if version == MQTT_5 else 0x80
    assert ack.reason_codes == (bad, 1)


@VERSIONS
def test_unsubscribe(world: World, version: int) -> None:
    c, _ = world.connect("c", version)
    sub(c, Subscription("a", 0))
    c.send(Unsubscribe(2, ("a", "never")))
    ack = c.expect(UnsubAck)
    if version == MQTT_5:
        assert ack.reason_codes == (ReasonCode.SUCCESS, ReasonCode.NO_SUBSCRIPTION_EXISTED)
    pub, _ = world.connect("p", version)
    pub.send(Publish("a", b"x"))
    assert c.publishes() == []


def test_expired_retained_message_is_not_sent(world: World) -> None:
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("r", b"x", retain=True, properties={P.MESSAGE_EXPIRY_INTERVAL: 10}))
    world.advance(4)
    c, _ = world.connect("c", MQTT_5)
    sub(c, Subscription("r", 0))
    [got] = c.publishes()
    assert got.properties[P.MESSAGE_EXPIRY_INTERVAL] == 6
    world.advance(7)
    sub(c, Subscription("r", 0))
    assert c.publishes() == []
    assert len(world.broker.retained) == 0


def test_clients_cannot_publish_into_sys(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    sub(c, Subscription("$SYS/#", 0))
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("$SYS/broker/uptime", b"forged", 1, packet_id=1))
    assert pub.expect(PubAck).reason_code == ReasonCode.NOT_AUTHORIZED
    assert c.publishes() == []
