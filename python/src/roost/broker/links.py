"""Everything a broker connects to by itself: its cluster peers (`bridge.ClusterLinks`)
and external brokers (`bridges_ext.ExternalBridge`). The server makes one `Links` when
the config has a `[cluster]` or a `[[bridge]]`, before its listeners accept anyone, so
the engine's hooks are in place for the first client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.broker.bridge import ClusterLinks
from roost.broker.bridges_ext import ExternalBridge

if TYPE_CHECKING:
    from roost.broker.server import Server


class Links:
    def __init__(self, server: Server) -> None:
        config = server.config
        self.node = config.cluster.node if config.cluster is not None else ""
        self.cluster = None if config.cluster is None else ClusterLinks(server, config.cluster)
        self.external = [ExternalBridge(server, b) for b in config.bridges]
        server.broker.bridge_ids = frozenset(b.local_id for b in self.external)

    def start(self) -> None:
        if self.cluster is not None:
            self.cluster.start()
        for bridge in self.external:
            bridge.start()

    async def stop(self) -> None:
        if self.cluster is not None:
            await self.cluster.stop()
        for bridge in self.external:
            await bridge.stop()

    def peers(self) -> dict[str, bool]:
        """Each cluster peer: is our bridge to it connected?"""
        return {} if self.cluster is None else self.cluster.status()

    def bridges(self) -> dict[str, bool]:
        """Each external bridge: connected?"""
        return {b.config.name: b.link.up for b in self.external}
