"""Wiring: one fleet, one hub, a reader per broker node, one HTTP server."""

from __future__ import annotations

import socket

from roost.dashboard.fleet import Fleet
from roost.dashboard.hub import Hub
from roost.dashboard.reader import Reader
from roost.dashboard.server import Dashboard
from roost.fleet.status import Access
from roost.security.passwd import PasswordFile


class App:
    def __init__(self, nodes: list[Access], site: str | None, inventory: list[str],
                 stale_after: float) -> None:
        self.hub = Hub(Fleet(stale_after, inventory, site))
        self.readers = [Reader(self.hub, node, site) for node in nodes]
        self.server: Dashboard | None = None

    def listen(self, bind: tuple[str, int], auth: PasswordFile | None) -> tuple[str, int]:
        """Bind the HTTP port; the bound (host, port)."""
        family = socket.AF_INET6 if ":" in bind[0] else socket.AF_INET
        self.server = Dashboard(bind, self.hub, auth, family)
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def serve(self) -> None:
        """Connect to the brokers (in the background) and serve HTTP until stopped."""
        assert self.server is not None, "listen() first"
        for reader in self.readers:
            reader.start()
        self.server.serve_forever(poll_interval=0.5)

    def close(self) -> None:
        for reader in self.readers:
            reader.stop()
        if self.server is not None:
            self.server.stopping.set()
            self.server.server_close()
