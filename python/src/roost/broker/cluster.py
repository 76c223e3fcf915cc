"""The cluster: broker nodes bridged into one logical broker. Sans-IO; the connections
are in `roost.broker.bridge`.

Mechanism (full mesh, one hop)
------------------------------
Every node keeps one MQTT 5 client connection, a *bridge*, to each peer's cluster
listener, over mutual TLS with its node certificate (CN `node:<name>`). Client id and
username are that identity too; the peer's policy accepts it only on a `cluster = true`
listener and only for a name in its `[cluster].peers`. On the peer the bridge subscribes
to `#` (at `cluster.qos`, no local, retain as published, retained messages on every
subscribe) and to `$cluster/#` (QoS 1). So the bridge from A to B *pulls* into A what
B's own clients publish; a node never pushes.

No loop, no duplicate: a node routes a message to a peer's bridge session only when one
of its own clients published it (`Broker.route` drops `peer_ids` from the matches of a
message that arrived `from_peer`). The origin is the node at the other end of the link a
message arrives on, so every message crosses exactly one hop, from its origin to each
other node, once: N-1 link crossings in a mesh of N nodes, and it cannot come back.
Each node then routes it like a local publish: one copy per matching client, with
overlapping subscriptions merged as usual. No origin property and no message-id cache
are needed; no local is a second guard (a node's bridge session never publishes).

QoS: a message crosses at min(its QoS, `cluster.qos`) and reaches remote subscribers at
min(that, their subscription's QoS). A QoS 2 message is handed to local subscribers when
its PUBLISH first arrives and its packet id remembered until PUBREL (method A of MQTT
5.0 section 4.3.3), so a resend after a lost PUBREC is not delivered twice.

Peer down: the bridge session on the peer side is persistent (`queue_expiry`), so the
node that stays up queues QoS 1/2 messages for the one that is down, in its SQLite
store with every other session (bounded: `queue_max` per peer, the newest dropped),
and sends them when the bridge comes back. QoS 0 is not queued, as for any client.

Retained messages: a node stamps each retained message its clients publish (or clear)
with the user property `roost-stamp` = "<unix time> <node>" (strictly increasing on
each node, microseconds). A retained message from a
peer is kept only if its stamp is greater, compared as (time, node name), than the stamp
of the node's current retained message or tombstone for that topic (last writer wins,
ties broken by node name); otherwise it is dropped, also for local subscribers, so the
retained messages a peer resends on every (re)subscribe reach nobody twice. A node that
restarts gets every retained message again when its bridges subscribe.

Client-id takeover: after each CONNECT a node publishes `$cluster/connected` with
{"client", "node", "at"}; a peer with an older connection for that client id (compared
as (time, node)) disconnects it with 0x8E Session taken over and ends its session there:
the session lives on the newest node. Clients cannot publish or subscribe under
`$cluster/` (the policy refuses), so only nodes write there.

Clocks: stamps and takeover use each node's wall clock; keep the nodes on NTP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from roost.broker.cluster_config import node_identity
from roost.broker.message import Message
from roost.mqtt.packets import MQTT_5, Disconnect, PropertyId, ReasonCode

if TYPE_CHECKING:
    from roost.broker.connection import Connection
    from roost.broker.engine import Broker

log = logging.getLogger("roost.broker.cluster")

STAMP = "roost-stamp"
CONTROL = "$cluster/"
CONNECTED = "$cluster/connected"
Stamp = tuple[float, str]
_USER = PropertyId.USER_PROPERTY


def stamp_of(msg: Message) -> Stamp:
    """A retained message's (time, node); (0, "") when it has none (published before
    the cluster existed), which every stamped message beats."""
    for key, value in msg.properties.get(_USER, ()):
        if key == STAMP:
            at, _, node = value.partition(" ")
            try:
                return float(at), node
            except ValueError:
                break
    return 0.0, ""


def with_stamp(msg: Message, stamp: Stamp) -> Message:
    props = dict(msg.properties)
    users = [kv for kv in props.get(_USER, ()) if kv[0] != STAMP]
    props[_USER] = [*users, (STAMP, f"{stamp[0]:.6f} {stamp[1]}")]
    return Message(msg.topic, msg.payload, msg.qos, msg.retain, props, msg.expires_at)


def wins(new: Stamp, old: Stamp | None) -> bool:
    """Last writer wins: the later time, then the greater node name."""
    return old is None or new > old


class Cluster:
    """What a node decides about cluster traffic; installs its hooks in the engine."""

    def __init__(self, broker: Broker, node: str, peers: Iterable[str],
                 queue_max: int) -> None:
        self.broker = broker
        self.node = node
        self.peer_ids = frozenset(node_identity(p) for p in peers)
        self.tombstones: dict[str, Stamp] = {}  # cleared retained topics, in memory
        self.takeovers = 0
        self._last = 0.0  # the last stamp's time: stamps of one node strictly increase
        broker.peer_ids = self.peer_ids
        broker.node = node
        broker.stamp = self.stamp
        broker.on_connect = self.connected
        for client_id in self.peer_ids:
            broker.deliverer.queue_limits[client_id] = queue_max
        for s in list(broker.sessions.values()):  # nodes no longer in the peer list
            if s.client_id.startswith("node:") and s.client_id not in self.peer_ids:
                log.info("ending the session of %r: not a peer any more", s.client_id)
                broker.lifecycle.end_session(s, broker.stats.started)

    # -- what this node's clients do -------------------------------------------------

    def stamp(self, msg: Message, now: float) -> Message:
        """A retained publish (or clear) by a local client: stamp it for the peers."""
        if msg.topic.startswith("$"):
            return msg  # $SYS is per node
        # Several publishes in one read share `now`: a microsecond apart, in their order.
        self._last = max(round(now, 6), round(self._last + 1e-6, 6))
        stamp = (self._last, self.node)
        if msg.payload:
            self.tombstones.pop(msg.topic, None)
        else:
            self.tombstones[msg.topic] = stamp
        return with_stamp(msg, stamp)

    def connected(self, conn: Connection, now: float) -> None:
        """Tell the peers a client id is now here, so they drop older connections."""
        client_id = conn.client_id
        if client_id in self.peer_ids or client_id in self.broker.bridge_ids:
            return
        body = json.dumps({"client": client_id, "node": self.node, "at": now})
        self.broker.publish(Message(CONNECTED, body.encode(), 1, False), None, now)

    # -- what arrives from a peer ----------------------------------------------------

    def from_peer(self, peer: str, msg: Message, now: float) -> bool:
        """A PUBLISH that peer's clients made; True if local subscribers got it."""
        topic = msg.topic
        if topic.startswith(CONTROL):
            if topic == CONNECTED:
                self._remote_connect(peer, msg.payload, now)
            return False
        if msg.retain:
            stamp = stamp_of(msg)
            if not wins(stamp, self.current(topic)):
                return False  # a resend of what we have, or older than it
            if msg.payload:
                self.tombstones.pop(topic, None)
            else:
                self.tombstones[topic] = stamp
        return self.broker.publish(msg, None, now, from_peer=True)

    def current(self, topic: str) -> Stamp | None:
        held = self.broker.retained.get(topic)
        if held is not None:
            return stamp_of(held)
        return self.tombstones.get(topic)

    def _remote_connect(self, peer: str, payload: bytes, now: float) -> None:
        try:
            notice = json.loads(payload)
            client_id, node, at = notice["client"], notice["node"], float(notice["at"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed %s from %s", CONNECTED, peer)
            return
        s = self.broker.sessions.get(client_id)
        if s is None or not isinstance(node, str) or node == self.node:
            return
        old = s.conn
        if old is not None and not (at, node) > (old.created, self.node):
            return  # ours is the newer connection: the peer's notice lost the race
        self.takeovers += 1
        lifecycle = self.broker.lifecycle
        if old is not None:
            log.info("client %r connected on %s; closing %r", client_id, node, old)
            if old.version == MQTT_5:
                old.send(Disconnect(ReasonCode.SESSION_TAKEN_OVER,
                                    {PropertyId.REASON_STRING: f"connected on node {node}"}))
            old.close(f"session taken over on node {node}")
            will, old.will, old.session, s.conn = old.will, None, None, None
            if will is not None:
                lifecycle.publish_will(will, client_id, now)
        # The session lives on the newest node now.
        lifecycle.end_session(s, now, f"it connected to node {node}")
