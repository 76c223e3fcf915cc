"""Broker counters and the `$SYS/broker/...` topics built from them."""

from __future__ import annotations

from dataclasses import dataclass

from roost import __version__


@dataclass(slots=True)
class Stats:
    started: float = 0.0
    clients_connected: int = 0
    clients_total: int = 0  # sessions, connected or not
    messages_received: int = 0  # PUBLISH packets from clients
    messages_sent: int = 0  # PUBLISH packets to clients
    bytes_received: int = 0
    bytes_sent: int = 0
    dropped: int = 0  # queue full, or larger than the client's maximum packet size
    retained: int = 0
    subscriptions: int = 0

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
