"""Broker nodes as their `$SYS/broker/...` topics describe them: connections now, and message
rates computed from the received/sent counters between two updates (the same way for
Mosquitto and Roost, which both publish the counters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roost.dashboard import payloads

COUNTERS = {"$SYS/broker/messages/received": "received", "$SYS/broker/messages/sent": "sent"}


@dataclass
class Node:
    name: str
    link: str = "connecting"  # "up", or why the dashboard's connection is down
    version: str | None = None
    connections: float | None = None
    uptime: float | None = None
    updated: float | None = None
    rates: dict[str, float] = field(default_factory=dict)
    counters: dict[str, tuple[float, float]] = field(default_factory=dict)  # name: (t, value)

    def fold(self, topic: str, payload: bytes, now: float) -> bool:
        if topic == "$SYS/broker/version":
            self.version = payloads.text(payload[:64].decode(errors="replace"))
        elif topic == "$SYS/broker/clients/connected":
            self.connections = payloads.sys_number(payload)
        elif topic == "$SYS/broker/uptime":
            self.uptime = payloads.sys_number(payload)
        elif topic in COUNTERS:
            self._count(COUNTERS[topic], payloads.sys_number(payload), now)
        else:
            return False
        self.updated = now
        return True

    def _count(self, name: str, value: float | None, now: float) -> None:
        if value is None:
            return
        before = self.counters.get(name)
        self.counters[name] = (now, value)
        if before and now > before[0] and value >= before[1]:  # a restart resets counters
            self.rates[name] = round((value - before[1]) / (now - before[0]), 2)

    def view(self) -> dict[str, Any]:
        return {"node": self.name, "link": self.link, "version": self.version,
                "connections": self.connections, "uptime": self.uptime, "updated": self.updated,
                "received_per_s": self.rates.get("received"),
                "sent_per_s": self.rates.get("sent")}
