"""paho-mqtt's client without a bind() call: the kit's units forbid binding any port a
service does not serve (systemd SocketBindDeny=any, which denies port 0 too), and paho
binds twice. Where systemd enforces the rule (cgroup v2 with BPF: the Debian 13 lab,
Raspberry Pi OS), the agent and the dashboard failed every connect with EPERM.

- The socket pair that wakes paho's loop: made by listening on a free 127.0.0.1 port
  (`_socketpair_compat`, written for Windows). A Unix socket pair binds nothing, and
  every unit allows AF_UNIX.
- The connection: `socket.create_connection(..., source_address=("", 0))` binds to it.
  Without a bind address or a proxy, connect without one; the kernel picks the port."""

from __future__ import annotations

import socket

import paho.mqtt.client as paho_client


def socketpair() -> tuple[socket.socket, socket.socket]:
    """What paho's own returns: two connected, non-blocking sockets."""
    one, two = socket.socketpair()
    one.setblocking(False)
    two.setblocking(False)
    return one, two


class Client(paho_client.Client):
    """paho_client.Client; the same arguments."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        # paho looks the name up each time it (re)connects and in loop_start.
        if hasattr(paho_client, "_socketpair_compat"):
            paho_client._socketpair_compat = socketpair
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def _create_socket_connection(self) -> socket.socket:
        if self._get_proxy() or self._bind_address or self._bind_port:
            return super()._create_socket_connection()
        return socket.create_connection((self._host, self._port),
                                        timeout=self._connect_timeout)
