"""What the broker keeps about a message: the published message itself, and one
delivery of it to one session (queued or in flight)."""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.broker.router import SubOptions
from roost.mqtt.packets import Properties, Will


@dataclass(slots=True, eq=False)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    # As published, minus TOPIC_ALIAS and SUBSCRIPTION_IDENTIFIER (per connection and
    # per delivery); forwarded untouched otherwise.
    properties: Properties = field(default_factory=dict)
    expires_at: float | None = None  # absolute, from MESSAGE_EXPIRY_INTERVAL


@dataclass(slots=True, eq=False)
class Outgoing:
    """One QoS 1/2 delivery to a session: queued while packet_id == 0, then in flight."""

    seq: int  # per-session order; survives restarts
    message: Message
    qos: int
    retain: bool
    sub_ids: tuple[int, ...] = ()
    packet_id: int = 0
    released: bool = False  # QoS 2: PUBREC received and PUBREL sent


@dataclass(slots=True, eq=False)
class SessionRecord:
    """A persistent session as the store hands it back at startup."""

    client_id: str
    expiry: int
    expires_at: float | None  # None: it was connected when the broker stopped
    username: str | None = None  # of its last connection, for ACL checks while offline
    will: Will | None = None  # a delayed will still waiting for `will_at`
    will_at: float = 0.0
    subscriptions: dict[str, SubOptions] = field(default_factory=dict)
    outgoing: list[Outgoing] = field(default_factory=list)  # in seq order
    incoming: set[int] = field(default_factory=set)  # QoS 2 ids awaiting PUBREL


@dataclass(slots=True, eq=False)
class Snapshot:
    retained: list[Message] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
