"""Per-socket state: decoder, output buffer, negotiated limits, topic aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from roost.broker.settings import MAX_PACKET
from roost.mqtt.codec import Decoder, encode
from roost.mqtt.packets import MQTT_311, Packet, Will

if TYPE_CHECKING:
    from roost.broker.policy import ListenerAuth
    from roost.broker.session import Session


class Connection:
    __slots__ = (
        "alias_in", "alias_out", "alias_out_max", "auth", "client_id", "closing", "connected",
        "created", "decoder", "dirty", "handle", "head", "identity", "keepalive", "last_seen",
        "lost",
        "max_out_size", "out", "peer", "reason", "send_quota", "session", "username",
        "version", "will",
    )

    def __init__(self, peer: str, now: float, decoder: Decoder,
                 dirty: dict[Connection, None]) -> None:
        self.peer = peer
        self.created = now
        self.last_seen = now
        self.decoder = decoder
        self.dirty = dirty  # the broker's set of connections with output or closing
        self.out: list[bytes] = []
        self.head = b""  # first bytes before CONNECT: the protocol level if it fails
        self.handle: Any = None  # the server's transport or protocol; opaque here
        self.version = MQTT_311
        self.connected = False  # CONNACK 0 sent
        self.closing = False  # close once `out` is written
        self.lost = False  # connection_lost seen
        self.client_id = ""
        self.username: str | None = None
        self.identity: str | None = None  # a verified certificate's name, set by the server
        self.auth: ListenerAuth | None = None  # the listener's rules; None: the policy's
        self.session: Session | None = None
        self.will: Will | None = None
        self.keepalive = 0
        self.reason = "connection lost"  # why it ended, for the disconnect log line
        self.send_quota = 0  # min(client's receive maximum, our max in-flight)
        self.max_out_size = MAX_PACKET  # the client's maximum packet size
        self.alias_in: dict[int, str] = {}
        self.alias_out: dict[str, int] = {}
        self.alias_out_max = 0  # the client's topic alias maximum

    def __repr__(self) -> str:
        return f"<Connection {self.peer} {self.client_id!r}>"

    def write(self, data: bytes) -> None:
        if not self.out:
            self.dirty[self] = None
        self.out.append(data)

    def send(self, packet: Packet) -> None:
        self.write(encode(packet, self.version))

    def close(self, reason: str = "") -> None:
        if reason and not self.closing:
            self.reason = reason
        self.closing = True
        self.dirty[self] = None

    def take_output(self) -> bytes:
        data = b"".join(self.out)
        self.out = []
        return data
