"""The whole fleet in memory: Pis by (site, client id), broker nodes by endpoint.

Sans-IO and not thread-safe: `hub.Hub` serialises access. Only the agent's topic layout
(`roost.agent.topics`) is read; anything else is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from roost.agent import topics
from roost.dashboard.nodes import Node
from roost.dashboard.pi import NEVER_SEEN, Pi

MAX_PIS = 10_000  # a flood of made-up client ids must not exhaust the dashboard's memory
Key = tuple[str, str]


class Fleet:
    def __init__(self, stale_after: float, inventory: Iterable[str] = (),
                 site: str | None = None) -> None:
        self.stale_after, self.site = stale_after, site
        self.inventory = sorted(set(inventory))
        self.pis: dict[Key, Pi] = {}
        self.nodes: dict[str, Node] = {}

    def fold(self, topic: str, payload: bytes, retained: bool, now: float) -> bool:
        """Merge one message from `roost/+/+/status` or `roost/+/+/telemetry/#`."""
        parts = topics.parse(topic)
        if parts is None or not parts[0] or not parts[1]:
            return False
        site, client, kind, rest = parts
        if (self.site is not None and site != self.site) or (kind, bool(rest)) not in (
                ("status", False), ("telemetry", True)):
            return False
        pi = self.pis.get((site, client))
        if pi is None:
            if len(self.pis) >= MAX_PIS:
                return False
            pi = self.pis[(site, client)] = Pi(site, client)
        if kind == "status":
            return pi.fold_status(payload, retained, now)
        return pi.fold_telemetry(rest, payload, retained, now)

    def node(self, name: str) -> Node:
        return self.nodes.setdefault(name, Node(name))

    def marks(self, now: float) -> dict[Key, tuple[int, str]]:
        """Per Pi, what the page last needs to know changed: revision and derived state."""
        return {k: (pi.rev, pi.state(now, self.stale_after)[0]) for k, pi in self.pis.items()}

    def view(self, now: float, keys: Iterable[Key] | None = None, series: bool = True
             ) -> dict[str, Any]:
        """The snapshot the page draws; with `keys`, only those Pis change (an update).
        `keys` in the result lists every Pi the page should keep, in order."""
        chosen = sorted(self.pis if keys is None else keys)
        unseen = self._unseen(now)
        pis = [self.pis[k].view(now, self.stale_after, series) for k in chosen if k in self.pis]
        counts = {"online": 0, "offline": 0, NEVER_SEEN: len(unseen)}
        for pi in self.pis.values():
            counts[pi.state(now, self.stale_after)[0]] += 1
        every = [[p["site"], p["client_id"]] for p in unseen] + [list(k) for k in self.pis]
        return {"now": now, "stale_after": self.stale_after, "counts": counts,
                "pis": pis + unseen, "keys": sorted(every),
                "brokers": [n.view() for _, n in sorted(self.nodes.items())]}

    def _unseen(self, now: float) -> list[dict[str, Any]]:
        """Inventory entries no message has mentioned yet."""
        seen = {client for _, client in self.pis}
        return [Pi(self.site or "", c).view(now, self.stale_after)
                for c in self.inventory if c not in seen]
