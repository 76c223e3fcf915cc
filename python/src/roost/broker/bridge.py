"""The broker's outgoing MQTT 5 connections: `Link`, one client connection kept up with
exponential backoff and full jitter (`roost.agent.backoff`), and `ClusterLinks`, one
link to each cluster peer feeding `roost.broker.cluster.Cluster`.

A link reads with the sans-IO codec; every packet it hands to the engine is followed by
the server's `flush()`, as for a socket of the server's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from roost.agent.backoff import Backoff
from roost.broker.cluster import CONTROL, Cluster
from roost.broker.cluster_config import ClusterConfig, link_context, node_identity
from roost.broker.message import Message
from roost.mqtt.codec import Decoder, encode
from roost.mqtt.errors import RemoteProtocolError
from roost.mqtt.packets import (
    MQTT_5,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
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
from roost.security.tls import identity_from_cert

if TYPE_CHECKING:
    from roost.broker.server import Server

log = logging.getLogger("roost.broker.bridge")

CONNECT_TIMEOUT = 10.0  # seconds for TCP, TLS and CONNACK together
_EXPIRY = PropertyId.MESSAGE_EXPIRY_INTERVAL
_DROP = (PropertyId.TOPIC_ALIAS, PropertyId.SUBSCRIPTION_IDENTIFIER)


class LinkError(Exception):
    """The remote broker refused us or broke the protocol; the link reconnects."""


def to_message(p: Publish, now: float, topic: str | None = None) -> Message:
    """A received PUBLISH as the engine keeps it (expiry made absolute)."""
    props = {k: v for k, v in p.properties.items() if k not in _DROP}
    expiry = props.get(_EXPIRY)
    return Message(topic or p.topic, p.payload, p.qos, p.retain, props,
                   None if expiry is None else now + expiry)


class Link:
    """An MQTT 5 client connection to `host:port`, reconnected until `stop()`.

    Incoming PUBLISH go to `on_publish` before they are acknowledged (QoS 2: on first
    arrival; the packet id is remembered until PUBREL across reconnects). `publish()`
    sends outwards; `on_acked(packet_id)` reports PUBACK or PUBCOMP, and unacknowledged
    messages are resent (DUP) on the next connection, the session being kept.
    """

    def __init__(self, name: str, host: str, port: int, *, context: ssl.SSLContext | None,
                 connect: Connect, subscriptions: tuple[Subscription, ...],
                 on_publish: Callable[[Publish], None], backoff: Backoff[None],
                 expect_cn: str | None = None) -> None:
        self.name, self.host, self.port = name, host, port
        self.context = context
        self.connect = connect
        self.subscriptions = subscriptions
        self.on_publish = on_publish
        self.on_up: Callable[[ConnAck], None] = lambda ack: None
        self.on_down: Callable[[], None] = lambda: None
        self.on_acked: Callable[[int], None] = lambda pid: None
        self.backoff = backoff
        self.expect_cn = expect_cn  # a cluster peer's certificate must name it
        self.up = False
        self.receive_maximum = 65535  # the remote's, from CONNACK
        self.awaiting_rel: set[int] = set()  # incoming QoS 2 ids until PUBREL
        self.inflight: dict[int, Publish] = {}  # outgoing QoS 1/2 until PUBACK/PUBCOMP
        self._next_pid = 1
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        writer = self._writer
        if writer is not None and self.up:
            writer.write(encode(Disconnect(), MQTT_5))  # best effort: the kernel sends it
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task], timeout=CONNECT_TIMEOUT)

    def send(self, packet: Packet) -> None:
        if self._writer is not None:
            self._writer.write(encode(packet, MQTT_5))

    def publish(self, p: Publish) -> int:
        """Send now if up; QoS 1/2 are kept until acknowledged. Returns the packet id."""
        pid = 0
        if p.qos:
            pid = self._next_pid
            while pid in self.inflight:
                pid = pid % 65535 + 1
            self._next_pid = pid % 65535 + 1
            p = Publish(p.topic, p.payload, p.qos, p.retain, False, pid, p.properties)
            self.inflight[pid] = p
        if self.up:
            self.send(p)
        return pid

    async def _run(self) -> None:
        while not self._stopping:
            _, delay = self.backoff.next()
            if delay:
                await asyncio.sleep(delay)
            was_up = False
            try:
                await self._session()
            except (OSError, ssl.SSLError, TimeoutError, RemoteProtocolError, LinkError) as e:
                log.warning("bridge %s (%s:%d): %s", self.name, self.host, self.port,
                            e or type(e).__name__)
            except Exception:  # a bug of ours: log it, keep the link alive
                log.exception("bridge %s: internal error; reconnecting", self.name)
            finally:
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
                was_up = self.up
                if self.up:
                    self.up = False
                    self.on_down()
            if was_up:
                self.backoff.lost()
            else:
                self.backoff.failed()

    async def _session(self) -> None:
        """One connection, until it breaks (always by an exception)."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            self.host, self.port, ssl=self.context,
            server_hostname=self.host if self.context else None), CONNECT_TIMEOUT)
        self._writer = writer
        if self.expect_cn is not None:
            sslobj = writer.get_extra_info("ssl_object")
            cn = identity_from_cert(sslobj.getpeercert() or {}, "cn") if sslobj else None
            if cn != self.expect_cn:
                raise LinkError(f"certificate names {cn!r}, not {self.expect_cn!r}")
        decoder = Decoder(server=False, version=MQTT_5)
        writer.write(encode(self.connect, MQTT_5))
        ack = await asyncio.wait_for(self._first(reader, decoder), CONNECT_TIMEOUT)
        if ack.reason_code != 0:
            reason = ack.properties.get(PropertyId.REASON_STRING, "")
            raise LinkError(f"CONNECT refused: 0x{ack.reason_code:02X} {reason}")
        self.receive_maximum = ack.properties.get(PropertyId.RECEIVE_MAXIMUM, 65535)
        keepalive = ack.properties.get(PropertyId.SERVER_KEEP_ALIVE, self.connect.keepalive)
        if self.subscriptions:
            writer.write(encode(Subscribe(1, self.subscriptions), MQTT_5))
        for pid, p in self.inflight.items():  # the session was kept: resend, DUP
            writer.write(encode(Publish(p.topic, p.payload, p.qos, p.retain, True, pid,
                                        p.properties), MQTT_5))
        self.up = True
        self.backoff.connected()
        log.info("bridge %s up (%s:%d)", self.name, self.host, self.port)
        self.on_up(ack)
        idle = 0
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536), max(1, keepalive / 2))
            except TimeoutError:
                idle += 1
                if idle > 2:
                    raise LinkError("keepalive timeout") from None
                writer.write(encode(PingReq(), MQTT_5))
                continue
            if not data:
                raise LinkError("connection closed by the remote broker")
            idle = 0
            for packet in decoder.feed(data):
                self._handle(packet)
            await writer.drain()

    async def _first(self, reader: asyncio.StreamReader, decoder: Decoder) -> ConnAck:
        while True:
            data = await reader.read(65536)
            if not data:
                raise LinkError("closed before CONNACK")
            packets = decoder.feed(data)
            if packets:
                if not isinstance(packets[0], ConnAck):
                    raise LinkError(f"{type(packets[0]).__name__} before CONNACK")
                if not packets[0].session_present:  # the remote lost our session state
                    self.awaiting_rel.clear()
                for packet in packets[1:]:
                    self._handle(packet)
                return packets[0]

    def _handle(self, packet: Packet) -> None:
        if isinstance(packet, Publish):
            pid = packet.packet_id or 0
            if packet.qos == 2:
                if pid not in self.awaiting_rel:
                    self.on_publish(packet)
                    self.awaiting_rel.add(pid)
                self.send(PubRec(pid))
            else:
                self.on_publish(packet)
                if packet.qos == 1:
                    self.send(PubAck(pid))
        elif isinstance(packet, PubRel):
            self.awaiting_rel.discard(packet.packet_id)
            self.send(PubComp(packet.packet_id))
        elif isinstance(packet, PubAck | PubComp):
            if self.inflight.pop(packet.packet_id, None) is not None:
                self.on_acked(packet.packet_id)
        elif isinstance(packet, PubRec):
            if packet.reason_code >= 0x80:
                if self.inflight.pop(packet.packet_id, None) is not None:
                    self.on_acked(packet.packet_id)
            else:
                self.send(PubRel(packet.packet_id))
        elif isinstance(packet, SubAck):
            refused = [s.topic_filter for s, code in zip(self.subscriptions,
                                                         packet.reason_codes, strict=False)
                       if code >= 0x80]
            if refused:
                log.error("bridge %s: the remote broker refused %s", self.name, refused)
        elif isinstance(packet, Disconnect):
            reason = packet.properties.get(PropertyId.REASON_STRING, "")
            raise LinkError(f"DISCONNECT 0x{packet.reason_code:02X} {reason}")
        elif not isinstance(packet, PingResp):
            log.debug("bridge %s: ignoring %s", self.name, type(packet).__name__)


class ClusterLinks:
    """This node's bridges to its peers, and the cluster logic they feed."""

    def __init__(self, server: Server, config: ClusterConfig) -> None:
        self.server = server
        self.config = config
        self.cluster = Cluster(server.broker, config.node, (p.name for p in config.peers),
                               config.queue_max)
        context = link_context(config.tls)
        connect = Connect(node_identity(config.node), MQTT_5, clean_start=False, keepalive=30,
                          properties={PropertyId.SESSION_EXPIRY_INTERVAL: config.queue_expiry})
        subscriptions = (
            Subscription("#", config.qos, no_local=True, retain_as_published=True,
                         retain_handling=RetainHandling.SEND_ON_SUBSCRIBE),
            Subscription(CONTROL + "#", 1, no_local=True))
        self.links: dict[str, Link] = {}
        for peer in config.peers:
            self.links[peer.name] = Link(
                f"to {peer.name}", peer.host, peer.port, context=context, connect=connect,
                subscriptions=subscriptions, on_publish=self._receiver(peer.name),
                backoff=Backoff([None], config.backoff_initial, config.backoff_max),
                expect_cn=node_identity(peer.name))

    def _receiver(self, peer: str) -> Callable[[Publish], None]:
        def received(p: Publish) -> None:
            now = time.time()
            self.cluster.from_peer(peer, to_message(p, now), now)
            self.server.flush()
        return received

    def start(self) -> None:
        for link in self.links.values():
            link.start()

    async def stop(self) -> None:
        for link in self.links.values():
            await link.stop()

    def status(self) -> dict[str, bool]:
        return {name: link.up for name, link in self.links.items()}
