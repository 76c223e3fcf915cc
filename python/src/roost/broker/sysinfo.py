"""Broker counters and the `$SYS/broker/...` topics built from them."""

from __future__ import annotations

from dataclasses import dataclass, field

from roost import __version__


@dataclass(slots=True)
class Stats:
    started: float = 0.0
    clients_connected: int = 0
    clients_total: int = 0  # sessions, connected or not
    received: list[int] = field(default_factory=lambda: [0, 0, 0])  # PUBLISH in, by QoS
    sent: list[int] = field(default_factory=lambda: [0, 0, 0])  # PUBLISH out, by QoS
    bytes_received: int = 0
    bytes_sent: int = 0
    dropped_queue_full: int = 0
    dropped_too_large: int = 0  # larger than the client's maximum packet size
    undelivered_answers: int = 0  # error answers to requests that could not be delivered
    retained: int = 0
    subscriptions: int = 0
    acl_denials: dict[str, int] = field(
        default_factory=lambda: {"publish": 0, "subscribe": 0, "read": 0})
    auth_failures: int = 0  # CONNECTs refused by the policy

    @property
    def messages_received(self) -> int:
        return sum(self.received)

    @property
    def messages_sent(self) -> int:
        return sum(self.sent)

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_too_large

    def topics(self, now: float) -> list[tuple[str, str]]:
        """(topic, payload) pairs published retained every `sys_interval` seconds."""
        return [
            ("$SYS/broker/version", f"roost {__version__}"),
            ("$SYS/broker/uptime", f"{int(now - self.started)} seconds"),
            ("$SYS/broker/clients/connected", str(self.clients_connected)),
            ("$SYS/broker/clients/total", str(self.clients_total)),
            ("$SYS/broker/messages/received", str(self.messages_received)),
            ("$SYS/broker/messages/sent", str(self.messages_sent)),
            ("$SYS/broker/messages/dropped", str(self.dropped)),
            ("$SYS/broker/bytes/received", str(self.bytes_received)),
            ("$SYS/broker/bytes/sent", str(self.bytes_sent)),
            ("$SYS/broker/retained messages/count", str(self.retained)),
            ("$SYS/broker/subscriptions/count", str(self.subscriptions)),
        ]
