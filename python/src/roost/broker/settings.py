"""The limits and switches the engine obeys; `config` fills them from TOML or flags."""

from __future__ import annotations

from dataclasses import dataclass

NEVER = 0xFFFFFFFF  # session expiry interval meaning "never expires"
MAX_PACKET = 268_435_455  # the largest remaining length MQTT can express


@dataclass(frozen=True, slots=True)
class Settings:
    allow_anonymous: bool = False
    max_packet_size: int = 1_048_576  # bytes, incoming; advertised in v5 CONNACK
    max_connections: int = 0  # 0: unlimited
    connect_timeout: float = 10.0  # seconds a socket may stay open without a CONNECT
    # TLS handshakes (with their PROXY header) in progress per listening socket; more
    # connections wait in the kernel's backlog. Unbounded, a reconnect storm of thousands
    # queues so much handshake work that the loop stops answering (and systemd's watchdog
    # kills the node).
    max_handshakes: int = 64
    max_keepalive: int = 65535  # v5 clients asking for more (or 0) get this back
    max_inflight: int = 20  # outgoing QoS 1/2 unacknowledged per client
    max_queued_messages: int = 1000  # per client, beyond the in-flight window; 0: no limit
    receive_maximum: int = 100  # incoming QoS 2 awaiting PUBREL per client
    topic_alias_maximum: int = 64  # incoming aliases a v5 client may use
    max_topic_length: int = 65535  # bytes of UTF-8
    max_topic_levels: int = 128
    max_session_expiry: int = NEVER  # cap on a client's session expiry interval
    sys_interval: float = 10.0  # seconds between $SYS updates; 0 turns them off
