"""Memory per TLS connection on the stock event loop: its SSL transport gave every
connection a 256 KiB read buffer (asyncio.sslproto.SSLProtocol.max_size), 292 KB of RSS
per idle mutual-TLS connection; the broker takes TLS_READ_BUFFER instead. A packet larger
than the buffer still arrives whole."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from roost.broker import config as cfg
from roost.broker.server import TLS_READ_BUFFER, Server
from roost.broker.store import NullStore
from security.certs import client_context

from .broker import WAIT, Client, tls_table
from .pki import Pki


def _read_buffers(server: Server) -> list[int]:
    """The size of each client connection's SSL read buffer (the stock loop's transport)."""
    sizes = []
    for conn in server.broker.connections:
        proto: Any = conn.handle
        sizes.append(len(proto.transport._ssl_protocol._ssl_buffer))
    return sizes


def test_tls_connections_keep_a_small_read_buffer(tmp_path: Path, pki: Pki) -> None:
    path = tmp_path / "broker.toml"
    path.write_text(f"""\
[[listener]]
name = "devices"
bind = "127.0.0.1:0"
{tls_table(pki.ca, pki.server)}
""")
    config = cfg.load(path)
    big = bytes(range(256)) * 400  # 100 KiB: several TLS records, more than one read

    async def scenario() -> tuple[list[int], list[bytes]]:
        server = Server(config, NullStore())
        (_, port), = await server.start()
        client = await asyncio.to_thread(Client, port, "pi-0001",
                                         context=client_context(pki.ca, pki.device))
        try:
            assert client.result == 0, client.result
            sizes = _read_buffers(server)
            # retained, so that it comes back whether the SUBSCRIBE or the PUBLISH is first
            client.client.publish("pi/pi-0001/big", big, qos=1, retain=True)
            client.client.subscribe("pi/pi-0001/big", 1)
            end = time.monotonic() + WAIT
            while not client.messages and time.monotonic() < end:
                await asyncio.sleep(0.05)
            return sizes, [bytes(m.payload) for m in client.messages]
        finally:
            await asyncio.to_thread(client.close)
            await server.stop()

    sizes, got = asyncio.run(scenario())
    assert sizes == [TLS_READ_BUFFER]
    assert got == [big]
