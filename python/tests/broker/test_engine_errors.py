"""Bad input closes only the offending connection; stored state and other clients stay."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import World

from roost.mqtt.packets import (
    MQTT_5,
    MQTT_311,
    Disconnect,
    PropertyId,
    Publish,
    ReasonCode,
    SubAck,
    Subscribe,
    Subscription,
)

P = PropertyId
BAD_INPUT = {
    "reserved-type-0": b"\x00\x00",
    "bad-remaining-length": b"\x30\xff\xff\xff\xff\x01",
    "publish-qos-3": b"\x36\x05\x00\x01ax\x00",
    "wildcard-topic": b"\x30\x04\x00\x02a#",
    "invalid-utf8-topic": b"\x30\x05\x00\x02\xc3\x28x",
    "pubrel-bad-flags": b"\x60\x02\x00\x01",
}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.mark.parametrize("version", [MQTT_311, MQTT_5], ids=["v311", "v5"])
@pytest.mark.parametrize("name", BAD_INPUT)
def test_bad_input_closes_only_that_connection(world: World, version: int,
                                               name: str) -> None:
    props = {P.SESSION_EXPIRY_INTERVAL: 60} if version == MQTT_5 else {}
    good, _ = world.connect("good", MQTT_5)
    good.send(Subscribe(1, (Subscription("t", 1),)))
    good.expect(SubAck)
    bad, _ = world.connect("bad", version, clean=False, props=props)
    bad.send(Subscribe(1, (Subscription("kept/#", 1),)))
    bad.expect(SubAck)
    bad.send_bytes(BAD_INPUT[name])
    assert bad.closed
    if version == MQTT_5:
        assert bad.expect(Disconnect).reason_code >= 0x80
    else:
        assert bad.packets() == []
    bad.drop()
    # Others are unaffected, and the offender's stored session is intact.
    pub, _ = world.connect("pub", version)
    pub.send(Publish("t", b"still here", 1, packet_id=1))
    assert [p.payload for p in good.publishes()] == [b"still here"]
    assert "kept/#" in world.broker.router.subscriptions("bad")


def test_byte_at_a_time_is_the_same_as_whole(world: World) -> None:
    from roost.mqtt.codec import encode

    sub, _ = world.connect("sub", MQTT_5)
    sub.send(Subscribe(1, (Subscription("t", 0),)))
    sub.expect(SubAck)
    pub, _ = world.connect("pub", MQTT_5)
    data = encode(Publish("t", b"abc", properties={P.USER_PROPERTY: [("a", "b")]}), MQTT_5)
    for i in range(len(data)):
        pub.send_bytes(data[i:i + 1])
    [got] = sub.publishes()
    assert got.payload == b"abc"


def test_sys_topics_are_published_retained(tmp_path: Path) -> None:
    world = World(tmp_path, sys_interval=10)
    c, _ = world.connect("c", MQTT_5)
    c.send(Subscribe(1, (Subscription("$SYS/broker/#", 0),)))
    c.expect(SubAck)
    c.send(Publish("x", b"12345"))
    world.advance(11)
    got = {p.topic: p.payload for p in c.publishes()}
    assert got["$SYS/broker/clients/connected"] == b"1"
    assert got["$SYS/broker/messages/received"] == b"1"
    assert got["$SYS/broker/uptime"] == b"11 seconds"
    assert got["$SYS/broker/version"].startswith(b"roost ")
    assert int(got["$SYS/broker/bytes/received"]) > 0
    assert world.broker.retained.get("$SYS/broker/uptime") is not None


def test_internal_error_closes_only_that_client(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    other, _ = world.connect("o", MQTT_5)

    def boom(*args: object) -> bool:
        raise RuntimeError("bug")

    world.broker.policy.authorize_publish = boom  # type: ignore[method-assign,assignment]
    c.send(Publish("t", b"x"))
    assert c.expect(Disconnect).reason_code == ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR
    assert not other.closed
