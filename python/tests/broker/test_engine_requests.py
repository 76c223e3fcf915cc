"""Requests (MQTT 5 Response Topic + Correlation Data) that cannot reach their target's
session get an error answer from the broker, in the agent's reply format, on their
Response Topic: never silently lost. Sans-IO, with the clock moved by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import Client, World

from roost.broker.cluster import Cluster
from roost.broker.policy import AclPolicy, AnonymousPolicy, ListenerAuth
from roost.mqtt.packets import (
    MQTT_5,
    ConnAck,
    Connect,
    PropertyId,
    Publish,
    SubAck,
    Subscribe,
    Subscription,
)
from roost.security.acl import Acl

P = PropertyId
PERSISTENT = {P.SESSION_EXPIRY_INTERVAL: 3600}
REPLY = "roost/home/pi-1/reply/x"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _pi(world: World, *, expiry: dict[Any, Any] | None = None, **kw: Any) -> Client:
    """pi-1 subscribed to its command topics (persistent session unless `expiry` = {})."""
    props = PERSISTENT if expiry is None else expiry
    c, _ = world.connect("pi-1", MQTT_5, clean=not props, props=props, **kw)
    c.send(Subscribe(1, (Subscription("roost/home/pi-1/cmd/#", 1),)))
    c.expect(SubAck)
    return c


def _requester(world: World) -> Client:
    c, _ = world.connect("ops", MQTT_5)
    c.send(Subscribe(1, (Subscription("roost/home/+/reply/#", 1),)))
    c.expect(SubAck)
    return c


def _request(c: Client, corr: bytes, expiry: int | None = 20, pid: int = 1) -> None:
    props: dict[Any, Any] = {P.RESPONSE_TOPIC: REPLY, P.CORRELATION_DATA: corr}
    if expiry is not None:
        props[P.MESSAGE_EXPIRY_INTERVAL] = expiry
    c.send(Publish("roost/home/pi-1/cmd/ping", b"{}", 1, packet_id=pid, properties=props))


def _answers(c: Client) -> list[tuple[bytes, dict[str, Any]]]:
    """(correlation data, reply body) of every reply the requester got."""
    return [(p.properties.get(P.CORRELATION_DATA, b""), json.loads(p.payload))
            for p in c.packets() if isinstance(p, Publish) and p.topic == REPLY]


def _queued(world: World) -> Client:
    """pi-1 offline with its session; a request with 20 s expiry queued for it. Returns
    the requester."""
    _pi(world).drop()
    ops = _requester(world)
    _request(ops, b"c1")
    return ops


def test_a_request_expiring_in_an_offline_session_is_answered(world: World) -> None:
    ops = _queued(world)
    world.advance(10)
    assert _answers(ops) == []  # not yet expired: the Pi may come back in time
    world.advance(11)
    [(corr, body)] = _answers(ops)
    assert corr == b"c1"
    assert body["ok"] is False
    assert body["error"].startswith("expired undelivered: pi-1 offline since ")
    assert "(connection lost)" in body["error"]
    assert not world.broker.sessions["pi-1"].queue
    pi, ack = world.connect("pi-1", MQTT_5, clean=False, props=PERSISTENT)
    assert ack.session_present and pi.publishes() == []  # expired: never run late


def test_a_request_in_time_is_delivered_not_answered(world: World) -> None:
    ops = _queued(world)
    world.advance(5)
    pi, _ = world.connect("pi-1", MQTT_5, clean=False, props=PERSISTENT)
    [got] = pi.publishes()
    assert got.properties[P.CORRELATION_DATA] == b"c1"
    world.advance(30)
    assert _answers(ops) == []


def test_in_flight_to_a_lost_connection_is_answered_as_possibly_run(world: World) -> None:
    pi = _pi(world)
    ops = _requester(world)
    _request(ops, b"c1")
    assert len(pi.publishes()) == 1  # sent, never acknowledged
    world.advance(25)
    assert _answers(ops) == []  # connected: it may still acknowledge
    pi.drop()
    [(corr, body)] = _answers(ops)
    assert corr == b"c1"
    assert body["error"].startswith("expired unacknowledged: pi-1 offline since ")
    assert body["error"].endswith("it was sent but never acknowledged, so it may have run")


def test_in_flight_when_the_connection_went_expires_later(world: World) -> None:
    pi = _pi(world)
    ops = _requester(world)
    _request(ops, b"c1")
    pi.drop()
    world.advance(19)
    assert _answers(ops) == []
    world.advance(2)
    [(_, body)] = _answers(ops)
    assert body["error"].startswith("expired unacknowledged")


def test_a_full_queue_answers_the_request_it_drops(tmp_path: Path) -> None:
    world = World(tmp_path, max_queued_messages=1)
    pi = _pi(world)
    pi.drop()
    ops = _requester(world)
    _request(ops, b"kept", pid=1)
    _request(ops, b"dropped", pid=2)
    [(corr, body)] = _answers(ops)
    assert corr == b"dropped"
    assert body["error"].startswith("not delivered: the queue of pi-1 is full (1 messages)")


def test_a_session_that_ends_answers_what_it_held(world: World) -> None:
    pi = _pi(world, expiry={})  # no session beyond the connection
    ops = _requester(world)
    _request(ops, b"c1", expiry=None)  # no expiry at all: only the session's end tells
    pi.publishes()
    pi.drop()
    [(corr, body)] = _answers(ops)
    assert corr == b"c1"
    assert body["error"] == ("not delivered: the session of pi-1 ended (it disconnected "
                             "(connection lost) and kept no session); it was sent but "
                             "never acknowledged, so it may have run")


def test_session_expiry_answers_the_queued_requests(world: World) -> None:
    _pi(world, expiry={P.SESSION_EXPIRY_INTERVAL: 10}).drop()
    ops = _requester(world)
    _request(ops, b"c1", expiry=None)
    world.advance(11)
    [(_, body)] = _answers(ops)
    assert body["error"] == ("not delivered: the session of pi-1 ended (its session expiry "
                             "interval passed)")


def test_a_queued_request_survives_a_restart_and_is_answered(world: World) -> None:
    _queued(world)
    world.store.commit()
    world.restart()
    ops = _requester(world)
    world.advance(21)
    [(corr, body)] = _answers(ops)
    assert corr == b"c1" and body["error"].startswith("expired undelivered: pi-1 offline")


def test_plain_messages_get_no_answer(world: World) -> None:
    _pi(world).drop()
    ops = _requester(world)
    ops.send(Publish("roost/home/pi-1/cmd/ping", b"{}", 1, packet_id=1,
                     properties={P.MESSAGE_EXPIRY_INTERVAL: 5}))
    world.advance(10)
    assert [p for p in ops.packets() if isinstance(p, Publish)] == []


def test_no_answer_where_the_target_could_not_have_answered(tmp_path: Path) -> None:
    acl = "pattern readwrite roost/home/%c/#\nuser ops\ntopic readwrite roost/#\n"
    world = World(tmp_path, policy=AclPolicy(True, Acl.parse(acl)))
    _pi(world).drop()
    ops, _ = world.connect("ops", MQTT_5)
    ops.conn.username = "ops"
    ops.send(Subscribe(1, (Subscription("roost/#", 1),)))
    ops.expect(SubAck)
    props = {P.RESPONSE_TOPIC: "roost/home/pi-2/cmd/restart-agent",  # not pi-1's to write
             P.CORRELATION_DATA: b"c1", P.MESSAGE_EXPIRY_INTERVAL: 5}
    ops.send(Publish("roost/home/pi-1/cmd/ping", b"{}", 1, packet_id=1, properties=props))
    world.advance(10)
    assert [p for p in ops.packets() if isinstance(p, Publish)] == []


def test_a_peer_nodes_bridge_session_never_answers(tmp_path: Path) -> None:
    """Node a queues for its peer b's bridge while b is away; b's clients may still get
    the request later or elsewhere, so a says nothing when it expires there."""
    world = World(tmp_path, policy=AnonymousPolicy(True, None, frozenset({"node:b"})))
    Cluster(world.broker, "a", ["b"], queue_max=10)
    peer = world.client()
    peer.conn.identity = "node:b"
    peer.conn.auth = ListenerAuth("cluster", False, True, cluster=True)
    peer.send(Connect("node:b", clean_start=False, properties=PERSISTENT))
    assert peer.expect(ConnAck).reason_code == 0
    peer.send(Subscribe(1, (Subscription("#", 1, no_local=True),)))
    peer.expect(SubAck)
    peer.drop()
    ops = _requester(world)
    _request(ops, b"c1")
    world.advance(30)
    assert _answers(ops) == []


def test_the_answer_names_the_node_in_a_cluster(tmp_path: Path) -> None:
    world = World(tmp_path, policy=AnonymousPolicy(True, None, frozenset({"node:b"})))
    Cluster(world.broker, "a", ["b"], queue_max=10)
    ops = _queued(world)
    world.advance(21)
    [(_, body)] = _answers(ops)
    assert body["broker"] == "a"
