"""The cluster's decisions without sockets: one hop, last-writer-wins retained
messages, takeover notices, and the `$cluster/` and `node:` rules of the policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import Client, World  # tests/broker, on sys.path by ./conftest.py

from roost.broker.cluster import CONNECTED, Cluster, stamp_of, wins, with_stamp
from roost.broker.message import Message
from roost.broker.policy import AclPolicy, AnonymousPolicy, ListenerAuth
from roost.mqtt.packets import (
    ConnAck,
    Connect,
    Disconnect,
    PropertyId,
    PubAck,
    Publish,
    ReasonCode,
    SubAck,
    Subscribe,
    Subscription,
)
from roost.security.acl import Acl


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, policy=AnonymousPolicy(True, None, frozenset({"node:b"})))


def _cluster(world: World) -> Cluster:
    return Cluster(world.broker, "a", ["b", "c"], queue_max=10)


def _subscribed(world: World, client_id: str, f: str = "#", *, peer: bool = False,
                expiry: int = 0) -> Client:
    """A client subscribed to `f`; `peer`: a node on a cluster listener, as its
    certificate names it; `expiry`: a persistent session."""
    c = world.client()
    if peer:
        c.conn.identity = client_id
        c.conn.auth = ListenerAuth("cluster", False, True, cluster=True)
    props = {PropertyId.SESSION_EXPIRY_INTERVAL: expiry} if expiry else {}
    c.send(Connect(client_id, clean_start=not expiry, properties=props))
    assert c.expect(ConnAck).reason_code == 0
    c.send(Subscribe(1, (Subscription(f, 1),)))
    c.expect(SubAck)
    return c


def test_stamps_order_by_time_then_node() -> None:
    msg = with_stamp(Message("t", b"x", 0, True), (5.0, "b"))
    assert stamp_of(msg) == (5.0, "b")
    assert stamp_of(Message("t", b"x", 0, True)) == (0.0, "")
    assert wins((5.0, "b"), None)
    assert wins((5.0, "c"), (5.0, "b"))
    assert not wins((5.0, "b"), (5.0, "b"))
    assert not wins((4.0, "z"), (5.0, "a"))


def test_one_hop(world: World) -> None:
    cluster = _cluster(world)
    peer = _subscribed(world, "node:b", peer=True)
    local = _subscribed(world, "dev")
    cluster.from_peer("c", Message("t/1", b"from c", 1, False), world.clock.now)
    assert [p.payload for p in local.publishes()] == [b"from c"]
    assert peer.publishes() == []  # never forwarded to another peer
    pub = world.client()
    pub.send(Connect("pub"), Publish("t/2", b"local", 1, packet_id=1))
    assert [p.payload for p in peer.publishes()] == [b"local"]  # local: to every peer
    assert [p.payload for p in local.publishes()] == [b"local"]


def test_retained_last_writer_wins(world: World) -> None:
    cluster = _cluster(world)
    local = _subscribed(world, "dev")
    now = world.clock.now

    def offer(payload: bytes, stamp: tuple[float, str]) -> bool:
        return cluster.from_peer("c", with_stamp(Message("r", payload, 1, True), stamp), now)

    assert offer(b"v1", (10.0, "c"))
    assert not offer(b"v1", (10.0, "c"))  # a resend on resubscribe: nobody sees it twice
    assert not offer(b"old", (9.0, "z"))
    assert offer(b"v2", (10.0, "d"))  # same time: the greater node name
    assert [p.payload for p in local.publishes()] == [b"v1", b"v2"]
    held = world.broker.retained.get("r")
    assert held is not None and held.payload == b"v2"
    offer(b"", (11.0, "c"))  # cleared
    assert world.broker.retained.get("r") is None
    assert not offer(b"stale", (10.5, "c"))  # older than the clearing: stays cleared
    assert world.broker.retained.get("r") is None


def test_local_retained_publishes_are_stamped_in_order(world: World) -> None:
    cluster = _cluster(world)
    now = world.clock.now
    first = cluster.stamp(Message("r", b"1", 0, True), now)
    second = cluster.stamp(Message("r", b"2", 0, True), now)  # same read, same now
    assert stamp_of(first) < stamp_of(second)
    assert stamp_of(second)[1] == "a"
    sys_msg = Message("$SYS/x", b"1", 0, True)
    assert cluster.stamp(sys_msg, now) is sys_msg


def test_a_newer_connection_elsewhere_takes_over(world: World) -> None:
    cluster = _cluster(world)
    dev = _subscribed(world, "dev")
    created = dev.conn.created

    def notice(at: float) -> Message:
        body = json.dumps({"client": "dev", "node": "b", "at": at}).encode()
        return Message(CONNECTED, body, 1, False)

    cluster.from_peer("b", notice(created - 1), world.clock.now)  # older: ignored
    assert not dev.closed
    cluster.from_peer("b", notice(created + 1), world.clock.now)
    assert dev.closed
    assert dev.expect(Disconnect).reason_code == ReasonCode.SESSION_TAKEN_OVER
    assert "dev" not in world.broker.sessions
    cluster.from_peer("b", Message(CONNECTED, b"not json", 1, False), world.clock.now)


def test_clients_stay_out_of_cluster_topics(world: World) -> None:
    _cluster(world)
    c = world.client()
    c.send(Connect("dev"))
    c.expect(ConnAck)
    c.send(Publish("$cluster/connected", b"{}", 1, packet_id=1))
    assert c.expect(PubAck).reason_code == ReasonCode.NOT_AUTHORIZED
    c.send(Subscribe(2, (Subscription("$cluster/#", 1),)))
    assert c.expect(SubAck).reason_codes == (ReasonCode.NOT_AUTHORIZED,)


def test_node_ids_only_on_cluster_listeners(world: World) -> None:
    c = world.client()
    c.send(Connect("node:b"))  # a node's client id on an ordinary listener
    assert c.expect(ConnAck).reason_code == ReasonCode.NOT_AUTHORIZED
    other = world.client()
    other.send(Connect("node:not-a-peer"))  # the whole node: namespace, in a cluster
    assert other.expect(ConnAck).reason_code == ReasonCode.NOT_AUTHORIZED


def test_a_peer_that_is_down_gets_a_bounded_queue(world: World) -> None:
    _cluster(world)  # queue_max=10 for node:b and node:c
    _subscribed(world, "node:b", peer=True, expiry=3600).drop()
    pub = world.client()
    pub.send(Connect("pub"), *(Publish("q", b"%d" % i, 1, packet_id=i + 1) for i in range(15)))
    assert len(world.broker.sessions["node:b"].queue) == 10  # the oldest kept
    assert world.broker.stats.dropped_queue_full == 5


def test_an_acl_recognises_the_node_identities(tmp_path: Path) -> None:
    """Under an acl_file a node reads every topic and subscribes to `$cluster/#` and
    `#`; an ordinary user granted `#` still gets no `$cluster/#`."""
    acl = Acl.parse("user dev\ntopic readwrite #\n")
    world = World(tmp_path, policy=AclPolicy(True, acl, None, frozenset({"node:b"})))
    _cluster(world)
    peer = _subscribed(world, "node:b", "secret/#", peer=True)
    peer.send(Subscribe(2, (Subscription("$cluster/#", 1),)))
    assert peer.expect(SubAck).reason_codes == (1,)
    dev = world.client()
    dev.send(Connect("dev", username="dev"))
    dev.expect(ConnAck)
    dev.send(Subscribe(1, (Subscription("$cluster/#", 1), Subscription("#", 1))))
    assert dev.expect(SubAck).reason_codes == (ReasonCode.NOT_AUTHORIZED, 1)
    dev.send(Publish("secret/x", b"s", 1, packet_id=1))
    got = {p.topic: p.payload for p in peer.publishes()}
    assert got == {CONNECTED: got[CONNECTED], "secret/x": b"s"}  # dev's takeover notice too


def test_a_node_gone_from_the_peers_loses_its_session(tmp_path: Path) -> None:
    """A node removed from the inventory does not leave a queue growing for a week."""
    world = World(tmp_path, policy=AnonymousPolicy(True, None, frozenset({"node:x"})))
    _subscribed(world, "node:x", peer=True, expiry=3600).drop()
    assert "node:x" in world.broker.sessions
    world.restart()
    Cluster(world.broker, "a", ["b"], queue_max=10)
    assert "node:x" not in world.broker.sessions
