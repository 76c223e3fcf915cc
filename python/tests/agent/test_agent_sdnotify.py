"""sd_notify over a real datagram socket, and the agent's READY/WATCHDOG/STATUS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost import sdnotify

from .conftest import AgentFactory
from .harness import Server, agent_toml


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest, tmp_path: Path
                  ) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        name = str(tmp_path / "notify")
        sock.bind(name)
    else:
        name = f"@roost-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name[1:])
    sock.settimeout(10)
    yield name, sock
    sock.close()


def test_notify_and_watchdog_period(notify_socket: tuple[str, socket.socket],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    name, sock = notify_socket
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", name)
    assert sdnotify.notify("READY=1", "STATUS=hi") is True
    assert sock.recv(4096) == b"READY=1\nSTATUS=hi"
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_period() == 1.5
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sdnotify.watchdog_period() is None


def test_agent_sends_ready_status_and_watchdog(
        mosquitto: Server, agent: AgentFactory, tmp_path: Path,
        notify_socket: tuple[str, socket.socket]) -> None:
    name, sock = notify_socket
    agent(agent_toml(tmp_path / "state", [mosquitto.port]),
          env={"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "200000"})
    got: list[bytes] = []
    for _ in range(50):  # bounded: READY, a STATUS and a few pings arrive well within this
        got.append(sock.recv(4096))
        if got.count(b"WATCHDOG=1") >= 3 and any(b"STATUS=connected" in g for g in got):
            break
    assert got[0].startswith(b"READY=1\nSTATUS=")
    assert got.count(b"WATCHDOG=1") >= 3


def test_status_says_when_the_broker_link_is_down(
        mosquitto: Server, agent: AgentFactory, tmp_path: Path,
        notify_socket: tuple[str, socket.socket]) -> None:
    name, sock = notify_socket
    agent(agent_toml(tmp_path / "state", [mosquitto.port]), env={"NOTIFY_SOCKET": name})
    statuses: list[bytes] = []
    for _ in range(50):  # bounded: each wait below needs a handful of datagrams
        statuses.append(sock.recv(4096))
        if b"STATUS=connected" in statuses[-1]:
            break
    else:
        raise AssertionError(f"never connected: {statuses}")
    mosquitto.stop()
    for _ in range(50):
        got = sock.recv(4096)
        if got.startswith(b"STATUS=broker link down"):
            break
    else:
        raise AssertionError("systemctl status would still say connected")


def test_config_error_stops_start_up_before_ready(
        tmp_path: Path, notify_socket: tuple[str, socket.socket]) -> None:
    name, sock = notify_socket
    bad = tmp_path / "agent.toml"
    bad.write_text('site = "lab"\n[broker]\nendpoints = ["nowhere"]\n')
    done = subprocess.run([sys.executable, "-m", "roost", "agent", "run", "--config", str(bad)],
                          capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "NOTIFY_SOCKET": name})
    assert done.returncode == 1
    assert done.stderr.strip() == f"{bad}:3: endpoint 'nowhere' must be HOST:PORT"
    assert sock.recv(4096).decode() == f"STATUS=config error: {done.stderr.strip()}"
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):  # and nothing else, READY least of all
        sock.recv(4096)
