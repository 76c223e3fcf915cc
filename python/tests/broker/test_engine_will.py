"""Will messages: when they go, will delay, and session expiry interaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import VERSIONS, Client, World

from roost.mqtt.packets import (
    MQTT_5,
    Disconnect,
    PropertyId,
    ReasonCode,
    SubAck,
    Subscribe,
    Subscription,
    Will,
)

P = PropertyId


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def watcher(world: World) -> Client:
    w, _ = world.connect("watcher", MQTT_5)
    w.send(Subscribe(1, (Subscription("will/#", 1),)))
    w.expect(SubAck)
    return w


def will(delay: int = 0) -> Will:
    props = {P.WILL_DELAY_INTERVAL: delay, P.CONTENT_TYPE: "text/plain"} if delay else {}
    return Will("will/c", b"gone", 1, False, props)


@VERSIONS
def test_will_on_network_loss(world: World, version: int) -> None:
    w = watcher(world)
    c, _ = world.connect("c", version, will=will())
    c.drop()
    [got] = w.publishes()
    assert (got.topic, got.payload, got.qos) == ("will/c", b"gone", 1)


@VERSIONS
def test_no_will_after_normal_disconnect(world: World, version: int) -> None:
    w = watcher(world)
    c, _ = world.connect("c", version, will=will())
    c.send(Disconnect())
    c.drop()
    assert w.publishes() == []


def test_v5_disconnect_with_will_sends_it(world: World) -> None:
    w = watcher(world)
    c, _ = world.connect("c", MQTT_5, will=will())
    c.send(Disconnect(ReasonCode.DISCONNECT_WITH_WILL))
    c.drop()
    assert len(w.publishes()) == 1


@VERSIONS
def test_will_on_protocol_error(world: World, version: int) -> None:
    w = watcher(world)
    c, _ = world.connect("c", version, will=will())
    c.send_bytes(b"\xff\x00")
    assert c.closed
    c.drop()
    assert len(w.publishes()) == 1


def test_will_delay_waits_then_sends(world: World) -> None:
    w = watcher(world)
    c, _ = world.connect("c", MQTT_5, will=will(10), props={P.SESSION_EXPIRY_INTERVAL: 100})
    c.drop()
    world.advance(5)
    assert w.publishes() == []
    world.advance(6)
    [got] = w.publishes()
    assert P.WILL_DELAY_INTERVAL not in got.properties
    assert got.properties[P.CONTENT_TYPE] == "text/plain"


def test_will_delay_is_cancelled_by_reconnect(world: World) -> None:
    w = watcher(world)
    props = {P.SESSION_EXPIRY_INTERVAL: 100}
    c, _ = world.connect("c", MQTT_5, will=will(10), props=props)
    c.drop()
    world.advance(5)
    world.connect("c", MQTT_5, clean=False, props=props)
    world.advance(20)
    assert w.publishes() == []


def test_session_expiry_ends_will_delay_early(world: World) -> None:
    w = watcher(world)
    c, _ = world.connect("c", MQTT_5, will=will(60), props={P.SESSION_EXPIRY_INTERVAL: 5})
    c.drop()
    world.advance(6)
    assert len(w.publishes()) == 1
    assert "c" not in world.broker.sessions


def test_will_delay_with_zero_expiry_goes_at_once(world: World) -> None:
    w = watcher(world)
    c, _ = world.connect("c", MQTT_5, will=will(60))
    c.drop()
    assert len(w.publishes()) == 1


@VERSIONS
def test_takeover_publishes_the_old_will(world: World, version: int) -> None:
    w = watcher(world)
    world.connect("c", version, will=will())
    world.connect("c", version)
    assert len(w.publishes()) == 1


def test_retained_will(world: World) -> None:
    c, _ = world.connect("c", MQTT_5, will=Will("will/r", b"dead", 0, True))
    c.drop()
    assert world.broker.retained.get("will/r") is not None


def test_delayed_will_survives_a_restart(world: World) -> None:
    c, _ = world.connect("c", MQTT_5, will=will(10), props={P.SESSION_EXPIRY_INTERVAL: 100})
    c.drop()
    world.restart()
    w = watcher(world)
    world.advance(5)
    assert w.publishes() == []
    world.advance(6)
    assert [p.payload for p in w.publishes()] == [b"gone"]
    world.restart()  # sent once: the store forgot it
    w = watcher(world)
    world.advance(20)
    assert w.publishes() == []
