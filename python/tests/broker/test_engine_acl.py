"""The policy seam with an ACL file: write, subscribe and read checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Client, World

from roost.broker.policy import AclPolicy
from roost.mqtt.packets import (
    MQTT_5,
    MQTT_311,
    ConnAck,
    Connect,
    PubAck,
    Publish,
    ReasonCode,
    SubAck,
    Subscribe,
    Subscription,
    Will,
)
from roost.security.acl import Acl

ACL = """\
topic readwrite open/#
topic deny open/secret/#
topic read news/#
user alice
topic readwrite alice/#
topic write open/secret/#
pattern readwrite dev/%c/#
"""


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, policy=AclPolicy(True, Acl.parse(ACL)))


@pytest.mark.parametrize("version", [MQTT_311, MQTT_5], ids=["v311", "v5"])
def test_subscribe_needs_read_coverage(world: World, version: int) -> None:
    c, _ = world.connect("c", version)
    c.send(Subscribe(1, (Subscription("open/#", 1), Subscription("#", 1),
                         Subscription("dev/c/x", 1))))
    denied = ReasonCode.NOT_AUTHORIZED if version == MQTT_5 else 0x80
    assert c.expect(SubAck).reason_codes == (1, denied, 1)


def test_publish_needs_write(world: World) -> None:
    sub, _ = world.connect("s", MQTT_5)
    sub.send(Subscribe(1, (Subscription("news/#", 0), Subscription("open/#", 0))))
    sub.expect(SubAck)
    pub, _ = world.connect("p", MQTT_5)
    pub.send(Publish("news/x", b"forged", 1, packet_id=1))
    assert pub.expect(PubAck).reason_code == ReasonCode.NOT_AUTHORIZED
    pub.send(Publish("open/x", b"fine", 1, packet_id=2))
    assert pub.expect(PubAck).reason_code == 0
    assert [p.payload for p in sub.publishes()] == [b"fine"]


def test_deliveries_are_checked_per_client(world: World) -> None:
    alice = world.client(MQTT_5)
    alice.send(Connect("a1", MQTT_5, username="alice"))
    alice.expect(ConnAck)
    alice.send(Subscribe(1, (Subscription("alice/#", 0),)))
    assert alice.expect(SubAck).reason_codes == (0,)
    alice.send(Publish("alice/diary", b"secret"))
    assert [p.payload for p in alice.publishes()] == [b"secret"]
    # Subscribed to open/# (allowed), but open/secret/... may not be read.
    anon, _ = world.connect("anon", MQTT_5)
    anon.send(Subscribe(1, (Subscription("open/#", 0),)))
    anon.expect(SubAck)
    alice.send(Publish("open/secret/x", b"hidden", retain=True))
    anon.send(Publish("open/y", b"shown"))
    assert [p.payload for p in anon.publishes()] == [b"shown"]
    anon.send(Subscribe(2, (Subscription("open/#", 0),)))
    anon.expect(SubAck)
    assert anon.publishes() == []  # the retained secret is not sent either
    # Patterns give every client its own subtree; nobody else reads it.
    dev, _ = world.connect("d1", MQTT_5)
    dev.send(Subscribe(1, (Subscription("dev/d1/#", 0),)))
    dev.expect(SubAck)
    other, _ = world.connect("d2", MQTT_5)
    other.send(Publish("dev/d1/cmd", b"not yours"))
    assert dev.publishes() == []
    other.send(Publish("dev/d2/up", b"mine"))
    dev.send(Publish("dev/d1/cmd", b"self"))
    assert [p.payload for p in dev.publishes()] == [b"self"]


def test_offline_session_keeps_its_username_across_restart(world: World) -> None:
    def alice(client_id: str) -> Client:
        c = world.client(MQTT_311)
        c.send(Connect(client_id, MQTT_311, clean_start=False, username="alice"))
        c.expect(ConnAck)
        return c

    parked = alice("a-parked")
    parked.send(Subscribe(1, (Subscription("alice/#", 1),)))
    parked.expect(SubAck)
    parked.drop()
    world.restart()
    writer = alice("a-writer")
    writer.send(Publish("alice/note", b"for later", 1, packet_id=1))
    writer.expect(PubAck)
    parked = alice("a-parked")
    assert [p.payload for p in parked.publishes()] == [b"for later"]


@pytest.mark.parametrize("version", [MQTT_311, MQTT_5], ids=["v311", "v5"])
def test_will_topic_needs_write_access(world: World, version: int) -> None:
    c, ack = world.connect("c", version, will=Will("news/fake", b"x"))
    assert ack.reason_code == (ReasonCode.NOT_AUTHORIZED if version == MQTT_5 else 5)
    assert c.closed
    _, ack = world.connect("c", version, will=Will("open/c/gone", b"x"))
    assert ack.reason_code == 0
