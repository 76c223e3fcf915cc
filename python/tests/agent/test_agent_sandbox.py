"""The kit's units forbid binding sockets (systemd SocketBindDeny=any). paho-mqtt made
the socket pair that wakes its loop by listening on a free 127.0.0.1 port, so where
systemd enforces the rule (the Debian 13 lab) the agent and the dashboard never
connected: EPERM on every try. Here a sitecustomize (agent process) or monkeypatch
(fleet client) makes every AF_INET and AF_INET6 bind fail the same way."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from roost.fleet.status import Access, client

from .conftest import AgentFactory, WatcherFactory
from .harness import WAIT, Server, agent_toml

DENY = '''
import socket
_bind = socket.socket.bind
def bind(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise PermissionError(1, "Operation not permitted (as under SocketBindDeny=any)")
    return _bind(self, address)
socket.socket.bind = bind
'''


def refuse_bind(self: socket.socket, address: Any) -> None:
    raise PermissionError(1, "Operation not permitted (as under SocketBindDeny=any)")


def test_the_agent_connects_where_binding_is_denied(
        broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    site = tmp_path / "deny"
    site.mkdir()
    (site / "sitecustomize.py").write_text(DENY)
    w = watcher(broker.port, ["roost/lab/#"])
    proc = agent(agent_toml(tmp_path / "state", [broker.port]), env={"PYTHONPATH": str(site)})
    w.wait(lambda ms: any(s["state"] == "online" for s in w.statuses()), "online")
    w.wait(lambda ms: len(w.seqs("load")) >= 2, "telemetry")
    assert "PermissionError" not in proc.output()
    # The ban is in force in that process: a listening socket there fails.
    probe = "import socket; socket.socket().bind(('127.0.0.1', 0))"
    done = subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(site)},
                          capture_output=True, text=True, timeout=WAIT, check=False)
    assert done.returncode != 0 and "PermissionError" in done.stderr


def test_the_fleet_client_connects_where_binding_is_denied(
        broker: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(Access("127.0.0.1", broker.port))
    up = threading.Event()
    c.on_connect = lambda *a: up.set()
    monkeypatch.setattr(socket.socket, "bind", refuse_bind)
    c.connect("127.0.0.1", broker.port)  # paho's own connect and socket pair bind here
    c.loop_start()  # and its loop's pair here
    try:
        assert up.wait(WAIT), "no CONNACK"
    finally:
        c.disconnect()
        c.loop_stop()
