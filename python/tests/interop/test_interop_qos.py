"""QoS 0/1/2 delivery, overlapping subscriptions and `$` topics, with paho and Mosquitto's CLI."""

from __future__ import annotations

import pytest

from . import raw
from .brokers import Broker
from .clients import WAIT, MosquittoSub, Peer, mosquitto_pub, publish_once


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_delivery_in_order_at_publish_qos(broker: Broker, version: int, qos: int) -> None:
    sub = Peer(broker, "sub", version).connect()
    assert sub.subscribe("q/#", qos=2) == [2]
    pub = Peer(broker, "pub", version).connect()
    for i in range(20):
        pub.publish(f"q/{i % 3}", f"m{i}", qos=qos)
    got = sub.get_many(20)
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(20)]
    assert {m.qos for m in got} == {qos}
    assert [m.topic for m in got[:3]] == ["q/0", "q/1", "q/2"]
    pub.disconnect()
    sub.disconnect()


def test_delivery_qos_is_minimum_of_publish_and_subscription(broker: Broker,
                                                              version: int) -> None:
    sub = Peer(broker, "sub", version).connect()
    assert sub.subscribe("down", qos=1) == [1]
    pub = Peer(broker, "pub", version).connect()
    pub.publish("down", b"x", qos=2)
    assert sub.get().qos == 1
    pub.disconnect()
    sub.disconnect()


def test_qos2_resent_publish_delivered_once(broker: Broker, version: int) -> None:
    sub = Peer(broker, "sub", version).connect()
    sub.subscribe("x/t", qos=2)
    pub = raw.RawClient(broker)
    pub.handshake("pub", version)
    once = raw.publish("x/t", b"once", version=version, qos=2, pid=7)
    pub.send(once)
    pub.expect(raw.PUBREC)
    pub.send(bytes([once[0] | 0x08]) + once[1:])  # the same PUBLISH again, DUP set
    pub.expect(raw.PUBREC)
    pub.send(raw.pubrel(7))
    pub.expect(raw.PUBCOMP)
    publish_once(broker, "x/t", b"marker", version, qos=2)  # same QoS: order is kept
    assert [m.payload for m in sub.until(b"marker")] == [b"once"]
    pub.close()
    sub.disconnect()


@pytest.mark.parametrize("qos", [1, 2])
def test_cli_tools_round_trip(broker: Broker, version: int, qos: int) -> None:
    sub = MosquittoSub(broker, version, "-q", str(qos), "-t", "cli/+", "-v", "-C", "3")
    for i in range(3):
        mosquitto_pub(broker, version, "-q", str(qos), "-t", f"cli/{i}", "-m", f"hello {i}")
    assert sub.payloads(3) == [f"cli/{i} hello {i}" for i in range(3)]
    assert sub.proc.wait(WAIT) == 0  # -C 3: exits cleanly after exactly three messages


def test_unsubscribe_stops_delivery(broker: Broker, version: int) -> None:
    sub = Peer(broker, "sub", version).connect()
    sub.subscribe("u/a", qos=1)
    sub.subscribe("u/b", qos=1)
    sub.unsubscribe("u/a")
    pub = Peer(broker, "pub", version).connect()
    pub.publish("u/a", b"gone", qos=1)
    pub.publish("u/b", b"marker", qos=1)
    assert sub.until(b"marker") == []
    pub.disconnect()
    sub.disconnect()


def test_ping(broker: Broker, version: int) -> None:
    client = raw.RawClient(broker)
    client.handshake("pinger", version=version)
    client.send(b"\xc0\x00")
    assert client.read() == (13, 0, b"")  # PINGRESP
    client.close()


def test_overlapping_subscriptions_honour_the_highest_qos(broker: Broker, version: int) -> None:
    sub = Peer(broker, "sub", version).connect()
    sub.subscribe("o/#", qos=0)
    sub.subscribe("o/+", qos=2)
    pub = Peer(broker, "pub", version).connect()
    pub.publish("o/x", b"one", qos=2)
    pub.publish("o/x", b"end", qos=2)
    # Order holds per QoS level, so the QoS 2 copy of "one" precedes the QoS 2 copy of "end".
    seen: list[tuple[bytes, int]] = []
    for _ in range(6):
        msg = sub.get()
        if (msg.payload, msg.qos) == (b"end", 2):
            break
        seen.append((bytes(msg.payload), msg.qos))
    # One copy per matching subscription, or a single one; either way at the highest QoS.
    assert (b"one", 2) in seen
    assert seen.count((b"one", 2)) + seen.count((b"one", 0)) <= 2
    pub.disconnect()
    sub.disconnect()


def test_dollar_topics_are_not_matched_by_wildcards(broker: Broker, version: int) -> None:
    wild = Peer(broker, "wild", version).connect()
    wild.subscribe("#")
    wild.subscribe("+/x")
    dollar = Peer(broker, "dollar", version).connect()
    dollar.subscribe("$app/#")
    pub = Peer(broker, "pub", version).connect()
    pub.publish("$app/x", b"hidden", qos=1)
    pub.publish("plain/x", b"seen", qos=1)
    got = wild.get()
    assert (got.topic, got.payload) == ("plain/x", b"seen")
    assert dollar.get().topic == "$app/x"
    pub.disconnect()
    dollar.disconnect()
    wild.disconnect()


def test_sys_topics_are_published_and_kept_from_hash(broker: Broker) -> None:
    sys_sub = Peer(broker, "sys").connect()
    sys_sub.subscribe("$SYS/#", qos=0)
    assert sys_sub.get(timeout=15).topic.startswith("$SYS/broker/")
    wild = Peer(broker, "wild").connect()
    wild.subscribe("#", qos=0)
    pub = Peer(broker, "pub").connect()
    pub.publish("after", b"marker", qos=1)
    assert wild.until(b"marker") == []  # no $SYS message slipped through "#"
    for p in (pub, wild, sys_sub):
        p.disconnect()
