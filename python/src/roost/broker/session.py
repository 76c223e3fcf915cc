"""Per-client state that outlives a network connection (MQTT 5.0 section 4.1)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from roost.broker.message import Outgoing
from roost.mqtt.packets import Will

if TYPE_CHECKING:
    from roost.broker.connection import Connection


class Session:
    __slots__ = (
        "client_id", "conn", "expires_at", "expiry", "incoming", "inflight", "next_pid",
        "next_seq", "offline_since", "offline_why", "queue", "stored", "username", "will",
        "will_at",
    )

    def __init__(self, client_id: str, expiry: int) -> None:
        self.client_id = client_id
        self.expiry = expiry  # seconds; settings.NEVER: never expires
        self.expires_at: float | None = None  # set while no connection is attached
        self.conn: Connection | None = None
        self.queue: deque[Outgoing] = deque()  # waiting for a free in-flight slot
        self.inflight: dict[int, Outgoing] = {}  # packet id -> delivery, in send order
        self.incoming: set[int] = set()  # QoS 2 ids received, PUBREC sent, no PUBREL yet
        self.next_pid = 1
        self.next_seq = 1
        self.will: Will | None = None  # a delayed will waiting for `will_at`
        self.will_at = 0.0
        self.stored = False  # the store has a row for it
        self.username: str | None = None  # of the last connection, for ACL read checks
        # When and why its last connection ended (None: connected, or not known since a
        # restart): for the error answers to requests it could not take.
        self.offline_since: float | None = None
        self.offline_why = ""

    @property
    def persistent(self) -> bool:
        return self.expiry > 0

    def new_packet_id(self) -> int:
        pid = self.next_pid
        inflight = self.inflight
        while pid in inflight:  # bounded: inflight holds far fewer than 65535 ids
            pid = pid % 65535 + 1
        self.next_pid = pid % 65535 + 1
        return pid
