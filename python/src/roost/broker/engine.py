"""The sans-IO broker: bytes in, bytes out, time passed in as `now`.

    broker = Broker(settings, store, now=now)
    conn = broker.connection_made(peer, now)
    broker.data_received(conn, data, now)
    for c in broker.take_dirty():  # write c.take_output(); close if c.closing
    broker.connection_lost(conn, now)
    broker.tick(now)  # timeouts, will delays, session expiry, $SYS; returns next deadline

No asyncio, sockets or clocks here; `server` does the I/O and `store` the disk.
Session lifecycle (CONNECT, takeover, wills, expiry) lives in `lifecycle`, the
outgoing flow in `delivery`, SUBSCRIBE/UNSUBSCRIBE in `subscribe`; this module
dispatches packets and routes messages.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from roost.broker.connection import Connection
from roost.broker.delivery import Deliverer
from roost.broker.lifecycle import Lifecycle
from roost.broker.message import Message, Outgoing
from roost.broker.policy import AnonymousPolicy, ListenerAuth, Policy
from roost.broker.retained import RetainedIndex
from roost.broker.router import Router, SubOptions
from roost.broker.session import Session
from roost.broker.settings import Settings
from roost.broker.store import Store
from roost.broker.subscribe import Subscriptions
from roost.broker.sysinfo import Stats
from roost.mqtt.codec import Decoder
from roost.mqtt.errors import ProtocolError, RemoteProtocolError, UnsupportedProtocolVersion
from roost.mqtt.packets import (
    MQTT_5,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PropertyId,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    Subscribe,
    Unsubscribe,
)

log = logging.getLogger("roost.broker")

_ALIAS = PropertyId.TOPIC_ALIAS
_EXPIRY = PropertyId.MESSAGE_EXPIRY_INTERVAL
_RESPONSE = PropertyId.RESPONSE_TOPIC
_CORRELATION = PropertyId.CORRELATION_DATA
_NOT_FOUND = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND


def _ack(conn: Connection, first: int, pid: int) -> None:
    """PUBACK/PUBREC/PUBREL/PUBCOMP with reason 0: the same 4 bytes in 3.1.1 and 5.0."""
    conn.write(bytes((first, 2, pid >> 8, pid & 0xFF)))


def _connect_level(head: bytes) -> int | None:
    """The protocol level of a CONNECT from its first bytes, to answer a bad CONNECT."""
    if len(head) < 2 or head[0] >> 4 != 1:
        return None
    i = 1
    while i < min(4, len(head) - 1) and head[i] & 0x80:
        i += 1
    at = i + 3 + int.from_bytes(head[i + 1:i + 3], "big")  # past length, name, to level
    return head[at] if at < len(head) else None


class Broker:
    def __init__(self, settings: Settings, store: Store, *, now: float = 0.0,
                 policy: Policy | None = None) -> None:
        self.settings = settings
        self.store = store
        self.policy: Policy = policy or AnonymousPolicy(settings.allow_anonymous)
        self.stats = Stats(started=now)
        self.router = Router()
        self.retained: RetainedIndex[Message] = RetainedIndex()
        self.sessions: dict[str, Session] = {}
        self.connections: dict[Connection, None] = {}
        self._dirty: dict[Connection, None] = {}
        self.deliverer = Deliverer(settings, store, self.stats)
        self.deliverer.undelivered = self._undelivered
        self.lifecycle = Lifecycle(self)
        self.subscriptions = Subscriptions(self)
        self.router.available = self._available
        # The cluster (roost.broker.cluster) and external bridges: client ids of the
        # peers' bridge sessions and of the external bridges' local sessions, and hooks.
        self.peer_ids: frozenset[str] = frozenset()
        self.bridge_ids: frozenset[str] = frozenset()
        self.node = ""  # this node's name in a cluster, named in error answers
        self.stamp: Callable[[Message, float], Message] | None = None  # retained LWW
        self.on_connect: Callable[[Connection, float], None] | None = None  # takeover
        self._max_levels = settings.max_topic_levels
        self._max_length = settings.max_topic_length
        self._max_chars = settings.max_topic_length // 4  # shorter is short enough in UTF-8
        self._next_sys = now + settings.sys_interval if settings.sys_interval > 0 else 0.0
        self._handlers: dict[type[Any], Callable[[Connection, Any, float], None]] = {
            Connect: self.lifecycle.connect,
            Publish: self._on_publish,
            PubAck: self._on_puback,
            PubRec: self._on_pubrec,
            PubRel: self._on_pubrel,
            PubComp: self._on_puback,
            Subscribe: self.subscriptions.subscribe,
            Unsubscribe: self.subscriptions.unsubscribe,
            PingReq: self._on_pingreq,
            Disconnect: self.lifecycle.disconnect,
            Auth: self._on_auth,
        }
        self.lifecycle.load(now)

    def _available(self, client_id: str) -> bool:
        s = self.sessions.get(client_id)
        return s is not None and s.conn is not None

    # -- the I/O boundary ---------------------------------------------------------

    def connection_made(self, peer: str, now: float, *, identity: str | None = None,
                        auth: ListenerAuth | None = None) -> Connection:
        decoder = Decoder(max_packet_size=self.settings.max_packet_size, server=True)
        conn = Connection(peer, now, decoder, self._dirty)
        conn.identity = identity
        conn.auth = auth
        self.connections[conn] = None
        limit = self.settings.max_connections
        if limit and len(self.connections) > limit:
            log.warning("refusing %s: max_connections (%d) reached", peer, limit)
            conn.close()
        return conn

    def data_received(self, conn: Connection, data: bytes, now: float) -> None:
        if conn.closing:
            return
        conn.last_seen = now
        self.stats.bytes_received += len(data)
        if not conn.connected and len(conn.head) < 16:
            conn.head += data[:16]
        try:
            packets = conn.decoder.feed(data)
            handlers = self._handlers
            for packet in packets:
                handlers[type(packet)](conn, packet, now)
                if conn.closing:
                    return
        except RemoteProtocolError as e:
            self._protocol_error(conn, e)
        except Exception:  # a bug of ours must not take other clients down
            log.exception("internal error on %r; closing it", conn)
            if conn.connected and conn.version == MQTT_5:
                conn.send(Disconnect(ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR))
            conn.close()

    def connection_lost(self, conn: Connection, now: float) -> None:
        if conn.lost:
            return
        conn.lost = True
        self.connections.pop(conn, None)
        self._dirty.pop(conn, None)
        self.lifecycle.detach(conn, now)

    def take_dirty(self) -> list[Connection]:
        """Connections with output to write or waiting to be closed; clears the set."""
        dirty = list(self._dirty)
        self._dirty.clear()
        return dirty

    def tick(self, now: float) -> float:
        """Run timers; returns when the next tick is wanted."""
        self.lifecycle.tick(now)
        self.deliverer.expire(now)
        interval = self.settings.sys_interval
        if interval > 0 and now >= self._next_sys:
            self._next_sys = now + interval
            self.publish_sys(now)
        return now + 1.0

    def disconnect(self, conn: Connection, reason: ReasonCode, why: str) -> None:
        """The server ends a connection (revoked certificate...): v5 clients hear why."""
        if conn.closing:
            return
        if conn.connected and conn.version == MQTT_5:
            conn.send(Disconnect(reason, {PropertyId.REASON_STRING: why}))
        conn.close(why)

    def shutdown(self, now: float) -> None:
        """Tell v5 clients the server is going away; keep their sessions."""
        self.lifecycle.shutdown(now)

    def _protocol_error(self, conn: Connection, e: RemoteProtocolError) -> None:
        log.info("closing %r: %s (reason 0x%02X)", conn, e, e.reason_code)
        if conn.connected:
            if conn.version == MQTT_5:
                props = {PropertyId.REASON_STRING: str(e)[:200]}
                conn.send(Disconnect(e.reason_code, props))
        elif isinstance(e, UnsupportedProtocolVersion):
            conn.write(b"\x20\x02\x00\x01")  # 3.1.1 CONNACK: unacceptable protocol version
        elif _connect_level(conn.head) == MQTT_5:
            conn.version = MQTT_5
            conn.send(ConnAck(False, e.reason_code, {PropertyId.REASON_STRING: str(e)[:200]}))
        conn.close(f"protocol error: {e}")

    # -- publishing ---------------------------------------------------------------

    def publish(self, msg: Message, publisher: str | None, now: float, *,
                from_peer: bool = False) -> bool:
        """Retain if asked, route to subscribers; True if anyone matched. `from_peer`:
        it came over a cluster bridge, so it goes to local subscribers only."""
        if msg.retain:
            if self.stamp is not None and not from_peer:
                msg = self.stamp(msg, now)
            topic = msg.topic
            keep = not topic.startswith("$SYS/")  # rebuilt every sys_interval anyway
            if msg.payload:
                self.retained.set(topic, msg)
                if keep:
                    self.store.set_retained(topic, msg)
            elif self.retained.delete(topic) and keep:
                self.store.set_retained(topic, None)
        return self.route(msg, publisher, now, from_peer=from_peer)

    def route(self, msg: Message, publisher: str | None, now: float, *,
              from_peer: bool = False) -> bool:
        matches = self.router.match(msg.topic, publisher)
        if not matches:
            return False
        if self.peer_ids and (from_peer or publisher in self.bridge_ids):
            # One hop: what came from a peer or an external bridge never goes to a peer,
            # and what came from a peer never goes out on an external bridge.
            skip = self.peer_ids | self.bridge_ids if from_peer else self.peer_ids
            matches = [m for m in matches if m[0] not in skip]
            if not matches:
                return False
        sessions = self.sessions
        if self.policy.checks_reads:
            matches = self._readable(matches, msg.topic)
            if not matches:
                return True
        deliver = self.deliverer.deliver
        mqos = msg.qos
        retain = msg.retain
        if len(matches) == 1:
            client_id, o = matches[0]
            s = sessions.get(client_id)
            if s is not None:
                ids = () if o.subscription_id is None else (o.subscription_id,)
                deliver(s, Outgoing(0, msg, min(mqos, o.qos), retain and o.retain_as_published,
                                    ids), now)
            return True
        # Overlapping subscriptions: one copy per client, with the highest QoS and
        # every matching subscription identifier (MQTT 5.0 section 4.8.2... 3.3.4).
        merged: dict[str, tuple[int, bool, list[int]]] = {}
        for client_id, o in matches:
            q, r, ids_ = merged.get(client_id, (0, False, []))
            if o.subscription_id is not None:
                ids_.append(o.subscription_id)
            merged[client_id] = (max(q, o.qos), r or o.retain_as_published, ids_)
        for client_id, (q, r, ids_) in merged.items():
            s = sessions.get(client_id)
            if s is not None:
                deliver(s, Outgoing(0, msg, min(mqos, q), retain and r, tuple(sorted(ids_))), now)
        return True

    def _undelivered(self, s: Session, out: Outgoing, what: str, sent: bool,
                     now: float) -> None:
        """A request that will not reach `s`: answer it, in the agent's reply format, on
        its Response Topic with its Correlation Data, as `s` itself would have answered.
        Only the node holding the client's session gets here (a peer's bridge session
        or an external bridge only forwards, so it never answers), and only where the
        client's ACL lets it publish: a Response Topic cannot aim the broker elsewhere.
        The answer carries no Response Topic, so it can never cause another answer."""
        client_id = s.client_id
        topic = out.message.properties.get(_RESPONSE)
        if client_id in self.peer_ids or client_id in self.bridge_ids \
                or not isinstance(topic, str) or not topic or "+" in topic or "#" in topic \
                or not self.policy.authorize_publish_as(client_id, s.username, topic):
            return
        if s.conn is not None:
            state = f"{client_id} is connected but has not acknowledged earlier messages"
        else:
            state = f"{client_id} offline"
            if s.offline_since is not None:
                state += " since " + time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                   time.gmtime(s.offline_since))
            if s.offline_why:
                state += f" ({s.offline_why})"
        # A session that ended has no state to tell; `what` says why it ended.
        error = f"{what}: {state}" if self.sessions.get(client_id) is s else what
        if sent:
            error += "; it was sent but never acknowledged, so it may have run"
        body = {"ok": False, "error": error, "broker": self.node or "roost"}
        props = {}
        correlation = out.message.properties.get(_CORRELATION)
        if correlation is not None:
            props[_CORRELATION] = correlation
        log.info("answering a request to %r on %r: %s", client_id, topic, error)
        self.stats.undelivered_answers += 1
        self.publish(Message(topic, json.dumps(body).encode(), out.qos, False, props), None,
                     now)

    def _readable(self, matches: list[tuple[str, SubOptions]],
                  topic: str) -> list[tuple[str, SubOptions]]:
        read = self.policy.authorize_read
        sessions = self.sessions
        kept = []
        for client_id, opts in matches:
            s = sessions.get(client_id)
            if s is not None and read(client_id, s.username, topic):
                kept.append((client_id, opts))
            elif s is not None:
                self.stats.acl_denials["read"] += 1
        return kept

    def publish_sys(self, now: float) -> None:
        stats = self.stats
        stats.clients_connected = sum(1 for s in self.sessions.values() if s.conn is not None)
        stats.clients_total = len(self.sessions)
        stats.retained = len(self.retained)
        stats.subscriptions = len(self.router)
        for topic, value in stats.topics(now):
            self.publish(Message(topic, value.encode(), 0, True), None, now)

    # -- packets from clients -----------------------------------------------------

    def _on_publish(self, conn: Connection, p: Publish, now: float) -> None:
        s = conn.session
        assert s is not None
        self.stats.received[p.qos] += 1
        topic = p.topic
        props = p.properties
        if props and conn.version == MQTT_5 and _ALIAS in props:
            alias = props[_ALIAS]
            if not 0 < alias <= self.settings.topic_alias_maximum:
                raise ProtocolError(f"topic alias {alias} out of range",
                                    ReasonCode.TOPIC_ALIAS_INVALID)
            if topic:
                conn.alias_in[alias] = topic
            else:
                found = conn.alias_in.get(alias)
                if found is None:
                    raise ProtocolError(f"unknown topic alias {alias}")
                topic = found
            props = {k: v for k, v in props.items() if k != _ALIAS}
        # The codec refused wildcards and empty names; check only our limits.
        if topic.count("/") >= self._max_levels or (
                len(topic) > self._max_chars and len(topic.encode()) > self._max_length):
            raise ProtocolError(f"invalid topic name {topic[:100]!r}",
                                ReasonCode.TOPIC_NAME_INVALID)
        qos = p.qos
        pid = p.packet_id or 0
        if qos == 2:
            if pid in s.incoming:  # a resend: routed already, exactly once
                _ack(conn, 0x50, pid)
                return
            if len(s.incoming) >= self.settings.receive_maximum:
                raise ProtocolError("receive maximum exceeded",
                                    ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)
        if not self.policy.authorize_publish(conn, topic):
            self._refuse_publish(conn, qos, pid)
            return
        expires = None
        if props and _EXPIRY in props:
            expires = now + props[_EXPIRY]
        msg = Message(topic, p.payload, qos, p.retain, props, expires)
        matched = self.publish(msg, conn.client_id, now)
        if qos == 1:
            if matched or conn.version != MQTT_5:
                _ack(conn, 0x40, pid)
            else:
                conn.send(PubAck(pid, ReasonCode.NO_MATCHING_SUBSCRIBERS))
        elif qos == 2:
            s.incoming.add(pid)
            if s.persistent:
                self.store.add_incoming(s.client_id, pid)
            if matched or conn.version != MQTT_5:
                _ack(conn, 0x50, pid)
            else:
                conn.send(PubRec(pid, ReasonCode.NO_MATCHING_SUBSCRIBERS))

    def _refuse_publish(self, conn: Connection, qos: int, pid: int) -> None:
        self.stats.acl_denials["publish"] += 1
        reason = ReasonCode.NOT_AUTHORIZED if conn.version == MQTT_5 else 0
        if qos == 1:
            conn.send(PubAck(pid, reason))
        elif qos == 2:
            conn.send(PubRec(pid, reason))

    def _on_puback(self, conn: Connection, p: PubAck | PubComp, now: float) -> None:
        assert conn.session is not None
        self.deliverer.acked(conn.session, p.packet_id, now)

    def _on_pubrec(self, conn: Connection, p: PubRec, now: float) -> None:
        s = conn.session
        assert s is not None
        pid = p.packet_id
        if p.reason_code >= 0x80:  # the client refused it: the exchange ends here
            self.deliverer.acked(s, pid, now)
        elif self.deliverer.received(s, pid):
            _ack(conn, 0x62, pid)
        else:
            conn.send(PubRel(pid, _NOT_FOUND if conn.version == MQTT_5 else 0))

    def _on_pubrel(self, conn: Connection, p: PubRel, now: float) -> None:
        s = conn.session
        assert s is not None
        pid = p.packet_id
        if pid in s.incoming:
            s.incoming.discard(pid)
            if s.persistent:
                self.store.delete_incoming(s.client_id, pid)
            _ack(conn, 0x70, pid)
        else:
            conn.send(PubComp(pid, _NOT_FOUND if conn.version == MQTT_5 else 0))

    def _on_pingreq(self, conn: Connection, p: PingReq, now: float) -> None:
        conn.write(b"\xd0\x00")

    def _on_auth(self, conn: Connection, p: Auth, now: float) -> None:
        # CONNECT with an Authentication Method is refused, so AUTH is never expected.
        raise ProtocolError("AUTH without enhanced authentication")
