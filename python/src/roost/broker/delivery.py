"""Outgoing PUBLISH flow for one session: in-flight window, queue, acks, resends.

QoS 0 goes straight to a connected client and is never queued. QoS 1/2 take a packet id
while fewer than `send_quota` are in flight (the client's receive maximum capped by our
`max_inflight`); the rest wait in the session queue, at most `max_queued_messages`
(0: no limit).
Drop policy when the queue is full: the new message is dropped (the queue keeps the
oldest, as Mosquitto does) and counted in `stats.dropped`.

Requests (a message with a Response Topic) that will never reach their session are
reported to `undelivered(session, delivery, what, sent, now)`, which the engine turns
into an error answer: dropped at a full queue or as too large, expired (Message Expiry
Interval) while queued or while in flight to a session that went offline, or discarded
with their session. Expiry is checked when a message would be sent and, for requests,
at their expiry time (`expire`, from the engine's tick), so a requester hears of it even
while the target stays offline.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

from roost.broker.connection import Connection
from roost.broker.message import Message, Outgoing
from roost.broker.session import Session
from roost.broker.settings import Settings
from roost.broker.store import Store
from roost.broker.sysinfo import Stats
from roost.mqtt.codec import encode
from roost.mqtt.packets import MQTT_5, PropertyId, Publish, PubRel
from roost.mqtt.wire import varint

_EXPIRY = PropertyId.MESSAGE_EXPIRY_INTERVAL
_SUB_ID = PropertyId.SUBSCRIPTION_IDENTIFIER
_ALIAS = PropertyId.TOPIC_ALIAS
_RESPONSE = PropertyId.RESPONSE_TOPIC

# (session, delivery, what happened, whether it had been sent, now)
Undelivered = Callable[[Session, Outgoing, str, bool, float], None]


class Deliverer:
    def __init__(self, settings: Settings, store: Store, stats: Stats) -> None:
        self.settings = settings
        self.store = store
        self.stats = stats
        self.queue_limits: dict[str, int] = {}  # client id -> its own max_queued_messages
        # Fan-out encodes a message once per run of same-shaped deliveries: the last
        # encoding is reused while (version, qos, retain, sub_ids, dup, remaining
        # expiry) match, with the packet id patched in at `_pid_at` for QoS > 0.
        self._last_msg: Message | None = None
        self._last_key: tuple[object, ...] = ()
        self._last_data = b""
        self._pid_at = -1
        self.undelivered: Undelivered | None = None
        # Requests with an expiry, by expiry time: (expires_at, order, session, delivery).
        self._expiring: list[tuple[float, int, Session, Outgoing]] = []
        self._order = itertools.count()

    def deliver(self, s: Session, out: Outgoing, now: float) -> None:
        """Send, queue or drop one delivery; `out.seq` and `packet_id` are set here."""
        conn = s.conn
        if out.qos == 0:
            if conn is not None and conn.connected:
                self._send(conn, out, False, now)
            return
        out.seq = s.next_seq
        s.next_seq += 1
        self.watch(s, out)
        if conn is not None and conn.connected and not s.queue \
                and len(s.inflight) < conn.send_quota:
            self._launch(s, conn, out, True, now)
            return
        limit = self.queue_limits.get(s.client_id, self.settings.max_queued_messages)
        if limit and len(s.queue) >= limit:
            self.stats.dropped_queue_full += 1
            self._lost(s, out, f"not delivered: the queue of {s.client_id} is full "
                       f"({limit} messages)", False, now)
            return
        s.queue.append(out)
        if s.persistent:
            self.store.save_outgoing(s.client_id, out, True)

    def pump(self, s: Session, now: float) -> None:
        """Move queued messages into free in-flight slots of a connected session."""
        conn = s.conn
        if conn is None or not conn.connected:
            return
        queue = s.queue
        while queue and len(s.inflight) < conn.send_quota:
            out = queue.popleft()
            msg = out.message
            if msg.expires_at is not None and msg.expires_at <= now:
                self._forget(s, out)
                self._lost(s, out, "expired undelivered", False, now)
                continue
            self._launch(s, conn, out, False, now)

    def _launch(self, s: Session, conn: Connection, out: Outgoing, new: bool,
                now: float) -> None:
        """Give a delivery a packet id and an in-flight slot, record it, send it."""
        out.packet_id = pid = s.new_packet_id()
        s.inflight[pid] = out
        if s.persistent:
            self.store.save_outgoing(s.client_id, out, new)
        if not self._send(conn, out, False, now):
            self._finish(s, pid)
            self._too_large(s, out, now)

    def resend(self, s: Session, now: float) -> None:
        """On session resume: resend every in-flight message (DUP) or PUBREL, in order."""
        conn = s.conn
        assert conn is not None
        for pid, out in list(s.inflight.items()):
            if out.released:
                conn.send(PubRel(pid))
                continue
            msg = out.message
            if msg.expires_at is not None and msg.expires_at <= now:
                self._finish(s, pid)
                self._lost(s, out, "expired unacknowledged", True, now)
            elif not self._send(conn, out, True, now):
                self._finish(s, pid)
                self._too_large(s, out, now)
        self.pump(s, now)

    def acked(self, s: Session, packet_id: int, now: float) -> bool:
        """PUBACK, or PUBCOMP of a released QoS 2, or a failed PUBREC: slot freed."""
        if packet_id not in s.inflight:
            return False
        self._finish(s, packet_id)
        self.pump(s, now)
        return True

    def received(self, s: Session, packet_id: int) -> bool:
        """PUBREC: the QoS 2 message is now the client's; PUBREL follows."""
        out = s.inflight.get(packet_id)
        if out is None:
            return False
        if not out.released:
            out.released = True
            if s.persistent:
                self.store.save_outgoing(s.client_id, out, False)
        return True

    def watch(self, s: Session, out: Outgoing) -> None:
        """Track a request with an expiry so that `expire` finds it on time. An entry
        stays until that time even if the request was delivered: a request costs its
        memory for its expiry interval at most."""
        msg = out.message
        if msg.expires_at is not None and _RESPONSE in msg.properties:
            heapq.heappush(self._expiring, (msg.expires_at, next(self._order), s, out))

    def expire(self, now: float) -> None:
        """Drop the requests whose expiry has passed while queued, or in flight to a
        session without a connection (a connected client has it and may still answer);
        each is reported to `undelivered`."""
        heap = self._expiring
        while heap and heap[0][0] <= now:
            _, _, s, out = heapq.heappop(heap)
            if out.packet_id:
                if s.conn is None and s.inflight.get(out.packet_id) is out \
                        and not out.released:
                    self._finish(s, out.packet_id)
                    self._lost(s, out, "expired unacknowledged", True, now)
            elif out in s.queue:  # identity: Outgoing compares by identity
                s.queue.remove(out)
                self._forget(s, out)
                self._lost(s, out, "expired undelivered", False, now)

    def offline(self, s: Session, now: float) -> None:
        """The session lost its connection: in-flight requests already expired go now
        (`expire` skipped them while the client was connected)."""
        for pid, out in list(s.inflight.items()):
            msg = out.message
            if not out.released and msg.expires_at is not None and msg.expires_at <= now \
                    and _RESPONSE in msg.properties:
                self._finish(s, pid)
                self._lost(s, out, "expired unacknowledged", True, now)

    def discard(self, s: Session, what: str, now: float) -> None:
        """The session ends: forget its deliveries (the store drops them with the session)
        and report the requests among them."""
        pending = [(out, True) for out in s.inflight.values() if not out.released]
        pending += [(out, False) for out in s.queue]
        s.inflight.clear()
        s.queue.clear()
        for out, sent in pending:
            self._lost(s, out, what, sent, now)

    def _lost(self, s: Session, out: Outgoing, what: str, sent: bool, now: float) -> None:
        if self.undelivered is not None and _RESPONSE in out.message.properties:
            self.undelivered(s, out, what, sent, now)

    def _too_large(self, s: Session, out: Outgoing, now: float) -> None:
        self._lost(s, out, f"not delivered: larger than the maximum packet size of "
                   f"{s.client_id}", False, now)

    def _finish(self, s: Session, packet_id: int) -> None:
        out = s.inflight.pop(packet_id)
        if s.persistent:
            self.store.delete_outgoing(s.client_id, out.seq)

    def _forget(self, s: Session, out: Outgoing) -> None:
        if s.persistent:
            self.store.delete_outgoing(s.client_id, out.seq)

    def _send(self, conn: Connection, out: Outgoing, dup: bool, now: float) -> bool:
        """Write one PUBLISH; False if it exceeds the client's maximum packet size."""
        msg = out.message
        version = conn.version
        remaining = 0
        if msg.expires_at is not None:
            remaining = max(1, math.ceil(msg.expires_at - now))
        if conn.alias_out_max and version == MQTT_5:
            data = self._encode_aliased(conn, out, dup, remaining)
        else:
            key = (version, out.qos, out.retain, out.sub_ids, dup, remaining)
            if self._last_msg is msg and self._last_key == key:
                data = self._last_data
                if out.qos:
                    at = self._pid_at
                    if at < 0:
                        at = self._pid_at = _pid_offset(data, msg.topic)
                    data = b"".join((data[:at], out.packet_id.to_bytes(2, "big"),
                                     data[at + 2:]))
            else:
                data = _encode(out, version, dup, remaining, topic=msg.topic, alias=None)
                self._last_msg = msg
                self._last_key = key
                self._last_data = data
                self._pid_at = -1
        if len(data) > conn.max_out_size:
            self.stats.dropped_too_large += 1
            return False
        conn.write(data)
        self.stats.sent[out.qos] += 1
        return True

    def _encode_aliased(self, conn: Connection, out: Outgoing, dup: bool,
                        remaining: int) -> bytes:
        """Server-to-client topic aliases: the first sends of a topic take an alias
        while the client allows more; later sends of it carry only the alias."""
        topic = out.message.topic
        alias = conn.alias_out.get(topic)
        if alias is not None:
            return _encode(out, MQTT_5, dup, remaining, topic="", alias=alias)
        if len(conn.alias_out) >= conn.alias_out_max:
            return _encode(out, MQTT_5, dup, remaining, topic=topic, alias=None)
        alias = conn.alias_out[topic] = len(conn.alias_out) + 1
        return _encode(out, MQTT_5, dup, remaining, topic=topic, alias=alias)


def _encode(out: Outgoing, version: int, dup: bool, remaining: int, *, topic: str,
            alias: int | None) -> bytes:
    msg = out.message
    props = msg.properties
    v5 = version == MQTT_5
    if not (v5 and (props or out.sub_ids or remaining or alias)):
        return _plain(out, topic, dup, v5)
    if out.sub_ids or remaining or alias:
        props = dict(props)
        if out.sub_ids:
            props[_SUB_ID] = list(out.sub_ids)
        if remaining:
            props[_EXPIRY] = remaining
        if alias:
            props[_ALIAS] = alias
    packet = Publish(topic, msg.payload, out.qos, out.retain, dup, out.packet_id or None, props)
    return encode(packet, version)


def _plain(out: Outgoing, topic: str, dup: bool, v5: bool) -> bytes:
    """A PUBLISH without properties, built directly: the common case of the hot path.
    The topic was validated when it arrived, so the codec's checks are not repeated."""
    raw = topic.encode()
    qos = out.qos
    ident = out.packet_id.to_bytes(2, "big") if qos else b""
    head = b"".join((len(raw).to_bytes(2, "big"), raw, ident, b"\x00" if v5 else b""))
    payload = out.message.payload
    size = len(head) + len(payload)
    first = 0x30 | qos << 1 | out.retain | dup << 3
    fixed = bytes((first, size)) if size < 128 else bytes((first,)) + varint(size)
    return b"".join((fixed, head, payload))


def _pid_offset(data: bytes, topic: str) -> int:
    """Where the packet id sits in an encoded PUBLISH: after header and topic."""
    i = 1
    while data[i] & 0x80:
        i += 1
    return i + 1 + 2 + len(topic.encode())
