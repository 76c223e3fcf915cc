"""Everything a broker connects to by itself: its cluster peers (`bridge.ClusterLinks`)
and external brokers (`bridges_ext.ExternalBridge`). The server makes one `Links` when
the config has a `[cluster]` or a `[[bridge]]`, before its listeners accept anyone, so
the engine's hooks are in place for the first client."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from roost.broker.bridge import ClusterLinks
from roost.broker.bridges_ext import ExternalBridge
from roost.broker.cluster_config import link_context

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

    def reloaded(self) -> Callable[[], None]:
        """SIGHUP: read the links' certificates again (raising OSError or TlsError, the
        running ones kept); the function returned puts them in place."""
        cluster = self.cluster
        mine = None if cluster is None else link_context(cluster.config.tls)
        theirs = [(b, None if b.config.tls is None else link_context(b.config.tls))
                  for b in self.external]

        def apply() -> None:
            if cluster is not None and mine is not None:
                for link in cluster.links.values():
                    link.context = mine
            for bridge, context in theirs:
                bridge.link.context = context

        return apply

    def peers(self) -> dict[str, bool]:
        """Each cluster peer: is our bridge to it connected?"""
        return {} if self.cluster is None else self.cluster.status()

    def bridges(self) -> dict[str, bool]:
        """Each external bridge: connected?"""
        return {b.config.name: b.link.up for b in self.external}
