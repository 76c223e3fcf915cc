"""External bridges: this node to an outside broker, with Mosquitto's topic syntax
(`PATTERN in|out|both QOS LOCAL_PREFIX REMOTE_PREFIX`, see `cluster_config`).

Remote side: an MQTT 5 `Link` (client id `client_id`, session kept a day) subscribing to
the `in` and `both` patterns with no local, so what we publish there never comes back.
Local side: an in-memory client of our own engine, client id and identity
`bridge:<name>`, subscribed to the `out` and `both` patterns with no local, so what it
brings in never goes back out. It is attached while the remote link is up; while the
remote is down its persistent session queues QoS 1/2 messages like any client's (on
disk, `max_queued_messages`), and a local message is acknowledged only when the remote
broker has acknowledged it, so nothing is lost in between (QoS 1 may be resent).

In a cluster an external bridge is per node: it carries only what this node's clients
publish (the engine does not hand it messages from peers), and what it brings in goes
to this node's subscribers only (not to the peers). Give every node the same
`[[bridge]]` tables, as the broker role does, and each message crosses once. With an
`acl_file`, grant `user bridge:<name>` read on the `out` topics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from roost.agent.backoff import Backoff
from roost.broker.bridge import Link, to_message
from roost.broker.cluster_config import BridgeConfig, BridgeTopic, link_context
from roost.broker.topics import matches
from roost.mqtt.codec import Decoder, encode
from roost.mqtt.errors import RemoteProtocolError
from roost.mqtt.packets import (
    MQTT_5,
    ConnAck,
    Connect,
    Packet,
    PropertyId,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    RetainHandling,
    SubAck,
    Subscribe,
    Subscription,
)

if TYPE_CHECKING:
    from roost.broker.connection import Connection
    from roost.broker.server import Server

log = logging.getLogger("roost.broker.bridge")

SESSION_EXPIRY = 86400  # seconds either side keeps the bridge's session while it is down
_SUB_ID = PropertyId.SUBSCRIPTION_IDENTIFIER


def outward(topics: tuple[BridgeTopic, ...], topic: str) -> str | None:
    """The remote topic for a local one, by the first out/both line matching it."""
    for t in topics:
        if t.direction != "in" and matches(t.local, topic):
            return t.remote_prefix + topic[len(t.local_prefix):]
    return None


def inward(topics: tuple[BridgeTopic, ...], topic: str) -> str | None:
    """The local topic for a remote one, by the first in/both line matching it."""
    for t in topics:
        if t.direction != "out" and matches(t.remote, topic):
            return t.local_prefix + topic[len(t.remote_prefix):]
    return None


class _Pipe:
    """The transport of the in-memory local connection: what our engine writes to it."""

    def __init__(self, bridge: ExternalBridge) -> None:
        self.bridge = bridge
        self.decoder = Decoder(server=False, version=MQTT_5)

    def write(self, data: bytes) -> None:
        try:
            packets = self.decoder.feed(data)
        except RemoteProtocolError:
            log.exception("bridge %s: bad packet from our own engine", self.bridge.name)
            return
        # Later: the server is in the middle of its flush.
        asyncio.get_running_loop().call_soon(self.bridge.from_local, self, packets)

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        asyncio.get_running_loop().call_soon(self.bridge.local_closed, self)

    abort = close


class ExternalBridge:
    def __init__(self, server: Server, config: BridgeConfig) -> None:
        self.server = server
        self.config = config
        self.name = config.name
        self.local_id = f"bridge:{config.name}"
        context = None if config.tls is None else link_context(config.tls)
        password = None
        if config.password_file is not None:
            password = config.password_file.read_text(encoding="utf-8").strip().encode()
        connect = Connect(config.client_id, MQTT_5, clean_start=False,
                          keepalive=config.keepalive, username=config.username,
                          password=password,
                          properties={PropertyId.SESSION_EXPIRY_INTERVAL: SESSION_EXPIRY})
        subscriptions = tuple(
            Subscription(t.remote, t.qos, no_local=True, retain_as_published=True)
            for t in config.topics if t.direction != "out")
        self.link = Link(config.name, config.host, config.port, context=context,
                         connect=connect, subscriptions=subscriptions,
                         on_publish=self._from_remote, backoff=Backoff([None], 1.0, 60.0))
        self.link.on_up = self._remote_up
        self.link.on_down = self._remote_down
        self.link.on_acked = self._remote_acked
        self.conn: Connection | None = None
        self.transport: _Pipe | None = None  # what the server writes our output to
        self.pending: dict[int, tuple[int, int]] = {}  # remote pid -> (local pid, QoS)

    def start(self) -> None:
        self.link.start()

    async def stop(self) -> None:
        await self.link.stop()

    # -- remote -> local --------------------------------------------------------------

    def _from_remote(self, p: Publish) -> None:
        topic = inward(self.config.topics, p.topic)
        if topic is None:
            return  # the remote sent something no in/both line asked for
        now = time.time()
        self.server.broker.publish(to_message(p, now, topic), self.local_id, now)
        self.server.flush()

    # -- local -> remote --------------------------------------------------------------

    def _remote_up(self, ack: ConnAck) -> None:
        """Attach the local session: it resends what the remote has not acknowledged."""
        now = time.time()
        broker = self.server.broker
        self.transport = _Pipe(self)
        self.conn = conn = broker.connection_made(self.local_id, now, identity=self.local_id)
        conn.handle = self
        receive = min(self.link.receive_maximum, 65535)
        hello = Connect(self.local_id, MQTT_5, clean_start=False, keepalive=0, properties={
            PropertyId.SESSION_EXPIRY_INTERVAL: SESSION_EXPIRY,
            PropertyId.RECEIVE_MAXIMUM: receive})
        subs = tuple(Subscription(t.local, t.qos, no_local=True, retain_as_published=True,
                                  retain_handling=RetainHandling.SEND_ON_SUBSCRIBE)
                     for t in self.config.topics if t.direction != "in")
        data = encode(hello, MQTT_5)
        if subs:
            data += encode(Subscribe(1, subs), MQTT_5)
        broker.data_received(conn, data, now)
        self.server.flush()

    def _remote_down(self) -> None:
        self.link.inflight.clear()  # the local session resends them on the next attach
        self.pending.clear()
        self._detach()

    def _detach(self) -> None:
        conn, self.conn, self.transport = self.conn, None, None
        if conn is not None:
            self.server.broker.connection_lost(conn, time.time())
            self.server.flush()

    def local_closed(self, pipe: _Pipe) -> None:
        if pipe is self.transport:
            log.warning("bridge %s: our engine closed the local session", self.name)
            self._detach()

    def from_local(self, pipe: _Pipe, packets: list[Packet]) -> None:
        if pipe is not self.transport:
            return  # a connection that has gone since
        for p in packets:
            if isinstance(p, Publish):
                self._outward(p)
            elif isinstance(p, PubRel):
                self._local(PubComp(p.packet_id))
            elif isinstance(p, ConnAck) and p.reason_code:
                log.error("bridge %s: our engine refused the local session: 0x%02X",
                          self.name, p.reason_code)
            elif isinstance(p, SubAck) and any(c >= 0x80 for c in p.reason_codes):
                log.error("bridge %s: local subscriptions refused (acl_file?): %s",
                          self.name, p.reason_codes)

    def _outward(self, p: Publish) -> None:
        topic = outward(self.config.topics, p.topic)
        if topic is None or not self.link.up:
            return  # unacknowledged: the local session resends it
        props = {k: v for k, v in p.properties.items() if k != _SUB_ID}
        pid = self.link.publish(Publish(topic, p.payload, p.qos, p.retain, False, None, props))
        if p.qos:
            self.pending[pid] = (p.packet_id or 0, p.qos)

    def _remote_acked(self, pid: int) -> None:
        local = self.pending.pop(pid, None)
        if local is not None:
            local_pid, qos = local
            self._local(PubAck(local_pid) if qos == 1 else PubRec(local_pid))

    def _local(self, packet: Packet) -> None:
        conn = self.conn
        if conn is not None:
            self.server.broker.data_received(conn, encode(packet, MQTT_5), time.time())
            self.server.flush()
