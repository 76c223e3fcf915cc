"""A real HAProxy health-checks the broker over HTTP on the metrics port (no MQTT
session): `GET /healthz` keeps the server up, a path the broker does not serve takes
another backend's server down, which proves HAProxy reads our answers."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from security.procs import daemon

from .broker import METRICS, WAIT, Broker

pytestmark = pytest.mark.skipif(not shutil.which("haproxy"), reason="apt-get install haproxy")


def _states(stats: Path) -> dict[str, int]:
    """backend/server -> operational state (0 stopped, 2 running), from the stats socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(WAIT)
        s.connect(str(stats))
        s.sendall(b"show servers state\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    found = {}
    for line in data.decode().splitlines()[2:]:
        fields = line.split()
        if len(fields) > 5:
            found[f"{fields[1]}/{fields[3]}"] = int(fields[5])
    return found


def test_haproxy_checks_healthz_without_mqtt(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('metrics = { bind = "127.0.0.1", port = 0 }\n'
                      '[[listener]]\nbind = "127.0.0.1:0"\nallow_anonymous = true\n')
    broker = Broker(config)
    match = METRICS.search(broker.text)
    assert match
    http, mqtt = int(match.group(1)), broker.ports[0]
    stats = tmp_path / "stats.sock"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""\
global
  stats socket {stats} mode 600 level admin
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout check 5s
backend healthy
  option httpchk GET /healthz
  server roost 127.0.0.1:{mqtt} check port {http} inter 100ms fall 2 rise 1
backend wrong_path
  option httpchk GET /not-a-health-endpoint
  server roost 127.0.0.1:{mqtt} check port {http} inter 100ms fall 2 rise 1
""")
    try:
        with daemon(["haproxy", "-f", str(cfg), "-db"], tmp_path / "haproxy.log"):
            deadline = time.monotonic() + WAIT
            states: dict[str, int] = {}
            while time.monotonic() < deadline:
                if stats.exists():
                    states = _states(stats)
                    if states.get("wrong_path/roost") == 0:
                        break
                time.sleep(0.1)
            assert states.get("wrong_path/roost") == 0, states
            assert states.get("healthy/roost") == 2, states
            assert "connected" not in broker.text  # no MQTT session was opened
    finally:
        assert broker.stop() == 0
