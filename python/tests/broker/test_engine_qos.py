"""QoS 0/1/2 flows, exactly-once, redelivery, flow control and queue limits, in memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import VERSIONS, Client, World

from roost.broker.engine import Broker
from roost.broker.store import SqliteStore
from roost.mqtt.packets import (
    MQTT_5,
    Disconnect,
    PropertyId,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    SubAck,
    Subscribe,
    Subscription,
)

P = PropertyId


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def subscribe(c: Client, *filters: str, qos: int = 2) -> None:
    c.send(Subscribe(1, tuple(Subscription(f, qos) for f in filters)))
    c.expect(SubAck)


def persistent(world: World, client_id: str, version: int) -> Client:
    props = {P.SESSION_EXPIRY_INTERVAL: 3600} if version == MQTT_5 else {}
    c, _ = world.connect(client_id, version, clean=False, props=props)
    return c


@VERSIONS
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_flows(world: World, version: int, qos: int) -> None:
    sub, _ = world.connect("sub", version)
    subscribe(sub, "t/#")
    pub, _ = world.connect("pub", version)
    pub.send(Publish("t/x", b"hello", qos, packet_id=7 if qos else None))
    if qos == 1:
        assert pub.expect(PubAck).packet_id == 7
    if qos == 2:
        assert pub.expect(PubRec).packet_id == 7
        pub.send(PubRel(7))
        assert pub.expect(PubComp).packet_id == 7
    [got] = sub.publishes()
    assert (got.topic, got.payload, got.qos, got.dup) == ("t/x", b"hello", qos, False)
    if qos == 1:
        sub.send(PubAck(got.packet_id or 0))
    if qos == 2:
        sub.send(PubRec(got.packet_id or 0))
        assert sub.expect(PubRel).packet_id == got.packet_id
        sub.send(PubComp(got.packet_id or 0))
    assert not world.broker.sessions["sub"].inflight


@VERSIONS
def test_granted_qos_caps_delivery(world: World, version: int) -> None:
    sub, _ = world.connect("sub", version)
    subscribe(sub, "t", qos=1)
    pub, _ = world.connect("pub", version)
    pub.send(Publish("t", b"x", 2, packet_id=1))
    [got] = sub.publishes()
    assert got.qos == 1


@VERSIONS
def test_qos2_resend_before_pubrel_is_delivered_once(world: World, version: int) -> None:
    sub, _ = world.connect("sub", version)
    subscribe(sub, "t", qos=0)
    pub, _ = world.connect("pub", version)
    pub.send(Publish("t", b"once", 2, packet_id=3))
    pub.send(Publish("t", b"once", 2, dup=True, packet_id=3))
    assert [pub.expect(PubRec).packet_id, pub.expect(PubRec).packet_id] == [3, 3]
    pub.send(PubRel(3))
    pub.expect(PubComp)
    assert [p.payload for p in sub.publishes()] == [b"once"]
    pub.send(Publish("t", b"again", 2, packet_id=3))  # the id is free after PUBREL
    assert [p.payload for p in sub.publishes()] == [b"again"]


@VERSIONS
def test_qos2_incoming_state_survives_reconnect_and_restart(world: World, version: int) -> None:
    sub, _ = world.connect("sub", version)
    subscribe(sub, "t", qos=0)
    pub = persistent(world, "pub", version)
    pub.send(Publish("t", b"once", 2, packet_id=9))
    pub.expect(PubRec)
    pub.drop()
    world.store.commit()
    world.restart()
    sub, _ = world.connect("sub2", version)
    subscribe(sub, "t", qos=0)
    pub = persistent(world, "pub", version)
    pub.send(Publish("t", b"once", 2, dup=True, packet_id=9))
    assert pub.expect(PubRec).packet_id == 9
    assert sub.publishes() == []
    pub.send(PubRel(9))
    assert pub.expect(PubComp).reason_code == 0


def test_v5_pubrel_for_unknown_id(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    c.send(PubRel(77))
    assert c.expect(PubComp).reason_code == ReasonCode.PACKET_IDENTIFIER_NOT_FOUND


def test_v5_puback_reports_no_matching_subscribers(world: World) -> None:
    c, _ = world.connect("c", MQTT_5)
    c.send(Publish("nobody/home", b"x", 1, packet_id=1))
    assert c.expect(PubAck).reason_code == ReasonCode.NO_MATCHING_SUBSCRIBERS


@VERSIONS
def test_inflight_is_redelivered_with_dup_on_reconnect(world: World, version: int) -> None:
    sub = persistent(world, "sub", version)
    subscribe(sub, "t")
    pub, _ = world.connect("pub", version)
    pub.send(Publish("t", b"one", 1, packet_id=1), Publish("t", b"two", 2, packet_id=2))
    first = sub.publishes()
    assert [p.dup for p in first] == [False, False]
    sub.send(PubRec(first[1].packet_id or 0))  # QoS 2 half done: PUBREL must be resent
    sub.expect(PubRel)
    sub.drop()
    sub = persistent(world, "sub", version)
    again = sub.packets()
    assert isinstance(again[0], Publish)
    assert (again[0].payload, again[0].dup, again[0].packet_id) == (
        b"one", True, first[0].packet_id)
    assert isinstance(again[1], PubRel) and again[1].packet_id == first[1].packet_id


@VERSIONS
def test_offline_messages_are_queued_for_a_persistent_session(world: World,
                                                              version: int) -> None:
    sub = persistent(world, "sub", version)
    subscribe(sub, "t")
    sub.drop()
    pub, _ = world.connect("pub", version)
    for i in range(3):
        pub.send(Publish("t", b"q%d" % i, 1, packet_id=i + 1))
    pub.send(Publish("t", b"qos0 is not queued", 0))
    sub = persistent(world, "sub", version)
    assert [p.payload for p in sub.publishes()] == [b"q0", b"q1", b"q2"]


@VERSIONS
def test_queue_limit_drops_the_newest_and_counts(tmp_path: Path, version: int) -> None:
    world = World(tmp_path, max_queued_messages=2)
    sub = persistent(world, "sub", version)
    subscribe(sub, "t", qos=1)
    sub.drop()
    pub, _ = world.connect("pub", version)
    for i in range(4):
        pub.send(Publish("t", b"%d" % i, 1, packet_id=i + 1))
    assert world.broker.stats.dropped == 2
    sub = persistent(world, "sub", version)
    assert [p.payload for p in sub.publishes()] == [b"0", b"1"]


def test_client_receive_maximum_limits_inflight(world: World) -> None:
    sub, _ = world.connect("sub", MQTT_5, props={P.RECEIVE_MAXIMUM: 2})
    subscribe(sub, "t", qos=1)
    pub, _ = world.connect("pub", MQTT_5)
    for i in range(5):
        pub.send(Publish("t", b"%d" % i, 1, packet_id=i + 1))
    got = sub.publishes()
    assert [p.payload for p in got] == [b"0", b"1"]
    sub.send(PubAck(got[0].packet_id or 0))
    assert [p.payload for p in sub.publishes()] == [b"2"]
    sub.send(PubAck(got[1].packet_id or 0))
    assert [p.payload for p in sub.publishes()] == [b"3"]


@VERSIONS
def test_max_inflight_limits_v311_too(tmp_path: Path, version: int) -> None:
    world = World(tmp_path, max_inflight=1)
    sub, _ = world.connect("sub", version)
    subscribe(sub, "t", qos=2)
    pub, _ = world.connect("pub", version)
    pub.send(Publish("t", b"a", 2, packet_id=1), Publish("t", b"b", 2, packet_id=2))
    [first] = sub.publishes()
    pid = first.packet_id or 0
    sub.send(PubRec(pid))
    sub.expect(PubRel)
    assert sub.packets() == []  # still in flight until PUBCOMP
    sub.send(PubComp(pid))
    assert [p.payload for p in sub.publishes()] == [b"b"]


def test_client_exceeding_our_receive_maximum_is_disconnected(tmp_path: Path) -> None:
    world = World(tmp_path, receive_maximum=2)
    pub, _ = world.connect("pub", MQTT_5)
    for i in range(3):
        pub.send(Publish("t", b"x", 2, packet_id=i + 1))
    packets = pub.packets()
    assert [type(p) for p in packets] == [PubRec, PubRec, Disconnect]
    last = packets[-1]
    assert isinstance(last, Disconnect)
    assert last.reason_code == ReasonCode.RECEIVE_MAXIMUM_EXCEEDED
    assert pub.closed


@VERSIONS
def test_packet_ids_are_unique_among_inflight(world: World, version: int) -> None:
    sub, _ = world.connect("sub", version)
    subscribe(sub, "t", qos=1)
    pub, _ = world.connect("pub", version)
    for i in range(10):
        pub.send(Publish("t", b"x", 1, packet_id=i + 1))
    ids = [p.packet_id for p in sub.publishes()]
    assert len(set(ids)) == len(ids) == 10


@VERSIONS
@pytest.mark.parametrize(("qos", "retain", "dup"), [(0, False, False), (1, True, False),
                                                    (2, False, True)])
@pytest.mark.parametrize("payload", [b"", b"x" * 64, b"y" * 300])
def test_fast_publish_bytes_equal_the_codec(version: int, qos: int, retain: bool, dup: bool,
                                            payload: bytes) -> None:
    from roost.broker.delivery import _plain
    from roost.broker.message import Message, Outgoing
    from roost.mqtt.codec import encode

    pid = 513 if qos else 0
    out = Outgoing(1, Message("a/ü/c", payload, 2, False), qos, retain, (), pid)
    fast = _plain(out, "a/ü/c", dup, version == MQTT_5)
    packet = Publish("a/ü/c", payload, qos, retain, dup, pid or None)
    assert fast == encode(packet, version)


@VERSIONS
def test_inflight_and_queued_survive_restart_in_order(tmp_path: Path, version: int) -> None:
    world = World(tmp_path, max_inflight=2)
    sub = persistent(world, "sub", version)
    subscribe(sub, "t")
    pub, _ = world.connect("pub", version)
    for i in range(4):
        pub.send(Publish("t", b"%d" % i, 2, packet_id=i + 1))
        pub.send(PubRel(i + 1))
    first = sub.publishes()
    assert [p.payload for p in first] == [b"0", b"1"]
    sub.send(PubRec(first[0].packet_id or 0))  # "0" now waits for PUBCOMP
    sub.expect(PubRel)
    world.store.commit()
    world.store.db.close()  # as kill -9: nothing but the committed file is left
    world.store = SqliteStore(tmp_path / "roost.db")
    world.broker = Broker(world.settings, world.store, now=world.clock.now)
    sub = persistent(world, "sub", version)
    again = sub.packets()
    assert isinstance(again[0], PubRel) and again[0].packet_id == first[0].packet_id
    assert isinstance(again[1], Publish) and (again[1].payload, again[1].dup) == (b"1", True)
    sub.send(PubComp(first[0].packet_id or 0))
    assert [p.payload for p in sub.publishes()] == [b"2"]
